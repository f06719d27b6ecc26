/**
 * Tencent's server-API conventions, shared by WeCom (qyapi.weixin.qq.com) and Tencent Exmail
 * (api.exmail.qq.com), which publish the same shape:
 * - `GET /cgi-bin/gettoken?corpid=…&corpsecret=…` → `{ access_token, expires_in }` (7200 s);
 *   one secret per app, so one token (and one TokenCache) per secret;
 * - every call carries `access_token` in the QUERY STRING: a URL is never put in an error or
 *   a log line (it would leak the token, or the secret on gettoken);
 * - HTTP 200 with `{ errcode, errmsg }` (no errcode, or 0 = success); -1 = busy, 45009 /
 *   45011 = frequency limit (the caller is blocked for about a minute), 40014 / 42001 = the
 *   token is invalid / expired (fetch a new one once).
 *
 * What differs between the two systems — the rest of the errcode table, the error class, what
 * a token error after a refresh means — is passed in by each client (wecom/api.ts,
 * mailbox/exmail/client.ts); this module holds the exchange, the token request and the retry
 * loop once.
 */
import { backoffMs, type BackoffOptions, type TokenCache } from './retry';

export type TencentJson = Record<string, unknown> & { errcode?: number; errmsg?: string };

export type TencentErrKind = 'ok' | 'token' | 'retryable' | 'permanent' | 'not-found';

export interface TencentErrClass {
  kind: TencentErrKind;
  reason: string;
  /** For frequency limits: how long the API blocks the caller. */
  retryAfterMs?: number;
}

/** The errcodes both APIs define the same way (WeCom 全局错误码; Exmail's appendix follows it). */
export const TENCENT_SHARED_ERRCODES: Readonly<Record<number, TencentErrClass>> = {
  0: { kind: 'ok', reason: 'ok' },
  [-1]: { kind: 'retryable', reason: 'system busy' },
  40014: { kind: 'token', reason: 'invalid access_token' },
  42001: { kind: 'token', reason: 'access_token expired' },
  45009: { kind: 'retryable', reason: 'API call frequency limit reached', retryAfterMs: 60_000 },
  45011: { kind: 'retryable', reason: 'API call frequency limit reached', retryAfterMs: 60_000 },
  45033: { kind: 'retryable', reason: 'too many concurrent calls', retryAfterMs: 5_000 },
};

/** Busy and rate limits are retried from 200 ms up to 5 s (both APIs ask callers to back off, neither says how much). */
export const TENCENT_BACKOFF: BackoffOptions = { baseMs: 200, capMs: 5_000 };

/** One HTTP exchange failed before an errcode could be read (network, timeout, HTTP 5xx, not JSON). Never holds the URL. */
export class TencentTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TencentTransportError';
  }
}

/** One exchange: GET without a body, POST JSON with one. Throws TencentTransportError ('timeout', 'network error', 'HTTP 502', 'HTTP 200: not JSON'). */
export async function tencentExchange(fetchFn: typeof fetch, url: string, body: unknown, timeoutMs: number): Promise<TencentJson> {
  let res: Response;
  try {
    res = await fetchFn(url, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new TencentTransportError((err as Error).name === 'TimeoutError' ? 'timeout' : 'network error');
  }
  if (res.status >= 500) {
    await res.body?.cancel();
    throw new TencentTransportError(`HTTP ${res.status}`);
  }
  try {
    return (await res.json()) as TencentJson;
  } catch {
    throw new TencentTransportError(`HTTP ${res.status}: not JSON`);
  }
}

/** The errcode of an answer: absent = 0 (gettoken omits it on success in some versions); a numeric string is read as its number. */
export function errcodeOf(r: TencentJson): number {
  if (typeof r.errcode === 'number') return r.errcode;
  const n = Number(r.errcode ?? 0);
  return Number.isFinite(n) ? n : -1;
}

/** Why a call or a token request gave up, for the client to turn into its own error type. */
export interface TencentFailure {
  errcode: number;
  reason: string;
  retryable: boolean;
  retryAfterMs?: number;
  /** Attempts made (the first included). */
  attempts: number;
}

export interface TencentLoopOptions {
  fetch: typeof fetch;
  sleep: (ms: number) => Promise<void>;
  /** Retries after the first attempt for retryable failures. */
  maxRetries: number;
  timeoutMs: number;
  classify(errcode: number): TencentErrClass;
  fail(f: TencentFailure): Error;
  backoff?: BackoffOptions;
}

/** gettoken with retries on busy / rate limits / transport failures; any other errcode is permanent. */
export async function tencentToken(url: string, o: TencentLoopOptions): Promise<{ value: string; lifetimeMs: number }> {
  for (let attempt = 0; ; attempt++) {
    let failure: Omit<TencentFailure, 'attempts' | 'retryable'> = { errcode: -1, reason: 'network error' };
    try {
      const r = await tencentExchange(o.fetch, url, undefined, o.timeoutMs);
      const code = errcodeOf(r);
      if (code === 0 && typeof r.access_token === 'string' && r.access_token) {
        return { value: r.access_token, lifetimeMs: (typeof r.expires_in === 'number' && r.expires_in > 0 ? r.expires_in : 7200) * 1000 };
      }
      const cls = code === 0 ? { kind: 'permanent' as const, reason: 'answer without access_token' } : o.classify(code);
      if (cls.kind !== 'retryable') throw o.fail({ errcode: code, reason: cls.reason, retryable: false, attempts: attempt + 1 });
      failure = { errcode: code, reason: cls.reason, ...(cls.retryAfterMs ? { retryAfterMs: cls.retryAfterMs } : {}) };
    } catch (err) {
      if (!(err instanceof TencentTransportError)) throw err;
      failure = { errcode: -1, reason: err.message };
    }
    if (attempt >= o.maxRetries) throw o.fail({ ...failure, retryable: true, attempts: attempt + 1 });
    await o.sleep(backoffMs(attempt, o.backoff ?? TENCENT_BACKOFF));
  }
}

export interface TencentCallOptions extends TencentLoopOptions {
  tokens: TokenCache;
  /** The request URL for a token (the token goes in the query string). */
  url(token: string): string;
  body?: unknown;
  /** Hand these answers back instead of failing (e.g. 'not-found' where gone is fine). */
  pass?(errcode: number, cls: TencentErrClass): boolean;
  /** Awaited before each attempt goes out (a client-side rate limiter: core/rate-limit.ts). */
  before?(): Promise<void>;
  /**
   * A token errcode again right after a fresh token: 'retry' treats it as retryable (WeCom: a
   * token revoked under load); 'fail' gives up at once, not retryable (the secret's app lost
   * its access: an operator must act).
   */
  tokenAfterRefresh: 'retry' | 'fail';
}

/**
 * The call loop: a cached token; a token errcode drops it and fetches a new one once (that
 * first refresh is not a retry); busy, rate limits and transport failures are retried with
 * jittered backoff up to `maxRetries`, then given up as retryable with the API's block time;
 * anything else is permanent at once.
 */
export async function tencentCall(o: TencentCallOptions): Promise<TencentJson> {
  let refreshed = false;
  for (let attempt = 0; ; ) {
    const token = await o.tokens.get();
    await o.before?.();
    let failure: Omit<TencentFailure, 'attempts' | 'retryable'>;
    try {
      const r = await tencentExchange(o.fetch, o.url(token), o.body, o.timeoutMs);
      const code = errcodeOf(r);
      const cls = o.classify(code);
      if (cls.kind === 'ok' || o.pass?.(code, cls)) return r;
      if (cls.kind === 'token') {
        o.tokens.drop(token);
        if (!refreshed) {
          refreshed = true;
          continue;
        }
        if (o.tokenAfterRefresh === 'fail') throw o.fail({ errcode: code, reason: cls.reason, retryable: false, attempts: attempt + 1 });
      } else if (cls.kind !== 'retryable') {
        throw o.fail({ errcode: code, reason: cls.reason, retryable: false, attempts: attempt + 1 });
      }
      failure = { errcode: code, reason: cls.reason, ...(cls.retryAfterMs ? { retryAfterMs: cls.retryAfterMs } : {}) };
    } catch (err) {
      if (!(err instanceof TencentTransportError)) throw err;
      failure = { errcode: -1, reason: err.message };
    }
    if (attempt >= o.maxRetries) throw o.fail({ ...failure, retryable: true, attempts: attempt + 1 });
    await o.sleep(backoffMs(attempt++, o.backoff ?? TENCENT_BACKOFF));
  }
}

/** `<base>/cgi-bin/gettoken?corpid=…&corpsecret=…`. The result holds the secret: never log it. */
export function gettokenUrl(apiBase: string, corpId: string, secret: string): string {
  return `${apiBase.replace(/\/+$/, '')}/cgi-bin/gettoken?${new URLSearchParams({ corpid: corpId, corpsecret: secret })}`;
}
