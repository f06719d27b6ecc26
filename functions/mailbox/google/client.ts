/**
 * Google Directory API transport: the service-account token (a JWT we sign, exchanged for an
 * access token; cached and shared by every caller: core/retry.ts TokenCache) and one `call()`
 * every Google module uses.
 *
 * Why no google-auth-library: this deployment needs ONE grant (the JWT bearer grant of a
 * service account with domain-wide delegation), which is an RS256 signature over three JSON
 * fields — a few lines on node:crypto. The library brings every other credential type (ADC,
 * metadata server, workload identity, impersonation chains) and gaxios into a Lambda bundle
 * whose cold start the push receiver's neighbours care about, for nothing we would call.
 *
 * Wire facts relied on (sources in docs/providers/google.md):
 * - The grant: POST https://oauth2.googleapis.com/token, form `grant_type=
 *   urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`; the JWT header is
 *   {"alg":"RS256","typ":"JWT"}, its claims iss (service account email), sub (the admin it
 *   acts as), scope (space-separated), aud (the token endpoint), iat, exp (≤ iat + 3600).
 *   The answer is {access_token, expires_in (3599), token_type}. Errors are OAuth codes:
 *   `invalid_grant` (bad signature, unknown sub, a clock out of range), `unauthorized_client`
 *   (401: the client ID is not delegated the scope in the Admin console), `invalid_scope`.
 *   `error_description` is not copied (it can echo the subject's address).
 * - Throttling: 403 with reason `userRateLimitExceeded` (2,400 queries per minute per user per
 *   project by default), `rateLimitExceeded` or `quotaExceeded` (concurrent requests), and 429;
 *   Google asks for exponential backoff from about a second up to 32–64 s ("Directory API:
 *   Limits and Quotas"); a Retry-After, when present, is honoured. 5xx are retried the same
 *   way. After `maxRetries` the error is retryable and the queue retries later. A refusal
 *   also pauses the calls that START in this process for one base backoff: without it, many
 *   concurrent callers each escalate their own backoff and keep the quota refusing (measured
 *   by test/bench/google-drain.bench.ts at Google's default 2,400/min: 64 callers drained at
 *   about 60 % of the quota without the shared pause, 75–90 % with it; 16 callers at the full
 *   quota).
 * - 401 means the token lapsed or was revoked: fetched again once, then `auth`.
 * - Errors are `{error: {code, message, errors: [{domain, reason, message}]}}`. The message can
 *   echo what we sent (addresses), so only the REASON goes into our errors, with the route
 *   template ('PUT /users/{id}'), never the concrete path.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { backoffMs, retryAfterMs } from '../../core/retry';
import { BearerClient, type BearerClientOptions, type BearerRequest, type BearerResult } from '../bearer-call';
import { MailboxError, type MailboxErrorKind } from '../directory';
import { GOOGLE_API_BASE, GOOGLE_SCOPES, GOOGLE_TOKEN_AUDIENCE, GOOGLE_TOKEN_URL } from './config';

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Google refuses an assertion that lives longer than an hour. */
export const MAX_ASSERTION_SECONDS = 3600;
/** Google's backoff guidance: start near a second, double, stop at 64 s. */
export const BACKOFF = { baseMs: 1000, capMs: 64_000 };
/** 403 reasons that mean "slow down", not "forbidden". */
export const RATE_REASONS = new Set(['userRateLimitExceeded', 'rateLimitExceeded', 'quotaExceeded']);
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

export interface ServiceAccountJwtInput {
  clientEmail: string;
  /** PEM or an already parsed key. */
  privateKey: string | KeyObject;
  /** The admin the service account acts as (domain-wide delegation). */
  subject: string;
  scopes: readonly string[];
  /** Default: Google's token endpoint. */
  audience?: string;
  now: Date;
  lifetimeSeconds?: number;
}

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

/** The signed assertion of the JWT bearer grant (RS256 over `header.claims`). */
export function signServiceAccountJwt(o: ServiceAccountJwtInput): string {
  const iat = Math.floor(o.now.getTime() / 1000);
  const header = { alg: 'RS256', typ: 'JWT' };
  const claims = {
    iss: o.clientEmail,
    sub: o.subject,
    scope: o.scopes.join(' '),
    aud: o.audience ?? GOOGLE_TOKEN_AUDIENCE,
    iat,
    exp: iat + Math.min(o.lifetimeSeconds ?? MAX_ASSERTION_SECONDS, MAX_ASSERTION_SECONDS),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const key = typeof o.privateKey === 'string' ? createPrivateKey(o.privateKey) : o.privateKey;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

export interface GoogleClientOptions extends BearerClientOptions {
  clientEmail: string;
  privateKey: string;
  adminEmail: string;
  /** Default: https://admin.googleapis.com */
  apiBase?: string;
  /** Default: https://oauth2.googleapis.com/token (the JWT's audience stays that, whatever this says). */
  tokenUrl?: string;
  scopes?: readonly string[];
}

/** A call's route template, body and accepted statuses (see BearerRequest), and its query. */
export interface CallOptions extends Omit<BearerRequest, 'method' | 'url' | 'headers'> {
  query?: Record<string, string | number | boolean | undefined>;
}

export type CallResult = BearerResult;

export class GoogleClient extends BearerClient {
  readonly apiBase: string;
  readonly tokenUrl: string;
  readonly scopes: readonly string[];
  private key?: KeyObject;
  /** Until when new calls hold back: the quota refused one (see call()). */
  private resumeAt = 0;

  constructor(private readonly opts: GoogleClientOptions) {
    super('Google', opts, BACKOFF);
    this.apiBase = (opts.apiBase ?? GOOGLE_API_BASE).replace(/\/+$/, '');
    this.tokenUrl = opts.tokenUrl ?? GOOGLE_TOKEN_URL;
    this.scopes = opts.scopes ?? GOOGLE_SCOPES;
  }

  /** A JWT bearer grant (do the key and the delegation still work?). */
  async requestToken(): Promise<{ value: string; lifetimeMs: number }> {
    let assertion: string;
    try {
      this.key ??= createPrivateKey(this.opts.privateKey);
      assertion = signServiceAccountJwt({ clientEmail: this.opts.clientEmail, privateKey: this.key, subject: this.opts.adminEmail, scopes: this.scopes, now: this.now() });
    } catch {
      // Never the key or its parser's message.
      throw new MailboxError('Google: the service account private key is not a usable PEM key', false, 'InvalidPrivateKey', undefined, 'auth');
    }
    return requestGoogleToken(this.fetchFn, this.tokenUrl, assertion);
  }

  async call(method: string, path: string, o: CallOptions): Promise<CallResult> {
    // A call starting while the quota is refusing waits for the shared pause instead of adding
    // one more refused request (the retries of calls already refused wait their own backoff).
    const paused = this.resumeAt - this.now().getTime();
    if (paused > 0) await this.sleep(paused);
    const { query, ...request } = o;
    return this.send({ method, url: this.url(path, query), ...request }, (status, json, headers) => {
      const error = googleError(status, json, o.route, retryAfterMs(headers.get('retry-after')));
      // The quota refused: calls starting from now on hold back for a while (see the header).
      if (error.kind === 'throttled') this.resumeAt = Math.max(this.resumeAt, this.now().getTime() + (error.retryAfterMs ?? backoffMs(0, BACKOFF)));
      return { error };
    });
  }

  private url(path: string, query: CallOptions['query']): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return `${this.apiBase}${path}${qs ? `?${qs}` : ''}`;
  }
}

/** The JWT bearer exchange. `error` is an OAuth code; `error_description` is not copied (it may echo the subject). */
export async function requestGoogleToken(fetchFn: typeof fetch, tokenUrl: string, assertion: string): Promise<{ value: string; lifetimeMs: number }> {
  const form = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion });
  let res: Response;
  try {
    res = await fetchFn(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  } catch {
    throw new MailboxError('Google token endpoint unreachable', true, 'NetworkError', undefined, 'unavailable');
  }
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
  if (res.ok && body.access_token) return { value: body.access_token, lifetimeMs: Math.max(60, Number(body.expires_in ?? 3599)) * 1000 };
  const code = typeof body.error === 'string' ? body.error : `http_${res.status}`;
  const retryable = RETRYABLE_STATUS.has(res.status);
  const wait = retryable ? retryAfterMs(res.headers.get('retry-after')) : undefined;
  const kind: MailboxErrorKind = retryable ? (res.status === 429 ? 'throttled' : 'unavailable') : code === 'invalid_scope' || code === 'invalid_request' ? 'invalid' : 'auth';
  throw new MailboxError(`Google token request failed: ${res.status} ${code}`, retryable, code, wait, kind);
}

/** The reason Google gives (errors[0].reason), else its status word, else the HTTP status. */
export function reasonOf(status: number, body: unknown): string {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const e = (body as any)?.error;
  const reason = e?.errors?.[0]?.reason;
  if (typeof reason === 'string' && reason) return reason;
  if (typeof e?.status === 'string' && e.status) return e.status;
  return `http_${status}`;
}

/** The same words for every system (directory.ts MailboxErrorKind) from Google's status and reason. */
export function googleError(status: number, body: unknown, route: string, retryAfter?: number): MailboxError {
  const reason = reasonOf(status, body);
  let kind: MailboxErrorKind;
  if (status === 429 || (status === 403 && RATE_REASONS.has(reason))) kind = 'throttled';
  else if (status >= 500) kind = 'unavailable';
  else if (status === 401 || status === 403) kind = 'auth';
  else if (status === 404) kind = 'not-found';
  else if (status === 409 || status === 412 || reason === 'duplicate') kind = 'conflict';
  else if (status === 400) kind = 'invalid';
  else kind = 'unexpected';
  const retryable = kind === 'throttled' || kind === 'unavailable';
  // Deliberately without Google's message: it may echo the values we sent.
  return new MailboxError(`Google ${route} failed: ${status} ${reason}`, retryable, reason, retryable ? retryAfter : undefined, kind);
}

