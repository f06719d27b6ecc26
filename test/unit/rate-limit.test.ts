/**
 * The client-side budget (core/rate-limit.ts) and the WeCom client behind it: over any minute
 * a key never spends more than its budget, callers wait instead of being refused, and against
 * the simulator's real limit (45009 + a block) a burst that would have been refused is not.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createWecomSim } from '../../bin/local/sim/wecom';
import { RateLimiter } from '../../functions/core/rate-limit';
import { WecomApiClient } from '../../functions/wecom/api';

describe('RateLimiter', () => {
  it('never more than perMinute in any 60 s window, per key; a second key has its own budget', async () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 600, now: () => now, sleep: async (ms) => void (now += ms) });
    const at: number[] = [];
    for (let i = 0; i < 1_500; i++) {
      await limiter.take('user/get');
      at.push(now);
    }
    for (let i = 0; i < at.length; i++) {
      let j = i;
      while (j < at.length && at[j]! < at[i]! + 60_000) j++;
      expect(j - i).toBeLessThanOrEqual(600);
    }
    // The sustained rate is the budget's: 1,500 calls take about 1,500/600 minutes less the burst.
    expect(at.at(-1)! / 60_000).toBeGreaterThan((1_500 - 600) / 600);
    const other = now;
    await limiter.take('user/create'); // a fresh bucket: no wait
    expect(now).toBe(other);
    expect(limiter.waitedMs).toBeGreaterThan(0);
  });

  it('concurrent callers of one key are served one token each, in order', async () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 120, burstShare: 0.05, now: () => now, sleep: async (ms) => void (now += ms) });
    const order: number[] = [];
    await Promise.all(Array.from({ length: 20 }, (_, i) => limiter.take('k').then(() => order.push(i))));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });
});

describe('WecomApiClient with callsPerMinute against the simulator’s limit', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => close?.());

  it('a burst over the limit: without a budget it meets 45009, with one every call succeeds (a virtual minute)', async () => {
    let now = 1_000_000;
    // Virtual minutes, but a sleep still yields to the sockets, so each call reaches the
    // simulator at (about) the virtual time its token was granted.
    const clock = { now: () => now, sleep: async (ms: number) => { now += ms; await new Promise((t) => setTimeout(t, 3)); } };
    const corp = { corpId: 'wwlimit', contactsSecret: 'c', appSecret: 'a' };
    const sim = createWecomSim({ ...corp, rateLimit: { perApi: 40, windowMs: 60_000, blockMs: 60_000 }, now: clock.now });
    const srv = await sim.start();
    close = srv.close;
    sim.users.set('a', { userid: 'a', name: 'A', department: [1], main_department: 1, enable: 1, status: 1 });

    const blunt = new WecomApiClient({ apiBase: srv.baseUrl, ...corp, maxRetries: 0, ...clock });
    const results = await Promise.allSettled(Array.from({ length: 60 }, () => blunt.getUser('a')));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(20);
    expect(sim.rateLimited['user/get']).toBe(20);

    now += 120_000; // the block and the window pass
    delete sim.rateLimited['user/get'];
    const careful = new WecomApiClient({ apiBase: srv.baseUrl, ...corp, maxRetries: 0, callsPerMinute: 40, ...clock });
    const start = now;
    const ok = await Promise.allSettled(Array.from({ length: 60 }, () => careful.getUser('a')));
    expect(ok.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    expect(sim.rateLimited).toEqual({});
    expect(now - start).toBeGreaterThan(60_000); // 60 calls at 40 per minute: it waited instead
  });
});
