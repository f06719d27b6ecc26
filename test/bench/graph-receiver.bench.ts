/**
 * Graph receiver benchmark (`npx tsx test/bench/graph-receiver.bench.ts`, or `npm run bench --
 * graph-receiver`): how long the mailbox receiver takes to answer one POST of 1,000 change
 * notifications (Graph's batch maximum; Graph wants a 2xx within 3 s or retries for hours).
 *
 * The receiver runs in this process as in Lambda (createMailboxReceiver, DynamoInbox and
 * SqsWorkQueue with the real AWS SDK clients). DynamoDB is dynalite IN A CHILD PROCESS and
 * SQS is the loopback SQS JSON server IN ANOTHER CHILD, so this process does only the
 * product's work; the CPU time of each process is reported per run (Linux /proc), to show
 * whether the product or the harness is the bottleneck on a small machine.
 *
 * Modes: the bounded-parallel path at each concurrency in BENCH_CONCURRENCY (default
 * "32,64"), and `writeConcurrency: 1`, the former one-at-a-time path (BENCH_SEQUENTIAL_RUNS,
 * default 2; 0 skips it). Each run posts 1,000 NEW notifications (distinct users); one
 * redelivery of the last body (all duplicates) is timed too. Loopback has no network
 * latency, which flatters the one-at-a-time path: with BENCH_RTT_MS (default 5; 0 skips) both
 * paths run again with that delay added to every DynamoDB and SQS request, a typical
 * in-region round trip.
 *
 * Env: BENCH_N (notifications per POST, default 1000), BENCH_RUNS (per mode, default 5).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LOCAL_AWS, startDynalite } from '../../bin/local/dynalite';
import type { HttpRequest } from '../../functions/core/http';
import { startLoopbackSqs } from '../support/aws-json-loopback';

const N = Number(process.env.BENCH_N ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SEQUENTIAL_RUNS = Number(process.env.BENCH_SEQUENTIAL_RUNS ?? 2);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '32,64').split(',').map(Number).filter((n) => n > 0);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 5);
const CLIENT_STATE = 'bench-client-state-' + 'x'.repeat(40);
const TARGET_MS = 3000;

// ---------------------------------------------------------------- the SQS child

/** `--sqs-child`: this file started by itself to serve SQS from its own process (see the end of the file). */
async function sqsChildMain() {
  const sqs = await startLoopbackSqs();
  process.stdout.write(JSON.stringify({ endpoint: sqs.endpoint, queueUrl: sqs.queueUrl }) + '\n');
  // Lives until the parent kills it.
}

async function startSqsChild(): Promise<{ child: ChildProcess; endpoint: string; queueUrl: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--sqs-child'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
    });
    child.once('exit', (code) => reject(new Error(`SQS child exited with ${code}`)));
  });
  return { child, ...(JSON.parse(line) as { endpoint: string; queueUrl: string }) };
}

// ---------------------------------------------------------------- CPU accounting (Linux /proc)

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** user + system CPU ms of a process, or undefined where /proc is not there. */
function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
  } catch {
    return undefined;
  }
}

/** Busy CPU ms of the whole machine (all cores, every process), from /proc/stat. */
function machineBusyMs(): number | undefined {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    const n = ticks.map(Number);
    const idle = (n[3] ?? 0) + (n[4] ?? 0); // idle + iowait
    return (n.reduce((a, b) => a + b, 0) - idle) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** startDynalite does not expose its child: find our child process running dynalite's cli.js. */
function dynaliteChildPid(): number | undefined {
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== process.pid) continue;
        if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('dynalite')) return Number(d);
      } catch {
        /* gone meanwhile */
      }
    }
  } catch {
    /* no /proc */
  }
  return undefined;
}

// ---------------------------------------------------------------- requests

function notificationPost(run: string, n: number): HttpRequest {
  const value = Array.from({ length: n }, (_, i) => {
    const userId = `${run}-${String(i).padStart(6, '0')}-aaaa-bbbb`;
    return {
      id: `${run}-n${i}`,
      subscriptionId: 'sub-bench',
      clientState: CLIENT_STATE,
      changeType: i % 10 === 0 ? 'deleted' : 'updated',
      resource: `Users/${userId}`,
      resourceData: { '@odata.type': '#Microsoft.Graph.User', '@odata.id': `Users/${userId}`, id: userId },
      subscriptionExpirationDateTime: '2026-12-20T00:00:00Z',
      tenantId: 'tenant-bench',
    };
  });
  return { method: 'POST', path: '/mailbox/events/graph', query: {}, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value }), sourceIp: '127.0.0.1' };
}

interface Sample {
  ms: number;
  benchCpuMs: number;
  dynaliteCpuMs?: number;
  sqsCpuMs?: number;
  /** CPU used meanwhile by every other process on the machine (other people's work). */
  othersCpuMs?: number;
}

const p = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const fmt = (x: number) => `${x.toFixed(0)} ms`;
const share = (cpu: number | undefined, wall: number) => (cpu === undefined ? '  n/a' : `${((100 * cpu) / wall).toFixed(0).padStart(4)}%`);

async function main() {
  // The receiver logs one INFO line per request; keep the figures readable. The logger reads
  // LOG_LEVEL when its module loads, hence the imports below.
  process.env.LOG_LEVEL ??= 'WARN';
  const [{ createMailboxReceiver }, { SqsWorkQueue }, { DynamoInbox }] = await Promise.all([
    import('../../functions/mailbox/receive'),
    import('../../functions/queue/sqs'),
    import('../../functions/store/inbox'),
  ]);
  const dyn = await startDynalite({ childProcess: true });
  const sqsChild = await startSqsChild();
  const dynPid = dynaliteChildPid();
  const sqsPid = sqsChild.child.pid;
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint: sqsChild.endpoint });
  // Simulated network round trip, off unless a mode turns it on.
  let rtt = 0;
  for (const client of [dyn.client, sqs]) {
    (client.middlewareStack as typeof dyn.client.middlewareStack).add(
      (next) => async (args) => {
        if (rtt > 0) await sleep(rtt);
        return next(args);
      },
      { step: 'finalizeRequest', name: 'benchRoundTrip' },
    );
  }
  const inbox = new DynamoInbox(dyn.client, dyn.tables.inbox);
  const queue = new SqsWorkQueue(sqs, sqsChild.queueUrl);
  const receiver = (writeConcurrency: number) =>
    createMailboxReceiver({ inbox, queue, provider: 'graph', clientState: CLIENT_STATE, webhookSecret: 'bench-webhook-secret', writeConcurrency });

  console.log(`graph receiver: one POST of ${N} notifications; ${cpus().length} CPUs, Node ${process.versions.node}`);
  console.log(`dynalite in child pid ${dynPid ?? '?'}, loopback SQS in child pid ${sqsPid ?? '?'}; CPU = user + system time over the run's wall time\n`);

  let runNo = 0;
  async function measure(writeConcurrency: number, req: HttpRequest): Promise<Sample> {
    const receive = receiver(writeConcurrency);
    const cpu0 = process.cpuUsage();
    const d0 = dynPid ? cpuMsOf(dynPid) : undefined;
    const s0 = sqsPid ? cpuMsOf(sqsPid) : undefined;
    const m0 = machineBusyMs();
    const t0 = performance.now();
    const res = await receive(req);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const d1 = dynPid ? cpuMsOf(dynPid) : undefined;
    const s1 = sqsPid ? cpuMsOf(sqsPid) : undefined;
    const m1 = machineBusyMs();
    if (res.statusCode !== 202) throw new Error(`expected 202, got ${res.statusCode}`);
    const sample: Sample = {
      ms: wall,
      benchCpuMs: (cpu.user + cpu.system) / 1000,
      ...(d0 !== undefined && d1 !== undefined ? { dynaliteCpuMs: d1 - d0 } : {}),
      ...(s0 !== undefined && s1 !== undefined ? { sqsCpuMs: s1 - s0 } : {}),
    };
    if (m0 !== undefined && m1 !== undefined) {
      sample.othersCpuMs = Math.max(0, m1 - m0 - sample.benchCpuMs - (sample.dynaliteCpuMs ?? 0) - (sample.sqsCpuMs ?? 0));
    }
    return sample;
  }

  function report(label: string, samples: Sample[]) {
    const ms = samples.map((s) => s.ms);
    const worst = samples[ms.indexOf(Math.max(...ms))]!;
    const mid = samples[ms.indexOf(p(ms, 0.5))]!;
    const verdict = Math.max(...ms) < TARGET_MS ? 'OK  ' : 'MISS';
    console.log(`${verdict} ${label.padEnd(28)} p50 ${fmt(p(ms, 0.5)).padStart(8)}  max ${fmt(Math.max(...ms)).padStart(8)}  (${samples.length} runs; target < ${TARGET_MS} ms)`);
    for (const [name, s] of [['p50 run', mid], ['max run', worst]] as const) {
      console.log(
        `       ${name}: CPU bench ${share(s.benchCpuMs, s.ms)}  dynalite child ${share(s.dynaliteCpuMs, s.ms)}  SQS child ${share(s.sqsCpuMs, s.ms)}  other processes ${share(s.othersCpuMs, s.ms)}` +
          `  (${fmt(s.benchCpuMs)} / ${s.dynaliteCpuMs === undefined ? 'n/a' : fmt(s.dynaliteCpuMs)} / ${s.sqsCpuMs === undefined ? 'n/a' : fmt(s.sqsCpuMs)} of ${fmt(s.ms)} wall)`,
      );
    }
    console.log(`       bottleneck (p50 run): ${bottleneck(mid)}`);
  }

  /**
   * A process above 80 % of a core is saturated. Otherwise, if the machine's cores were
   * (nearly) all busy, other processes took the CPU; else the run was waiting on round trips.
   */
  function bottleneck(s: Sample): string {
    const shares: Array<[string, number]> = [
      ['this process: the receiver and the AWS SDK (the product)', s.benchCpuMs / s.ms],
      ['the dynalite child (the harness)', (s.dynaliteCpuMs ?? 0) / s.ms],
      ['the SQS child (the harness)', (s.sqsCpuMs ?? 0) / s.ms],
    ];
    const [name, top] = shares.sort((a, b) => b[1] - a[1])[0]!;
    if (top >= 0.8) return `${name}, ${(100 * top).toFixed(0)} % of a core`;
    const busy = (s.benchCpuMs + (s.dynaliteCpuMs ?? 0) + (s.sqsCpuMs ?? 0) + (s.othersCpuMs ?? 0)) / s.ms;
    if (s.othersCpuMs !== undefined && busy >= 0.85 * cpus().length) {
      return `the machine: all ${cpus().length} cores busy, ${(100 * s.othersCpuMs / s.ms).toFixed(0)} % of a core taken by other processes`;
    }
    return `none saturated (top ${(100 * top).toFixed(0)} %): waiting on round trips`;
  }

  try {
    // Warm-up: JIT, sockets, dynalite's first writes; not counted.
    await measure(CONCURRENCY[0] ?? 32, notificationPost(`warm${runNo++}`, N));

    let last: HttpRequest | undefined;
    for (const c of CONCURRENCY) {
      const samples: Sample[] = [];
      for (let i = 0; i < RUNS; i++) samples.push(await measure(c, (last = notificationPost(`c${c}r${runNo++}`, N))));
      report(`parallel, ${c} in flight`, samples);
    }
    if (last) report('redelivery (all duplicates)', [await measure(CONCURRENCY[0] ?? 32, last)]);
    if (SEQUENTIAL_RUNS > 0) {
      const samples: Sample[] = [];
      for (let i = 0; i < SEQUENTIAL_RUNS; i++) samples.push(await measure(1, notificationPost(`seq${runNo++}`, N)));
      report('sequential (former path)', samples);
    }
    if (RTT_MS > 0) {
      rtt = RTT_MS;
      console.log(`\nwith ${RTT_MS} ms added to every DynamoDB and SQS request:`);
      const c = CONCURRENCY[0] ?? 32;
      const samples: Sample[] = [];
      for (let i = 0; i < Math.min(RUNS, 3); i++) samples.push(await measure(c, notificationPost(`rtt${c}r${runNo++}`, N)));
      report(`parallel, ${c} in flight`, samples);
      if (SEQUENTIAL_RUNS > 0) report('sequential (former path)', [await measure(1, notificationPost(`rttseq${runNo++}`, N))]);
      rtt = 0;
    }
    console.log('\nCPU shares above 100% mean more than one core; the machine has', cpus().length, 'cores.');
  } finally {
    sqs.destroy();
    sqsChild.child.kill();
    await dyn.close();
  }
}

if (process.argv.includes('--sqs-child')) await sqsChildMain();
else await main();
