/** The retry timing and token cache every provider client shares (functions/core/retry.ts). */
import { describe, expect, it } from 'vitest';
import { backoffMs, retryAfterMs, spreadRetryAfter, TokenCache } from '../../functions/core/retry';

describe('backoffMs', () => {
  it('doubles from base/2..base, never above the cap, never zero', () => {
    const o = { baseMs: 200, capMs: 5_000 };
    for (let i = 0; i < 200; i++) {
      const first = backoffMs(0, o);
      expect(first).toBeGreaterThanOrEqual(100);
      expect(first).toBeLessThanOrEqual(200);
      const third = backoffMs(2, o);
      expect(third).toBeGreaterThanOrEqual(400);
      expect(third).toBeLessThanOrEqual(800);
      expect(backoffMs(30, o)).toBeLessThanOrEqual(5_000);
      expect(backoffMs(30, o)).toBeGreaterThanOrEqual(2_500);
    }
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates, caps both, ignores garbage', () => {
    expect(retryAfterMs('2')).toBe(2_000);
    expect(retryAfterMs('0')).toBe(0);
    expect(retryAfterMs('86400')).toBe(300_000);
    expect(retryAfterMs('86400', 10_000)).toBe(10_000);
    const inTen = new Date(Date.now() + 10_000).toUTCString();
    expect(retryAfterMs(inTen)).toBeGreaterThan(8_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});

describe('spreadRetryAfter', () => {
  it('never less than asked, at most one second (or as much again) more, and spread', () => {
    const ones = Array.from({ length: 200 }, () => spreadRetryAfter(1_000));
    expect(Math.min(...ones)).toBeGreaterThanOrEqual(1_000);
    expect(Math.max(...ones)).toBeLessThanOrEqual(2_000);
    expect(new Set(ones).size).toBeGreaterThan(50); // not one instant for everyone
    const short = Array.from({ length: 200 }, () => spreadRetryAfter(200));
    expect(Math.max(...short)).toBeLessThanOrEqual(400);
    expect(Math.max(...Array.from({ length: 200 }, () => spreadRetryAfter(30_000)))).toBeLessThanOrEqual(31_000);
    expect(spreadRetryAfter(0)).toBe(0);
  });
});

describe('TokenCache', () => {
  it('one fetch for concurrent callers; reused until shortly before expiry; drop(value) only drops that token', async () => {
    let now = 0;
    let fetches = 0;
    const cache = new TokenCache(async () => ({ value: `t${++fetches}`, lifetimeMs: 7_200_000 }), () => now);
    expect(await Promise.all([cache.get(), cache.get(), cache.get()])).toEqual(['t1', 't1', 't1']);
    now = 7_200_000 - 300_001;
    expect(await cache.get()).toBe('t1');
    now = 7_200_000 - 299_999; // inside the 5-minute margin: refreshed
    expect(await cache.get()).toBe('t2');
    cache.drop('t1'); // an old token refused by the server: the current one stays
    expect(await cache.get()).toBe('t2');
    cache.drop('t2');
    expect(await cache.get()).toBe('t3');
  });

  it('a short-lived token is refreshed at half-life; a failed fetch is not cached', async () => {
    let now = 0;
    let fail = true;
    const cache = new TokenCache(async () => {
      if (fail) throw new Error('token endpoint down');
      return { value: 'short', lifetimeMs: 120_000 };
    }, () => now);
    await expect(cache.get()).rejects.toThrow(/down/);
    fail = false;
    expect(await cache.get()).toBe('short');
    now = 59_000;
    expect(await cache.get()).toBe('short');
    fail = true;
    now = 61_000;
    await expect(cache.get()).rejects.toThrow(/down/);
  });
});
