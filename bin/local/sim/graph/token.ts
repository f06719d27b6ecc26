/**
 * Entra's token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client credentials) and the
 * Bearer check of every Graph request.
 *
 * The tenant lives in one cloud. A scope must name THAT cloud's Graph host
 * (`<host>/.default`); another cloud's is answered `invalid_scope`, as Entra does ("Access
 * national cloud deployments with the Microsoft Graph SDKs": tokens of one cloud are not
 * accepted by another). The hosts are written here independently of the product's table
 * (functions/mailbox/graph/config.ts) on purpose: the simulator is the test's oracle of
 * Microsoft's behaviour, and a typo in the product's table must fail against it.
 */
import { randomBytes } from 'node:crypto';
import type { SimOptions } from './context';
import type { Res } from './odata';

export const CLOUD_GRAPH_HOST: Readonly<Record<SimOptions['cloud'], string>> = {
  global: 'https://graph.microsoft.com',
  china: 'https://microsoftgraph.chinacloudapi.cn',
};

export interface Tokens {
  /** The answer to a token request (`tenant` is the path segment). */
  issue(tenant: string, rawBody: unknown): Res;
  /** Does this Authorization header carry a live token? */
  valid(authorization: string | undefined): boolean;
  /** Invalidate every issued token (the next call gets 401). */
  revoke(): void;
}

export function tokenEndpoint(opts: SimOptions, now: () => Date): Tokens {
  const issued = new Map<string, number>(); // token → expiry ms
  const scope = `${CLOUD_GRAPH_HOST[opts.cloud]}/.default`;
  return {
    issue(tenant, rawBody) {
      const form = new URLSearchParams(typeof rawBody === 'string' ? rawBody : '');
      if (tenant !== opts.tenantId) return { status: 400, body: { error: 'invalid_request', error_description: 'AADSTS90002: Tenant not found.' } };
      if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'AADSTS70003' } };
      if (form.get('client_id') !== opts.clientId || form.get('client_secret') !== opts.clientSecret) {
        return { status: 401, body: { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' } };
      }
      if (form.get('scope') !== scope) return { status: 400, body: { error: 'invalid_scope', error_description: 'AADSTS1002012: The provided value for scope is not valid.' } };
      const lifetime = opts.tokenLifetimeSeconds;
      const token = 'sim.' + randomBytes(24).toString('base64url');
      issued.set(token, now().getTime() + lifetime * 1000);
      return { status: 200, body: { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token } };
    },
    valid(authorization) {
      const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : '';
      const exp = issued.get(token);
      return exp !== undefined && exp > now().getTime();
    },
    revoke() {
      issued.clear();
    },
  };
}
