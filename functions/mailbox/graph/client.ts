/**
 * Microsoft Graph transport: the app-only token (client credentials, cached and shared by
 * every caller: core/retry.ts TokenCache) and one `call()` that every Graph module uses.
 *
 * Wire facts relied on:
 * - Client credentials against `<login host>/<tenant>/oauth2/v2.0/token` with the scope
 *   `<graph host>/.default` of the configured cloud (config.ts): the scope follows the cloud,
 *   not the transport, so the local simulator and a proxy see the real scope.
 * - Throttling is 429 (also 503/504) with `Retry-After` in seconds: honoured (spread over up to
 *   one more second, so callers throttled together do not return together), else jittered
 *   backoff from half a second to 30 s (Graph's guidance); after `maxRetries` the error is
 *   retryable and carries the wait, and the queue retries later.
 * - 401 means the token expired or was revoked early: fetched again once, then `auth`.
 * - Errors are `{ error: { code, message, details? } }`. Graph's `message` can echo the values
 *   we sent (addresses, phone numbers), so only the CODE goes into our errors, with the
 *   route template ('PATCH /users/{id}'), never the concrete path.
 * - nextLink / deltaLink are absolute URLs: followed only when they point at our API base, so
 *   the bearer token is never sent anywhere else.
 */
import { retryAfterMs, spreadRetryAfter } from '../../core/retry';
import { BearerClient, type BearerClientOptions, type BearerRequest, type BearerResult, type Judge } from '../bearer-call';
import { MailboxError, type MailboxErrorKind } from '../directory';
import { graphCloud, graphScope, graphTokenUrl, type GraphCloud, type GraphCloudName } from './config';

export interface GraphClientOptions extends BearerClientOptions {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Default `global`. Decides the token scope and reference host whatever `apiBase` says. */
  cloud?: GraphCloudName | GraphCloud;
  /** Default: the cloud's Graph host. */
  apiBase?: string;
  /** Default: the cloud's token service for `tenantId`. */
  tokenUrl?: string;
}

/** A call's route template, body, extra headers and accepted statuses (see BearerRequest). */
export type CallOptions = Omit<BearerRequest, 'method' | 'url'>;

export type CallResult = BearerResult;

export const RETRYABLE = new Set([429, 500, 502, 503, 504]);
/** Graph's throttling guidance: back off from half a second up to 30 s unless Retry-After says otherwise. */
export const BACKOFF = { baseMs: 500, capMs: 30_000 };

export class GraphClient extends BearerClient {
  readonly cloud: GraphCloud;
  readonly apiBase: string;
  readonly tokenUrl: string;
  readonly scope: string;

  constructor(private readonly opts: GraphClientOptions) {
    super('Graph', opts, BACKOFF);
    this.cloud = graphCloud(opts.cloud);
    this.apiBase = (opts.apiBase ?? this.cloud.graphHost).replace(/\/+$/, '');
    this.tokenUrl = opts.tokenUrl ?? graphTokenUrl(this.cloud, opts.tenantId);
    this.scope = graphScope(this.cloud);
  }

  /** A client-credentials token request (does the secret still work?). */
  requestToken(): Promise<{ value: string; lifetimeMs: number }> {
    return requestGraphToken(this.fetchFn, this.tokenUrl, this.opts.clientId, this.opts.clientSecret, this.scope);
  }

  call(method: string, pathOrUrl: string, o: CallOptions): Promise<CallResult> {
    return this.send({ method, url: this.resolve(pathOrUrl), ...o }, judgeGraphRefusal(o.route));
  }

  /** Absolute links (nextLink, deltaLink) must point at our API base: the bearer token is never sent anywhere else. */
  private resolve(pathOrUrl: string): string {
    if (!/^https?:\/\//i.test(pathOrUrl)) return this.apiBase + pathOrUrl;
    if (!pathOrUrl.startsWith(this.apiBase + '/')) {
      throw new MailboxError('Graph returned a link outside the API base', false, 'UnexpectedLink', undefined, 'unexpected');
    }
    return pathOrUrl;
  }
}

/** A client-credentials token request. `error` is an OAuth code (invalid_client, invalid_scope); error_description is not copied (it may echo ids). */
async function requestGraphToken(
  fetchFn: typeof fetch,
  tokenUrl: string,
  clientId: string,
  clientSecret: string,
  scope: string,
): Promise<{ value: string; lifetimeMs: number }> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope });
  let res: Response;
  try {
    res = await fetchFn(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  } catch {
    throw new MailboxError('Graph token endpoint unreachable', true, 'NetworkError', undefined, 'unavailable');
  }
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
  if (res.ok && body.access_token) return { value: body.access_token, lifetimeMs: Math.max(60, Number(body.expires_in ?? 3599)) * 1000 };
  const code = typeof body.error === 'string' ? body.error : `http_${res.status}`;
  const retryable = RETRYABLE.has(res.status);
  const wait = retryable ? retryAfterMs(res.headers.get('retry-after')) : undefined;
  throw new MailboxError(`Graph token request failed: ${res.status} ${code}`, retryable, code, wait, retryable ? kindOf(res.status) : code === 'invalid_scope' || code === 'invalid_request' ? 'invalid' : 'auth');
}

/** The same words for every system (directory.ts MailboxErrorKind) from Graph's status and error code. */
function kindOf(status: number, detail?: string): MailboxErrorKind {
  if (status === 429) return 'throttled';
  if (status >= 500) return 'unavailable';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not-found';
  if (status === 409 || detail === 'ObjectConflict') return 'conflict';
  if (status === 400) return 'invalid';
  return 'unexpected';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function graphError(status: number, body: any, route: string, retryAfter?: number): MailboxError {
  const code: string = typeof body?.error?.code === 'string' ? body.error.code : status === 429 ? 'TooManyRequests' : `http_${status}`;
  const detail: string | undefined = typeof body?.error?.details?.[0]?.code === 'string' ? body.error.details[0].code : undefined;
  const retryable = RETRYABLE.has(status);
  // Deliberately without Graph's message: it may echo the values we sent.
  return new MailboxError(`Graph ${route} failed: ${status} ${code}${detail ? `/${detail}` : ''}`, retryable, code, retryable ? retryAfter : undefined, kindOf(status, detail));
}

/** Graph's refusals: retryable by status alone; a Retry-After is honoured, spread (see the header). */
function judgeGraphRefusal(route: string): Judge {
  return (status, json, headers) => {
    const asked = retryAfterMs(headers.get('retry-after'));
    return { error: graphError(status, json, route, asked), ...(asked !== undefined ? { waitMs: spreadRetryAfter(asked) } : {}) };
  };
}
