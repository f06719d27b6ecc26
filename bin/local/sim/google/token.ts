/**
 * Google's token endpoint for the JWT bearer grant (`POST /token`), and the Bearer check of
 * every Directory API request.
 *
 * The assertion is verified as Google does: RS256 signature against the service account's
 * PUBLIC key (a wrong key is `invalid_grant` "Invalid JWT Signature."), `iss` the service
 * account, `aud` Google's token endpoint (written here independently of the product's
 * constant, on purpose: the simulator is the oracle), `iat`/`exp` at most an hour apart and
 * around now, `sub` a Workspace user (else `invalid_grant` "Invalid email or User ID"), and
 * every requested scope delegated to the client in the Admin console (else 401
 * `unauthorized_client`). Without `sub` Google issues the service account its own token,
 * which the Directory API refuses (403 "Not Authorized to access this resource/api"): so does
 * the simulator. A token carries its scopes; a route needing another one answers 403
 * `insufficientPermissions`.
 */
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { gErr, type Res, type SimOptions } from './context';

export const GOOGLE_TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';
const GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Clock skew Google tolerates (a few minutes; the simulator uses 5). */
const SKEW_S = 300;

interface Issued {
  exp: number;
  scopes: Set<string>;
  subject: string | null;
}

export interface Tokens {
  issue(rawBody: unknown): Res;
  /** The token's grant, or a 401/403 answer. */
  check(authorization: string | undefined, scope: string | string[]): { ok: true; subject: string } | { ok: false; res: Res };
  revoke(): void;
}

const oauthErr = (status: number, error: string, description: string): Res => ({ status, body: { error, error_description: description } });

export function tokenEndpoint(opts: SimOptions, now: () => Date): Tokens {
  const issued = new Map<string, Issued>();
  let key: KeyObject | undefined;
  const publicKey = () => (key ??= createPublicKey(opts.publicKey));

  return {
    issue(rawBody) {
      const form = new URLSearchParams(typeof rawBody === 'string' ? rawBody : '');
      if (form.get('grant_type') !== GRANT) return oauthErr(400, 'unsupported_grant_type', 'Invalid grant_type: ' + (form.get('grant_type') ?? ''));
      const parts = (form.get('assertion') ?? '').split('.');
      if (parts.length !== 3) return oauthErr(400, 'invalid_grant', 'Invalid JWT: malformed.');
      let header: { alg?: string };
      let claims: { iss?: string; sub?: string; scope?: string; aud?: string; iat?: number; exp?: number };
      try {
        header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
        claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
      } catch {
        return oauthErr(400, 'invalid_grant', 'Invalid JWT: malformed.');
      }
      if (header.alg !== 'RS256') return oauthErr(400, 'invalid_grant', 'Invalid JWT: unsupported algorithm.');
      const signed = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey(), Buffer.from(parts[2]!, 'base64url'));
      if (!signed) return oauthErr(400, 'invalid_grant', 'Invalid JWT Signature.');
      if (claims.iss !== opts.clientEmail) return oauthErr(400, 'invalid_grant', 'Invalid grant: account not found');
      if (claims.aud !== GOOGLE_TOKEN_AUDIENCE) return oauthErr(400, 'invalid_grant', 'Invalid JWT: Failed audience check.');
      const t = Math.floor(now().getTime() / 1000);
      const { iat, exp } = claims;
      if (typeof iat !== 'number' || typeof exp !== 'number' || exp - iat > 3600 || exp <= iat || iat > t + SKEW_S || exp < t - SKEW_S) {
        return oauthErr(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
      }
      const scopes = (claims.scope ?? '').split(' ').filter(Boolean);
      if (!scopes.length) return oauthErr(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
      const subject = claims.sub ?? null;
      if (subject !== null) {
        if (!opts.admins.map((a) => a.toLowerCase()).includes(subject.toLowerCase())) return oauthErr(400, 'invalid_grant', 'Invalid email or User ID');
        if (!scopes.every((s) => opts.delegatedScopes.includes(s))) {
          return oauthErr(401, 'unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.');
        }
      }
      const lifetime = opts.tokenLifetimeSeconds;
      const token = 'ya29.sim-' + randomBytes(24).toString('base64url');
      issued.set(token, { exp: now().getTime() + lifetime * 1000, scopes: new Set(scopes), subject });
      return { status: 200, body: { access_token: token, expires_in: lifetime, token_type: 'Bearer' } };
    },
    check(authorization, scope) {
      const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : '';
      const grant = issued.get(token);
      if (!grant || grant.exp <= now().getTime()) return { ok: false, res: gErr(401, 'authError', 'Invalid Credentials', { location: 'Authorization' }) };
      if (grant.subject === null) return { ok: false, res: gErr(403, 'forbidden', 'Not Authorized to access this resource/api') };
      const wanted = Array.isArray(scope) ? scope : [scope];
      if (!wanted.some((s) => grant.scopes.has(s))) return { ok: false, res: gErr(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.', { status: 'PERMISSION_DENIED' }) };
      return { ok: true, subject: grant.subject };
    },
    revoke() {
      issued.clear();
    },
  };
}
