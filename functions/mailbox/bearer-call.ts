/**
 * The request loop of the mailbox APIs that take an OAuth bearer token and speak JSON (Graph,
 * Google): one place for what they share, while each keeps its own reading of a refusal.
 *
 * - The token comes from the client's TokenCache; a 401 drops it and fetches a new one, once
 *   (lapsed or revoked early), then the 401 is the provider's `auth` error.
 * - A network failure is retried with the provider's backoff.
 * - Any other answer outside 2xx (and the caller's `accept` list) is read by the provider's
 *   `judge`: Graph decides by status and spreads Retry-After; Google also reads a 403's reason
 *   (`rateLimitExceeded` means "slow down", not "forbidden") and pauses its other callers. A
 *   retryable refusal is retried after the judged wait; when retries run out it is thrown,
 *   still retryable and carrying the wait, so the queue tries again later.
 * - One attempt counter spans network errors and refusals: `maxRetries` bounds the whole call.
 *
 * The Tencent-style APIs (WeCom, Exmail: a token in the query, errcode in a 200 body) have
 * their own loop, core/tencent.ts.
 */
import { log } from '../core/log';
import { backoffMs, TokenCache, type BackoffOptions } from '../core/retry';
import { MailboxError } from './directory';

export interface BearerTransport {
  /** For messages and logs: 'Graph', 'Google'. */
  vendor: string;
  fetchFn: typeof fetch;
  tokens: TokenCache;
  sleep: (ms: number) => Promise<void>;
  /** Retries after the first attempt. */
  maxRetries: number;
  backoff: BackoffOptions;
}

export interface BearerRequest {
  method: string;
  url: string;
  /** Route template for errors and logs, e.g. 'PATCH /users/{id}': never the concrete path. */
  route: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Statuses answered to the caller instead of thrown (e.g. 404 on get). */
  accept?: number[];
}

export interface BearerResult {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/**
 * A refusal as the provider reads it: its error (retryable or not, with the server's
 * Retry-After) and, when retryable, how long to wait (default: the server's Retry-After, else
 * the backoff for this attempt).
 */
export type Judge = (status: number, json: unknown, headers: Headers) => { error: MailboxError; waitMs?: number };

export async function bearerCall(t: BearerTransport, req: BearerRequest, judge: Judge): Promise<BearerResult> {
  let refreshed = false;
  for (let attempt = 0; ; ) {
    const token = await t.tokens.get();
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json', ...req.headers };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await t.fetchFn(req.url, { method: req.method, headers, ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}) });
    } catch {
      if (attempt >= t.maxRetries) throw new MailboxError(`${t.vendor} ${req.route}: network error`, true, 'NetworkError', undefined, 'unavailable');
      await t.sleep(backoffMs(attempt++, t.backoff));
      continue;
    }
    if (res.status === 401 && !refreshed) {
      refreshed = true;
      t.tokens.drop(token);
      await res.body?.cancel();
      continue;
    }
    const text = await res.text();
    const json = text ? safeJson(text) : undefined;
    if (res.ok || req.accept?.includes(res.status)) return { status: res.status, json };
    const { error, waitMs } = judge(res.status, json, res.headers);
    if (!error.retryable) throw error;
    const wait = waitMs ?? error.retryAfterMs ?? backoffMs(attempt, t.backoff);
    if (attempt >= t.maxRetries) throw new MailboxError(`${error.message} (after ${attempt} retries)`, true, error.code, error.retryAfterMs ?? wait, error.kind);
    log.debug(`${t.vendor.toLowerCase()} throttled; waiting`, { route: req.route, status: res.status, reason: error.code, waitMs: wait, attempt });
    await t.sleep(wait);
    attempt++;
  }
}

/** A token request retried while its failure is retryable (throttled, unavailable), with the provider's backoff. */
export async function fetchTokenWithRetry(
  request: () => Promise<{ value: string; lifetimeMs: number }>,
  t: Pick<BearerTransport, 'sleep' | 'maxRetries' | 'backoff'>,
): Promise<{ value: string; lifetimeMs: number }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      if (!(err instanceof MailboxError) || !err.retryable || attempt >= t.maxRetries) throw err;
      await t.sleep(err.retryAfterMs ?? backoffMs(attempt, t.backoff));
    }
  }
}

/** What a caller (tests, the health check) may set on a bearer client's transport. */
export interface BearerClientOptions {
  fetch?: typeof fetch;
  now?: () => Date;
  /** Retries of a throttled / unavailable call before giving up (default 4). */
  maxRetries?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The part of a bearer-token client that does not depend on the provider: its transport, the
 * token cache in front of the provider's `requestToken`, and `send`. Graph and Google add how
 * they get a token, their URLs and their judge of a refusal.
 */
export abstract class BearerClient {
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
  readonly maxRetries: number;
  protected readonly fetchFn: typeof fetch;
  private readonly cache: TokenCache;
  private readonly transport: BearerTransport;

  constructor(vendor: string, o: BearerClientOptions, backoff: BackoffOptions) {
    this.fetchFn = o.fetch ?? fetch;
    this.now = o.now ?? (() => new Date());
    this.maxRetries = o.maxRetries ?? 4;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.cache = new TokenCache(() => fetchTokenWithRetry(() => this.requestToken(), this.transport), () => this.now().getTime());
    this.transport = { vendor, fetchFn: this.fetchFn, tokens: this.cache, sleep: this.sleep, maxRetries: this.maxRetries, backoff };
  }

  /** One token request, no cache, no retry: what the health probe asks (does the credential work right now?). */
  abstract requestToken(): Promise<{ value: string; lifetimeMs: number }>;

  /** The cached access token (fetched when missing or about to lapse). */
  token(): Promise<string> {
    return this.cache.get();
  }

  protected send(req: BearerRequest, judge: Judge): Promise<BearerResult> {
    return bearerCall(this.transport, req, judge);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
