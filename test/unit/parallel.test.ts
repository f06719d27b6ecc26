/** Bounded parallelism used by the receivers and the inbox sweep (functions/queue/parallel.ts). */
import { describe, expect, it } from 'vitest';
import { chunks, mapSettled } from '../../functions/queue/parallel';

describe('mapSettled', () => {
  it('keeps at most `limit` calls in flight, attempts every item even after failures, results in item order', async () => {
    let inFlight = 0;
    let max = 0;
    const seen: number[] = [];
    const out = await mapSettled(Array.from({ length: 50 }, (_, i) => i), 7, async (n) => {
      max = Math.max(max, ++inFlight);
      await new Promise((r) => setTimeout(r, n % 3));
      inFlight--;
      seen.push(n);
      if (n % 10 === 3) throw new Error(`no ${n}`);
      return n * 2;
    });
    expect(max).toBe(7);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(out.map((r) => (r.ok ? r.value : 'x'))).toEqual(Array.from({ length: 50 }, (_, i) => (i % 10 === 3 ? 'x' : i * 2)));
    expect(out.filter((r) => !r.ok).map((r) => String((r as { error: unknown }).error))).toEqual(['Error: no 3', 'Error: no 13', 'Error: no 23', 'Error: no 33', 'Error: no 43']);
  });

  it('limit 1 is one at a time; no items is no call', async () => {
    const order: string[] = [];
    await mapSettled(['a', 'b', 'c'], 1, async (x) => {
      order.push(`start ${x}`);
      await new Promise((r) => setTimeout(r, 1));
      order.push(`end ${x}`);
    });
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(await mapSettled([], 8, async () => 1)).toEqual([]);
  });
});

describe('chunks', () => {
  it('splits in order into pieces of at most `size`', () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 10)).toEqual([]);
  });
});
