/**
 * Exmail's change feed (mailbox/exmail/feed.ts): the operation log read from a cursor on a
 * schedule, each account record queued once as `mailbox:exmail:<address>` — across restarts,
 * across a crash between the enqueue and the cursor write, across a gap, without record ids.
 * Against the simulator's log/operation (whole days, range limit, newest first), an in-memory
 * cursor store and a recording queue; a controlled clock drives both sides.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createExmailSim, type ExmailSim } from '../../bin/local/sim/exmail';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { ExmailClient } from '../../functions/mailbox/exmail/client';
import { pollOperationLog } from '../../functions/mailbox/exmail/feed';
import { exmail } from '../../functions/mailbox/exmail/index';
import type { FeedCursorStore } from '../../functions/mailbox/provider';
import type { SyncMessage } from '../../functions/queue/messages';

const SECRET = { corpId: 'wm-feed', contactsSecret: 'c-secret', logSecret: 'l-secret', webhookSecret: 'w' };
const T0 = Date.parse('2026-12-03T02:00:00Z'); // 10:00 in Beijing
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

interface Setup {
  sim: ExmailSim;
  clock: { t: number };
  store: FeedCursorStore & { value?: string; puts: number; failNextPut: boolean };
  queued: SyncMessage[];
  /** A fresh provider connection (a cold start) on the same simulator, cursor store and queue. */
  connect(o?: { logSecret?: boolean }): ReturnType<typeof exmail.create>;
  baseUrl: string;
}

async function setup(o: { settings?: Record<string, unknown>; logMaxRangeDays?: number } = {}): Promise<Setup> {
  const clock = { t: T0 };
  const now = () => new Date(clock.t);
  const sim = createExmailSim({ corpId: SECRET.corpId, contactsSecret: SECRET.contactsSecret, logSecret: SECRET.logSecret, now, ...(o.logMaxRangeDays ? { logMaxRangeDays: o.logMaxRangeDays } : {}) });
  const server = await sim.start();
  close = server.close;
  const store: Setup['store'] = {
    puts: 0,
    failNextPut: false,
    async get() {
      return this.value;
    },
    async put(cursor) {
      if (this.failNextPut) {
        this.failNextPut = false;
        throw new Error('simulated crash before the cursor write');
      }
      this.puts++;
      this.value = cursor;
    },
  };
  const queued: SyncMessage[] = [];
  const config = parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { apiBase: server.baseUrl, ...o.settings } });
  const connect = (c: { logSecret?: boolean } = {}) =>
    exmail.create(config, c.logSecret === false ? { ...SECRET, logSecret: '' } : SECRET, {
      now,
      sleep: async () => undefined,
      feed: { cursor: store, enqueue: async (m) => void queued.push(...m) },
    });
  return { sim, clock, store, queued, connect, baseUrl: server.baseUrl };
}

const people = (sim: ExmailSim, n: number) => Array.from({ length: n }, (_, i) => sim.seedUser({ userid: `p${i}@example.com`, name: `第${i}号`, extid: `p${i}` }));
const view = (q: SyncMessage[]) => q.map((m) => [m.subject, m.hint]);

describe('Exmail operation-log feed', () => {
  it('the first run starts from now: what happened before is the reconcile’s, nothing is queued', async () => {
    const s = await setup();
    const [a] = people(s.sim, 1);
    s.sim.console.disable(a!.userid);
    const feed = s.connect().feed;
    expect(feed.kind).toBe('poll');
    expect(await feed.upkeep()).toEqual({ kind: 'poll', caughtUp: { changed: 0, full: true } });
    expect(s.queued).toEqual([]);
    expect(JSON.parse(s.store.value!)).toMatchObject({ v: 1, since: Math.floor(T0 / 1000) - 120 });
    expect(s.sim.requests.filter((r) => r.api === 'log/operation')[0]).toMatchObject({ app: 'log', body: { type: 0, begin_date: '2026-12-03', end_date: '2026-12-03' } });
  });

  it('console offboarding (disable, delete), re-enable, creation and edits each queue one message for the account', async () => {
    const s = await setup();
    const [a, b, c] = people(s.sim, 3);
    const feed = s.connect().feed;
    await feed.upkeep();
    s.clock.t += MIN;
    // One edit a second, as an administrator clicks (records of one second come in the API's order).
    const edits = [
      () => s.sim.console.disable(a!.userid),
      () => s.sim.console.delete(b!.userid),
      () => s.sim.console.enable(a!.userid),
      () => s.sim.console.update(c!.userid, { position: '顾问' }),
      () => s.sim.console.create({ userid: 'New.Hire@example.com', name: '新人' }),
    ];
    for (const edit of edits) {
      edit();
      s.clock.t += 1000;
    }
    s.clock.t += MIN;
    expect(await feed.upkeep()).toEqual({ kind: 'poll', caughtUp: { changed: 5, full: false } });
    expect(view(s.queued)).toEqual([
      ['mailbox:exmail:p0@example.com', 'exmail.disabled'],
      ['mailbox:exmail:p1@example.com', 'exmail.deleted'],
      ['mailbox:exmail:p0@example.com', 'exmail.enabled'],
      ['mailbox:exmail:p2@example.com', 'exmail.updated'],
      ['mailbox:exmail:new.hire@example.com', 'exmail.created'],
    ]);
    expect(s.queued.every((m) => m.source === 'mailbox' && m.operator === 'exmail-log' && /^[0-9a-f]{64}$/.test(m.eventId))).toBe(true);
    expect(new Set(s.queued.map((m) => m.eventId)).size).toBe(5);
    s.queued.length = 0;
    s.clock.t += MIN;
    expect(await feed.upkeep()).toEqual({ kind: 'poll', caughtUp: { changed: 0, full: false } });
    expect(s.queued).toEqual([]);
  });

  it('the adapter’s own writes come back through the log too (the worker re-reads and finds nothing to do)', async () => {
    const s = await setup();
    const { feed, directory } = s.connect();
    await feed.upkeep();
    s.clock.t += MIN;
    const a = await directory.create({ employeeId: 'zhangsan', email: 'zhangsan@example.com', displayName: '张三' });
    s.clock.t += 1000;
    await directory.disable(a.id);
    s.clock.t += MIN;
    await feed.upkeep();
    expect(view(s.queued)).toEqual([
      ['mailbox:exmail:zhangsan@example.com', 'exmail.created'],
      ['mailbox:exmail:zhangsan@example.com', 'exmail.disabled'],
    ]);
  });

  it('exactly once across restarts: a new instance on the same cursor store queues only what is new', async () => {
    const s = await setup();
    const [a, b] = people(s.sim, 2);
    await s.connect().feed.upkeep();
    s.clock.t += MIN;
    s.sim.console.disable(a!.userid);
    s.clock.t += MIN;
    await s.connect().feed.upkeep(); // cold start #2
    s.clock.t += MIN;
    s.sim.console.disable(b!.userid);
    s.clock.t += MIN;
    await s.connect().feed.upkeep(); // cold start #3
    await s.connect().feed.upkeep(); // and #4, at once
    expect(view(s.queued)).toEqual([
      ['mailbox:exmail:p0@example.com', 'exmail.disabled'],
      ['mailbox:exmail:p1@example.com', 'exmail.disabled'],
    ]);
  });

  it('a crash between the enqueue and the cursor write loses nothing, and the re-read carries the same eventIds', async () => {
    const s = await setup();
    const [a, b] = people(s.sim, 2);
    await s.connect().feed.upkeep();
    s.clock.t += MIN;
    s.sim.console.disable(a!.userid);
    s.sim.console.delete(b!.userid);
    s.clock.t += MIN;
    s.store.failNextPut = true;
    await expect(s.connect().feed.upkeep()).rejects.toThrow(/simulated crash/);
    const first = s.queued.map((m) => m.eventId);
    expect(first).toHaveLength(2);
    s.clock.t += MIN;
    await s.connect().feed.upkeep();
    // The same two records queued again with the same eventIds: the queue's dedupe id
    // (eventId + subject) or the inbox absorbs them; the worker is level-driven anyway.
    expect(s.queued.map((m) => m.eventId)).toEqual([...first, ...first]);
    expect(new Set(s.queued.map((m) => `${m.eventId}|${m.subject}`)).size).toBe(2);
    s.queued.length = 0;
    await s.connect().feed.upkeep();
    expect(s.queued).toEqual([]);
  });

  it('a gap (the stack down for an hour) is read from the cursor: every change in it, once', async () => {
    const s = await setup();
    const users = people(s.sim, 6);
    await s.connect().feed.upkeep();
    for (const [i, u] of users.entries()) {
      s.clock.t += 10 * MIN; // one console edit every ten minutes while nothing polls
      if (i % 2) s.sim.console.disable(u.userid);
      else s.sim.console.delete(u.userid);
    }
    expect(s.clock.t - T0).toBe(HOUR);
    await s.connect().feed.upkeep();
    expect(s.queued.map((m) => m.subject).sort()).toEqual(users.map((u) => `mailbox:exmail:${u.userid}`).sort());
    expect(new Set(s.queued.map((m) => m.eventId)).size).toBe(6);
  });

  it('a gap longer than one request may span is read in windows within the range limit, midnight included', async () => {
    const s = await setup({ settings: { logMaxRangeDays: 3 }, logMaxRangeDays: 3 });
    const users = people(s.sim, 8);
    await s.connect().feed.upkeep();
    const before = s.sim.requests.filter((r) => r.api === 'log/operation').length;
    for (const u of users) {
      s.clock.t += DAY; // one a day for eight days
      s.sim.console.disable(u.userid);
    }
    await s.connect().feed.upkeep();
    const reads = s.sim.requests.filter((r) => r.api === 'log/operation').slice(before);
    expect(reads.map((r) => r.errcode)).toEqual([0, 0, 0]); // days 3..11 of December: three windows of ≤ 3 days
    expect(reads.map((r) => [(r.body as { begin_date: string }).begin_date, (r.body as { end_date: string }).end_date])).toEqual([
      ['2026-12-03', '2026-12-05'],
      ['2026-12-06', '2026-12-08'],
      ['2026-12-09', '2026-12-11'],
    ]);
    expect(s.queued.map((m) => m.subject)).toEqual(users.map((u) => `mailbox:exmail:${u.userid}`));
  });

  it('a record the log writes late is still found within the overlap; identical records in one second stay two', async () => {
    const s = await setup();
    await s.connect().feed.upkeep();
    s.clock.t += 10 * MIN;
    await s.connect().feed.upkeep();
    const nowSec = Math.floor(s.clock.t / 1000);
    // Written after our read, stamped 60 s before it (within the 120 s overlap)…
    s.sim.appendLog({ time: nowSec - 60, operator: 'admin@example.com', type: 22, operand: 'late@example.com' });
    // …and one stamped 10 minutes before (beyond the overlap: the reconcile's).
    s.sim.appendLog({ time: nowSec - 600, operator: 'admin@example.com', type: 22, operand: 'too.late@example.com' });
    // Two identical records in one second (a double click in the console): two records, two messages.
    s.sim.appendLog({ time: nowSec + 5, operator: 'admin@example.com', type: 23, operand: 'twice@example.com' });
    s.sim.appendLog({ time: nowSec + 5, operator: 'admin@example.com', type: 23, operand: 'twice@example.com' });
    s.clock.t += MIN;
    await s.connect().feed.upkeep();
    expect(s.queued.map((m) => m.subject)).toEqual(['mailbox:exmail:late@example.com', 'mailbox:exmail:twice@example.com', 'mailbox:exmail:twice@example.com']);
    expect(new Set(s.queued.map((m) => m.eventId)).size).toBe(3);
    s.clock.t += MIN;
    await s.connect().feed.upkeep();
    expect(s.queued).toHaveLength(3);
  });

  it('records that are not about one account are not queued; a restore (type 20, remark 1) says so', async () => {
    const s = await setup();
    const [a] = people(s.sim, 1);
    await s.connect().feed.upkeep();
    s.clock.t += MIN;
    const t = Math.floor(s.clock.t / 1000);
    s.sim.appendLog({ time: t, operator: 'admin@example.com', type: 28, operand: '技术部' }); // new department
    s.sim.appendLog({ time: t, operator: 'admin@example.com', type: 3, operand: 'example.org' }); // domain added
    s.sim.appendLog({ time: t, operator: 'admin@example.com', type: 25, operand: '导入 20 人' }); // batch import: no address
    s.sim.console.restore(a!);
    s.clock.t += MIN;
    await s.connect().feed.upkeep();
    expect(view(s.queued)).toEqual([['mailbox:exmail:p0@example.com', 'exmail.restored']]);
  });

  it('is not wired without the log secret or without a cursor store; the health probe says so', async () => {
    const s = await setup();
    const noLog = s.connect({ logSecret: false });
    expect(await noLog.feed.upkeep()).toEqual({ kind: 'poll', skipped: expect.stringContaining('logSecret') });
    const probes = noLog.health();
    expect(probes.map((p) => p.name)).toEqual(['exmail-token', 'exmail-log-token']);
    expect(await probes[0]!.run(new Date())).toEqual({ ok: true, detail: 'token ok' });
    expect(await probes[1]!.run(new Date())).toMatchObject({ ok: false, detail: expect.stringContaining('reconcile') });
    const config = parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { apiBase: s.baseUrl } });
    expect(await exmail.create(config, SECRET).feed.upkeep()).toEqual({ kind: 'poll', skipped: expect.stringContaining('not wired') });
    expect(await s.connect().health()[1]!.run(new Date())).toEqual({ ok: true, detail: 'token ok' });
  });
});

describe('the cursor stays small and bounded', () => {
  it('a burst larger than maxSeen keeps whole seconds only, moves since past the dropped ones, and queues nothing twice', async () => {
    const s = await setup();
    const now = () => new Date(s.clock.t);
    const client = new ExmailClient({ apiBase: s.baseUrl, corpId: SECRET.corpId, secret: SECRET.logSecret, app: 'log', now });
    const o = { cursor: s.store, enqueue: async (m: SyncMessage[]) => void s.queued.push(...m), now, logType: 0, logMaxRangeDays: 30, logOverlapSeconds: 120, logLookbackDays: 90, logUtcOffsetMinutes: 480, maxSeen: 4 };
    await pollOperationLog(client, o);
    const t = Math.floor(s.clock.t / 1000);
    for (let i = 0; i < 10; i++) s.sim.appendLog({ time: t + i, operator: 'admin@example.com', type: 22, operand: `p${i}@example.com` });
    s.clock.t += 20_000;
    expect(await pollOperationLog(client, o)).toMatchObject({ changed: 10, requests: 1 });
    const cursor = JSON.parse(s.store.value!) as { since: number; seen: Record<string, string> };
    expect(Object.values(cursor.seen).join('').length / 16).toBeLessThanOrEqual(4);
    expect(cursor.since).toBe(t + 6);
    expect(await pollOperationLog(client, o)).toMatchObject({ changed: 0 });
    expect(s.queued).toHaveLength(10);
  });

  it('a cursor older than the lookback is read from the lookback horizon, not from months ago', async () => {
    const s = await setup({ settings: { logLookbackDays: 7, logMaxRangeDays: 7 } });
    s.store.value = JSON.stringify({ v: 1, since: Math.floor((T0 - 200 * DAY) / 1000), seen: {} });
    await s.connect().feed.upkeep();
    const reads = s.sim.requests.filter((r) => r.api === 'log/operation');
    expect(reads).toHaveLength(2); // the 7 days before today, and today
    expect((reads[0]!.body as { begin_date: string }).begin_date).toBe('2026-11-26');
  });

  it('an unreadable cursor starts from now instead of failing every run', async () => {
    const s = await setup();
    s.store.value = 'not json';
    expect(await s.connect().feed.upkeep()).toEqual({ kind: 'poll', caughtUp: { changed: 0, full: true } });
  });
});
