/**
 * Exmail benchmark, against the loopback simulator (bin/local/sim/exmail) in this process:
 *
 * 1. Poll: an operation log holding N account records spread over the last hour (a stack
 *    that was down for an hour during a mass offboarding), read by ONE scheduled upkeep from a
 *    stored cursor (mailbox/exmail/feed.ts): time, requests, messages, heap growth, the size
 *    of the cursor it stores. Then a second upkeep: nothing again.
 * 2. Drain: M account creations through the adapter (ExmailDirectory.create, C at a time, a
 *    give-up re-run as the queue would) against the simulator's frequency limit on user/create
 *    (45009 past R calls per second per API; Exmail's published-by-hearsay limit is 500 per
 *    minute per API, scaled up here to keep the run short). Achieved rate vs the limit, 45009s
 *    answered, lost / duplicate accounts.
 *
 * CPU: the process's user+system time, and the simulator's own share (time inside its request
 * handling): if the simulator were the bottleneck the figures would describe it, not the
 * adapter. Env: EXMAIL_BENCH_LOG_N (default 20000), EXMAIL_BENCH_DRAIN_N (2000),
 * EXMAIL_BENCH_RATE (user/create calls per second allowed, 100), EXMAIL_BENCH_CONCURRENCY (16).
 *
 * `npx tsx test/bench/exmail-poll.bench.ts`
 */
import { createExmailSim } from '../../bin/local/sim/exmail';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { MailboxError } from '../../functions/mailbox/directory';
import { exmail } from '../../functions/mailbox/exmail/index';
import type { FeedCursorStore } from '../../functions/mailbox/provider';

const LOG_N = Number(process.env.EXMAIL_BENCH_LOG_N ?? 20_000);
const DRAIN_N = Number(process.env.EXMAIL_BENCH_DRAIN_N ?? 2_000);
const RATE = Number(process.env.EXMAIL_BENCH_RATE ?? 100);
const CONCURRENCY = Number(process.env.EXMAIL_BENCH_CONCURRENCY ?? 16);
const SECRET = { corpId: 'wm-bench', contactsSecret: 'c-bench', logSecret: 'l-bench', webhookSecret: 'w' };

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

async function poll(): Promise<void> {
  const clock = { t: Date.parse('2026-12-03T03:00:00Z') };
  const now = () => new Date(clock.t);
  const sim = createExmailSim({ ...SECRET, now });
  const server = await sim.start();
  let stored: string | undefined;
  const cursor: FeedCursorStore = { get: async () => stored, put: async (c) => void (stored = c) };
  let queued = 0;
  const connect = () =>
    exmail.create(parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { apiBase: server.baseUrl } }), SECRET, {
      now,
      feed: { cursor, enqueue: async (m) => void (queued += m.length) },
    });
  try {
    await connect().feed.upkeep(); // the cursor, from now
    const start = Math.floor(clock.t / 1000);
    for (let i = 0; i < LOG_N; i++) {
      const t = start + Math.floor((i * 3600) / LOG_N) + 1;
      sim.appendLog({ time: t, operator: 'admin@example.com', type: i % 3 === 0 ? 20 : 22, operand: `p${i}@example.com` });
    }
    clock.t += 3600_000 + 60_000;
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const cpu0 = cpuMs();
    const busy0 = sim.busyMs();
    const t0 = performance.now();
    const r = await connect().feed.upkeep();
    const ms = performance.now() - t0;
    const cpu = cpuMs() - cpu0;
    const heap = process.memoryUsage().heapUsed - heap0;
    const again = await connect().feed.upkeep();
    console.log(`poll: ${LOG_N} log records over one hour read by one upkeep in ${ms.toFixed(0)} ms (${((LOG_N / ms) * 1000).toFixed(0)} records/s)`);
    console.log(`      queued ${queued} (expected ${LOG_N}), result ${JSON.stringify(r.caughtUp)}; next upkeep ${JSON.stringify(again.caughtUp)}`);
    console.log(`      requests log/operation: ${sim.calls['log/operation']}, heap growth ${mb(heap)}, cursor ${(stored?.length ?? 0) / 1024 | 0} KB`);
    console.log(`      CPU ${cpu.toFixed(0)} ms of ${ms.toFixed(0)} ms wall; simulator share ${(((sim.busyMs() - busy0) / ms) * 100).toFixed(0)} % of wall`);
    if (queued !== LOG_N || again.caughtUp?.changed !== 0) throw new Error('poll: lost or duplicated records');
  } finally {
    await server.close();
  }
}

async function drain(): Promise<void> {
  const sim = createExmailSim({ ...SECRET, rateLimit: { calls: RATE, windowMs: 1000 } });
  const server = await sim.start();
  try {
    const config = parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { apiBase: server.baseUrl } });
    const { directory } = exmail.create(config, SECRET);
    await directory.ensureGroup('技术部/研发组'); // the tree read once, as a warm container has it
    let next = 0;
    let requeued = 0;
    const cpu0 = cpuMs();
    const busy0 = sim.busyMs();
    const t0 = performance.now();
    const worker = async () => {
      for (let i = next++; i < DRAIN_N; i = next++) {
        const input = { employeeId: `u${i}`, email: `u${i}@example.com`, displayName: `员工${i}`, mobile: '+8613800138000', jobTitle: '工程师', department: '技术部/研发组' };
        for (;;) {
          try {
            await directory.create(input);
            break;
          } catch (err) {
            // Given up retryable (45009 outlasting the adapter's retries): the queue runs it again;
            // a conflict means an earlier attempt landed after all.
            if (err instanceof MailboxError && err.kind === 'conflict') break;
            if (!(err instanceof MailboxError) || !err.retryable) throw err;
            requeued++;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const ms = performance.now() - t0;
    const cpu = cpuMs() - cpu0;
    const creates = sim.requests.filter((r) => r.api === 'user/create');
    const throttled = creates.filter((r) => r.errcode === 45009).length;
    const stored = [...sim.users.values()].filter((u) => /^u\d+$/.test(u.extid));
    const rate = (DRAIN_N / ms) * 1000;
    console.log(`drain: ${DRAIN_N} creations, ${CONCURRENCY} at a time, limit ${RATE} user/create per second: ${ms.toFixed(0)} ms`);
    console.log(`       achieved ${rate.toFixed(1)} creations/s = ${((rate / RATE) * 100).toFixed(0)} % of the limit; user/create calls ${creates.length} (${throttled} answered 45009), re-runs after give-up ${requeued}`);
    console.log(`       stored ${stored.length} (lost ${DRAIN_N - new Set(stored.map((u) => u.extid)).size}, duplicates ${stored.length - new Set(stored.map((u) => u.extid)).size})`);
    console.log(`       CPU ${cpu.toFixed(0)} ms of ${ms.toFixed(0)} ms wall; simulator share ${(((sim.busyMs() - busy0) / ms) * 100).toFixed(0)} % of wall`);
    if (stored.length !== DRAIN_N) throw new Error('drain: lost or duplicated accounts');
  } finally {
    await server.close();
  }
}

await poll();
await drain();
