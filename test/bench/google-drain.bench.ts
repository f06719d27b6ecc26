/**
 * Google drain benchmark: N account creations (what a burst of create_user events costs on the
 * Google side) through the Google adapter as the product builds it (`google.create`: the JWT
 * grant, the retries with Google's backoff, the recently-deleted check before each insert)
 * against the loopback simulator WITH its quota (queries per minute per user, a token bucket;
 * refusals are 403 userRateLimitExceeded). Reports, per scenario, the achieved creations per
 * second against the quota, the Directory API calls per second (refused ones included), how
 * many were refused, and the CPU share of each process — the simulator runs in a CHILD process
 * so its share is its own: if it were the bottleneck (near a full core) the figure would be
 * the simulator's, not the adapter's against the quota.
 *
 * Run: npx tsx test/bench/google-drain.bench.ts   (also part of `npm run bench`)
 * Env: GDRAIN_N (creations per scenario, at least; default 300 — a scenario runs at least 12
 *      seconds' worth of its quota, so the first second's burst does not flatter the rate),
 *      GDRAIN_SCENARIOS as "qpm:concurrency,…" (default "2400:16,2400:64,6000:64,0:64": Google's
 *      default quota with 16 and 64 concurrent callers, a raised quota, and no quota at all —
 *      the ceiling of adapter + simulator, where the CPU shares show which one limits).
 * "steady" is the rate after the first two seconds (the bucket's initial burst spent).
 */
import { generateKeyPairSync } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface ChildReady {
  baseUrl: string;
  clientEmail: string;
  adminEmail: string;
}
interface ChildStats {
  cpuMicros: number;
  calls: Record<string, number>;
  users: number;
}

if (process.env.GOOGLE_SIM_CHILD) {
  // ------------------------------------------------------------------ the simulator process
  const { createGoogleSim } = await import('../../bin/local/sim/google');
  const qpm = Number(process.env.GDRAIN_QPM);
  const sim = createGoogleSim({ publicKey: process.env.GDRAIN_PUBLIC_KEY!, ...(qpm > 0 ? { quota: { queriesPerMinute: qpm } } : {}), domains: ['example.com'] });
  sim.setRecording(false);
  const server = await sim.start();
  const cpu0 = process.cpuUsage();
  process.on('message', (m: string) => {
    if (m === 'stats') {
      const c = process.cpuUsage(cpu0);
      const stats: ChildStats = { cpuMicros: c.user + c.system, calls: sim.calls, users: sim.users.size };
      process.send!(stats);
    } else if (m === 'exit') void server.close().then(() => process.exit(0));
  });
  const ready: ChildReady = { baseUrl: server.baseUrl, clientEmail: sim.serviceAccount.clientEmail, adminEmail: sim.serviceAccount.adminEmail };
  process.send!(ready);
} else {
  // ------------------------------------------------------------------ the bench
  const { parseRuntimeConfig } = await import('../../functions/config/runtime');
  const { google } = await import('../../functions/mailbox/google/index');
  const N = Number(process.env.GDRAIN_N ?? 300);
  const scenarios = (process.env.GDRAIN_SCENARIOS ?? '2400:16,2400:64,6000:64,0:64').split(',').map((s) => {
    const [qpm, conc] = s.split(':').map(Number);
    return { qpm: qpm!, concurrency: conc! };
  });
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });

  const once = <T>(child: ChildProcess) => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));

  console.log(`google drain: ${N} creations per scenario through GoogleDirectory.create against the simulator's quota`);
  console.log('quota q/min (q/s) | workers | N | elapsed s | creations/s | steady/s | steady % of quota | API calls/s | refused | sim CPU % | bench CPU % | lost/failed');
  let failed = false;
  for (const sc of scenarios) {
    const child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, GOOGLE_SIM_CHILD: '1', GDRAIN_PUBLIC_KEY: keys.publicKey, GDRAIN_QPM: String(sc.qpm) },
    });
    const ready = await once<ChildReady>(child);
    const config = parseRuntimeConfig({ provider: 'google', mailDomain: 'example.com', google: { apiBase: ready.baseUrl, tokenUrl: `${ready.baseUrl}/token` } });
    const { directory } = google.create(config, { clientEmail: ready.clientEmail, privateKey: keys.privateKey, adminEmail: ready.adminEmail, webhookSecret: 'w' }, { maxRetries: 10 });
    await directory.listPage(); // token and connection warm, not timed

    const quotaPerSec = sc.qpm / 60;
    const n = sc.qpm > 0 ? Math.max(N, Math.ceil(quotaPerSec * 12)) : Math.max(N, 2000);
    const done: number[] = [];
    const cpu0 = process.cpuUsage();
    child.send('stats');
    const before = await once<ChildStats>(child);
    const t0 = performance.now();
    let next = 0;
    let errors = 0;
    await Promise.all(
      Array.from({ length: sc.concurrency }, async () => {
        for (let i = next++; i < n; i = next++) {
          await directory
            .create({ employeeId: `u${i}`, email: `u${i}@example.com`, displayName: `用户${i}`, jobTitle: '工程师', department: '技术部' })
            .then(() => void done.push(performance.now() - t0), () => void errors++);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    child.send('stats');
    const after = await once<ChildStats>(child);
    child.send('exit');
    const total = (s: ChildStats) => Object.values(s.calls).reduce((a, b) => a + b, 0);
    const apiCalls = total(after) - total(before) - ((after.calls['POST /token'] ?? 0) - (before.calls['POST /token'] ?? 0));
    const accepted = n / secs;
    const late = done.filter((t) => t >= 2000).length;
    const steady = secs > 4 ? late / (secs - 2) : NaN;
    const refused = apiCalls - n - 1; // every call beyond one insert per person and the one deleted listing
    const simCpu = ((after.cpuMicros - before.cpuMicros) / 1e6 / secs) * 100;
    const benchCpu = ((cpu.user + cpu.system) / 1e6 / secs) * 100;
    const lost = n - after.users;
    console.log(
      [
        sc.qpm > 0 ? `${sc.qpm} (${quotaPerSec.toFixed(0)})` : 'none',
        sc.concurrency,
        n,
        secs.toFixed(1),
        accepted.toFixed(1),
        Number.isNaN(steady) ? '-' : steady.toFixed(1),
        sc.qpm > 0 && !Number.isNaN(steady) ? ((steady / quotaPerSec) * 100).toFixed(0) : '-',
        (apiCalls / secs).toFixed(1),
        refused,
        simCpu.toFixed(0),
        benchCpu.toFixed(0),
        `${lost}/${errors}`,
      ].join(' | '),
    );
    if (lost !== 0 || errors !== 0) failed = true;
  }
  console.log('refused = calls beyond one insert per person (+1 recently-deleted listing): the 403s the quota answered, each retried after Google\'s backoff.');
  if (failed) {
    console.error('google drain: creations were lost or failed');
    process.exit(1);
  }
}
