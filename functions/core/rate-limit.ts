/**
 * A client-side budget per key (per API): a token bucket that makes callers wait rather than
 * meet the server's limit. WeCom blocks an API for 60 s once its per-minute limit is
 * exceeded (10,000 calls/min per API per corp), so being refused costs far more than waiting.
 *
 * Sized for a fixed minute window: a bucket of `burstShare` × the budget, refilled at the
 * rest of it per minute, can never spend more than `perMinute` in any 60 s (burst + refill).
 * The budget is per process (a Lambda container): the deployment divides the corp's limit by
 * the worker's reserved concurrency (lib/stack.ts).
 */
export interface RateLimitOptions {
  perMinute: number;
  /** Share of the minute's budget that may go at once (default 0.15). */
  burstShare?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number; queue: Promise<void> }>();
  private readonly capacity: number;
  private readonly perMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Milliseconds callers waited, in total (a metric: a busy limiter means the budget binds). */
  waitedMs = 0;

  constructor(o: RateLimitOptions) {
    const burst = o.burstShare ?? 0.15;
    this.capacity = Math.max(1, Math.floor(o.perMinute * burst));
    this.perMs = (o.perMinute - this.capacity) / 60_000;
    if (this.perMs <= 0) throw new Error('rate limit: perMinute must leave room after the burst');
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Wait for one call's token of `key`; callers of one key are served in order. */
  take(key: string): Promise<void> {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.capacity, at: this.now(), queue: Promise.resolve() };
      this.buckets.set(key, b);
    }
    const bucket = b;
    const turn = bucket.queue.then(async () => {
      for (;;) {
        const t = this.now();
        bucket.tokens = Math.min(this.capacity, bucket.tokens + (t - bucket.at) * this.perMs);
        bucket.at = t;
        if (bucket.tokens >= 1) {
          bucket.tokens -= 1;
          return;
        }
        const wait = Math.ceil((1 - bucket.tokens) / this.perMs);
        this.waitedMs += wait;
        await this.sleep(wait);
      }
    });
    bucket.queue = turn;
    return turn;
  }
}
