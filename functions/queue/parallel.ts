/**
 * Bounded parallelism for the receivers' and the sweep's single-item writes. Each inbox
 * write is one conditional DynamoDB request (no transactions, no conditional batch writes),
 * so a Graph POST of 1,000 notifications is 2,000 requests: one at a time they are ~2,000
 * round trips, with `limit` in flight they are ~2,000 / limit. The bound keeps a burst
 * within the SDK's socket pool (50 per client by default) and DynamoDB's per-partition rate.
 */

export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * `fn` over every item with at most `limit` calls in flight; never rejects. Results are in
 * item order. Every item is attempted even after a failure: what succeeds is progress a
 * retry does not redo (a recorded item answers 'duplicate' next time).
 */
export async function mapSettled<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<Settled<R>[]> {
  const results = new Array<Settled<R>>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { ok: true, value: await fn(items[i]!, i) };
      } catch (error) {
        results[i] = { ok: false, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return results;
}

/** Split into consecutive chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
