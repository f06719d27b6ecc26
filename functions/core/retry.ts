/**
 * Retry timing and token caching shared by every provider client (WeCom, Graph, …), so all
 * of them back off the same way and honour a server's Retry-After the same way.
 */

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** No single wait is longer. */
  capMs: number;
}

/**
 * Exponential backoff with jitter on the upper half: attempt 0 waits baseMs/2..baseMs, each
 * next attempt doubles, up to capMs. Half is fixed so a retry never comes back at once; half
 * is random so many clients throttled together do not come back together.
 */
export function backoffMs(attempt: number, o: BackoffOptions): number {
  const base = Math.min(o.capMs, o.baseMs * 2 ** Math.max(0, attempt));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** Retry-After (seconds or an HTTP date) in ms, capped (a bogus hour-long value must not park a worker). */
export function retryAfterMs(header: string | null | undefined, capMs = 300_000): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, capMs);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.min(date - Date.now(), capMs));
}

/**
 * A server's Retry-After, spread: at least what it asked, plus up to one more second (or as
 * much again, when it asked less). Every caller throttled in the same second would otherwise
 * come back in the same instant, meet the limit together, and waste the seconds between.
 */
export function spreadRetryAfter(ms: number): number {
  return Math.round(ms + Math.random() * Math.min(ms, 1_000));
}

/**
 * An access token, fetched once for every concurrent caller and kept until shortly before
 * it expires (5 minutes early, or at half-life for short tokens), so no request starts with
 * a token about to lapse. `drop(value)` forgets it after the server refused it.
 */
export class TokenCache {
  private value?: string;
  private refreshAt = 0;
  private inflight?: Promise<string>;

  constructor(
    private readonly fetchToken: () => Promise<{ value: string; lifetimeMs: number }>,
    private readonly now: () => number = Date.now,
    private readonly marginMs = 5 * 60_000,
  ) {}

  get(): Promise<string> {
    if (this.value && this.now() < this.refreshAt) return Promise.resolve(this.value);
    this.inflight ??= this.fetchToken()
      .then(({ value, lifetimeMs }) => {
        this.value = value;
        this.refreshAt = this.now() + lifetimeMs - Math.min(this.marginMs, lifetimeMs / 2);
        return value;
      })
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /** Forget the token (all of it, or only if it is still `value`: a newer one is kept). */
  drop(value?: string): void {
    if (value !== undefined && value !== this.value) return;
    this.value = undefined;
    this.refreshAt = 0;
  }
}
