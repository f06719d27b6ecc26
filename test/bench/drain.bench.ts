/**
 * Drain benchmark: a burst of create_user events through LocalFifoQueue + the sync worker,
 * against the loopback Graph simulator WITH a rate limit, real DynamoDB client on dynalite
 * (state + audit), EnvelopeCipher over the loopback KMS. Reports drain time against the
 * rate-limit bound, lost / duplicate accounts, and cost per event (DynamoDB commands,
 * KMS calls, API calls).
 *
 * The same drain runs on the in-memory queue and on the durable one (LocalFifoQueue.open:
 * every delivery and outcome written to a table on the same dynalite), each with its own
 * tables, simulators and counters, and the two throughputs are compared (product target: the
 * durable drain within 10 % of the in-memory one). CPU is reported per process (this one:
 * worker + simulators + KMS; the dynalite child from /proc) so the bottleneck is visible, and
 * the queue's own writes are timed. Last, each queue alone with a no-op consumer: its ceiling.
 *
 * WeCom side: the loopback WeCom simulator when bin/local/sim/wecom.ts + functions/wecom/api.ts
 * exist (BENCH_WECOM=sim), else an in-process WecomContacts (test/support/sync-fakes.ts) —
 * WeCom is not the rate-limited side here (10,000 calls/min per API) and the figure that
 * matters is the Graph bound.
 *
 * Env: DRAIN_QUEUE=memory|durable|both (default both), DRAIN_ROUNDS (default 1: rounds of the
 *      comparison, alternating which queue goes first), DRAIN_DYNALITE=inprocess (default:
 *      dynalite in a child process), DRAIN_N (default 10000), DRAIN_GRAPH_RATE (Graph calls/s,
 *      default 150), DRAIN_SHARDS (parallel FIFO consumers ≈ Lambda concurrency, default 32).
 *      The Graph simulator runs in its own process (support/sims-process.ts).
 */
import { availableParallelism } from 'node:os';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import type { Context } from 'aws-lambda';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { waitActive } from '../../bin/local/table-ready';
import { LocalFifoQueue } from '../../bin/local/queue';
import { startKmsServer } from '../../bin/local/sim/kms';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { createSyncWorkerHandler } from '../../functions/handlers/sync-worker';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import type { SyncMessage } from '../../functions/queue/messages';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { DynamoAuditLog } from '../../functions/store/audit';
import { storedAuditChainKey } from '../../functions/security/audit-chain-key';
import { DynamoStateStore } from '../../functions/store/state';
import { tableDefinitions, type TableNames } from '../../functions/store/tables';
import type { EngineDeps } from '../../functions/sync/context';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import type { WecomContacts } from '../../functions/wecom/contacts';
import { FakeWecom } from '../support/sync-fakes';
import { cpuMeter, dynaliteChildPid, procCpuSeconds } from './support/cpu';
import { startSimsProcess } from './support/sims-process';

type QueueKind = 'memory' | 'durable';

const N = Number(process.env.DRAIN_N ?? 10_000);
// Below what one worker process can drive on a 2-core machine (~70 events/s = ~210 Graph
// calls/s at full CPU), so the drain is bounded by Graph's budget, as in production where the
// worker scales out, and the figure measures how well the product uses that budget.
const RATE = Number(process.env.DRAIN_GRAPH_RATE ?? 150);
// ≈ 5 worker containers × a batch of 10 in flight, less what FIFO groups serialize.
const SHARDS = Number(process.env.DRAIN_SHARDS ?? 32);
/** Repeat the comparison this many times (alternating which kind goes first). */
const ROUNDS = Math.max(1, Number(process.env.DRAIN_ROUNDS ?? 1));
const KINDS: QueueKind[] = process.env.DRAIN_QUEUE === 'memory' ? ['memory'] : process.env.DRAIN_QUEUE === 'durable' ? ['durable'] : ['memory', 'durable'];
const DEPTS = [
  { id: 1, name: 'Root', parentid: 0 },
  { id: 2, name: '技术部', parentid: 1 },
  { id: 3, name: '研发组', parentid: 2 },
  { id: 4, name: '市场部', parentid: 1 },
];

interface DrainResult {
  kind: QueueKind;
  eventsPerSec: number;
  /** CPU milliseconds per event: this process, the dynalite child. */
  cpuMs: { bench: number; dynalite: number };
  ok: boolean;
}

/** Counts commands per name on a client (the worker's and the queues' separately). */
function countCommands(client: DynamoDBClient): Record<string, number> {
  const counts: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? '?';
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchCount' },
  );
  return counts;
}

/** Time spent in commands on a client: a shard waits for its queue writes before and after each batch. */
function timeCommands(client: DynamoDBClient): { ms: number } {
  const spent = { ms: 0 };
  client.middlewareStack.add(
    (next) => async (args) => {
      const t = performance.now();
      try {
        return await next(args);
      } finally {
        spent.ms += performance.now() - t;
      }
    },
    { step: 'initialize', name: 'benchTime' },
  );
  return spent;
}

// ---------------------------------------------------------------- one drain

async function drain(kind: QueueKind, round: number, dyn: LocalDynamo, kms: Awaited<ReturnType<typeof startKmsServer>>, dynalitePid: number | undefined): Promise<DrainResult> {
  // Own tables per run, so every run starts from nothing.
  const tables: TableNames = { inbox: `${kind}-${round}-inbox`, state: `${kind}-${round}-state`, audit: `${kind}-${round}-audit` };
  for (const def of tableDefinitions(tables)) {
    await dyn.client.send(new CreateTableCommand(def));
    await waitActive(dyn.client, def.TableName!);
  }
  const queueTable = `${kind}-${round}-local-queue`;
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dyn.endpoint });
  const dynamo = countCommands(client);
  const queueClient = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dyn.endpoint });
  const queueCalls = countCommands(queueClient);
  const queueTime = timeCommands(queueClient);

  const keys = new KmsKeyProvider(new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint }), kms.keyId);
  const cipher = new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, client, tables.state) });

  // The Graph simulator in its own process: this process's CPU is then the worker's.
  const sims = await startSimsProcess({ corp: { corpId: 'ww', contactsSecret: 'c', appSecret: 'a' }, wecomPerMinute: 10_000, graphRate: RATE, seed: 0 });
  const srv = { baseUrl: sims.graphBase };
  const status: Record<string, number> = {};
  const graph = new GraphDirectory({
    apiBase: srv.baseUrl,
    tokenUrl: `${srv.baseUrl}/t/oauth2/v2.0/token`,
    tenantId: 't',
    clientId: 'c',
    clientSecret: 's',
    domain: 'example.com',
    maxRetries: 20,
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).includes('/token')) status[res.status] = (status[res.status] ?? 0) + 1;
      return res;
    },
  });

  const fake = new FakeWecom();
  fake.departments = DEPTS;
  const wecomCalls: Record<string, number> = {};
  const wecom: WecomContacts = new Proxy(fake, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        wecomCalls[String(prop)] = (wecomCalls[String(prop)] ?? 0) + 1;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  for (let i = 0; i < N; i++) {
    const userid = `user${String(i).padStart(5, '0')}`;
    fake.users.set(userid, {
      userid,
      name: `User ${i}`,
      mobile: `139${String(10_000_000 + i).slice(-8)}`,
      department: [i % 2 ? 3 : 4],
      main_department: i % 2 ? 3 : 4,
      position: 'Staff',
      enable: 1,
      status: 1,
    });
  }

  const counts: Record<string, number> = {};
  const engine: EngineDeps = {
    wecom,
    mailbox: graph,
    state: new DynamoStateStore(client, tables.state),
    audit: new DynamoAuditLog(client, tables.audit, { chain: storedAuditChainKey(keys, client, tables.state) }),
    cipher,
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 600_000 }),
    config: parseRuntimeConfig(JSON.stringify({ provider: 'graph', mailDomain: 'example.com' })),
    now: () => new Date(),
    metrics: { count: (name, n = 1) => void (counts[name] = (counts[name] ?? 0) + n) },
    stateTable: tables.state,
  };
  const parked: Array<{ subject: string; reason: string }> = [];
  const worker = createSyncWorkerHandler({
    engineDeps: async () => engine,
    maxReceiveCount: 10,
    deadLetters: { park: async (m, reason) => void parked.push({ subject: m.subject, reason }) },
  });
  const opts = { consumer: (e: Parameters<typeof worker>[0]) => worker(e, {} as Context), maxReceiveCount: 10, retryDelayMs: 200 };
  const queues = await Promise.all(
    Array.from({ length: SHARDS }, (_, s) =>
      kind === 'memory' ? new LocalFifoQueue(opts) : LocalFifoQueue.open({ ...opts, client: queueClient, tableName: queueTable, namespace: `shard-${s}` }),
    ),
  );

  const receivedAt = new Date().toISOString();
  const messages: SyncMessage[] = [...fake.users.keys()].map((userid, i) => ({
    v: 1,
    subject: `user:${userid}`,
    source: 'wecom',
    eventId: `bench-${i}`,
    hint: 'create_user',
    operator: 'bench',
    receivedAt,
  }));
  // One by one as the callback receiver does, the shards side by side.
  const e0 = performance.now();
  await Promise.all(
    queues.map(async (q, s) => {
      for (let i = s; i < messages.length; i += SHARDS) await q.enqueue([messages[i]!]);
    }),
  );
  const enqueueSeconds = (performance.now() - e0) / 1000;
  for (const k of Object.keys(dynamo)) delete dynamo[k];
  const queueEnqueueCalls = { ...queueCalls };
  for (const k of Object.keys(queueCalls)) delete queueCalls[k];
  queueTime.ms = 0;
  const kms0 = { ...kms.calls };

  const t0 = performance.now();
  const cpu = cpuMeter(dynalitePid);
  const simsCpu0 = procCpuSeconds(sims.pid);
  let done = false;
  const progress = setInterval(() => {
    if (done) return;
    const left = queues.reduce((n, q) => n + q.depth, 0);
    process.stdout.write(`  … ${N - left}/${N} drained, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  }, 10_000);
  await Promise.all(queues.map((q) => q.drain(30 * 60_000)));
  const seconds = (performance.now() - t0) / 1000;
  const share = cpu();
  done = true;
  clearInterval(progress);

  // ---- correctness
  const stats = await sims.stats();
  const simsShare = (procCpuSeconds(sims.pid) - simsCpu0) / seconds;
  const lost = N - stats.distinctLinks;
  const duplicates = stats.linked - stats.distinctLinks;
  const gatedLeft = [...fake.users.values()].filter((u) => u.enable !== 1).length;
  const deadLetters = parked.length + queues.reduce((n, q) => n + q.deadLetters.length, 0);

  // ---- cost
  const graphOk = Object.entries(status).filter(([s]) => Number(s) < 300).reduce((n, [, c]) => n + c, 0);
  const graph429 = status['429'] ?? 0;
  const graphOkPerEvent = graphOk / N;
  const boundEventsPerSec = RATE / graphOkPerEvent;
  const eventsPerSec = N / seconds;
  const dynWrites = (dynamo.PutItemCommand ?? 0) + (dynamo.UpdateItemCommand ?? 0) + (dynamo.DeleteItemCommand ?? 0);
  const dynReads = (dynamo.GetItemCommand ?? 0) + (dynamo.QueryCommand ?? 0);
  const kmsCalls = kms.calls.GenerateDataKey - kms0.GenerateDataKey + (kms.calls.Decrypt - kms0.Decrypt);
  const wecomTotal = Object.values(wecomCalls).reduce((a, b) => a + b, 0);
  const f = (n: number, d = 2) => n.toFixed(d);
  const list = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${k.replace('Command', '')} ${v}`).join(', ') || 'none';

  console.log(`drain (${kind} queue): ${N} create_user events, ${SHARDS} parallel FIFO consumers (batch 10), Graph rate limit ${RATE} calls/s`);
  console.log(`  enqueued one by one in ${f(enqueueSeconds, 1)} s (${f(N / enqueueSeconds, 0)}/s; queue DynamoDB calls: ${list(queueEnqueueCalls)})`);
  console.log(`  drained in ${f(seconds, 1)} s → ${f(eventsPerSec, 1)} events/s`);
  console.log(`  Graph: ${graphOk} successful calls (${f(graphOkPerEvent)}/event), ${graph429} answered 429; achieved ${f(graphOk / seconds, 0)} ok calls/s of ${RATE}`);
  console.log(`  rate-limit bound: ${f(boundEventsPerSec, 1)} events/s → achieved ${f((100 * eventsPerSec) / boundEventsPerSec, 1)} % of the bound (target ≥ 85 %)`);
  console.log(`  lost: ${lost}, duplicate accounts: ${duplicates}, members left gated: ${gatedLeft}, dead letters: ${deadLetters}`);
  console.log(`  DynamoDB per event (worker): ${f(dynWrites / N)} writes, ${f(dynReads / N)} reads  (${list(dynamo)})`);
  const queueCallCount = Object.values(queueCalls).reduce((a, b) => a + b, 0);
  console.log(`  DynamoDB per event (queue, while draining): ${f(queueCallCount / N)} calls  (${list(queueCalls)})`);
  if (queueCallCount > 0) {
    // An upper bound of what they cost a shard: its delivery writes are on its critical path
    // (before the consumer), its outcome writes overlap the next batch.
    const perShard = queueTime.ms / 1000 / SHARDS;
    console.log(`  queue writes: ${f(queueTime.ms / queueCallCount, 1)} ms per call; ${f(perShard, 1)} s per shard = at most ${f((100 * perShard) / seconds, 1)} % of the drain`);
  }
  console.log(`  KMS: ${kmsCalls} calls in total (${f(kmsCalls / N, 4)}/event: GenerateDataKey ${kms.calls.GenerateDataKey - kms0.GenerateDataKey}, Decrypt ${kms.calls.Decrypt - kms0.Decrypt})`);
  console.log(`  WeCom API per event: ${f(wecomTotal / N)} (${Object.entries(wecomCalls).map(([k, v]) => `${k} ${v}`).join(', ')}) — in-process WecomContacts`);
  const pct = (x: number) => `${f(100 * x, 0)} %`;
  console.log(
    `  CPU while draining (100 % = one core of ${availableParallelism()}): worker process ${pct(share.self)} (sync worker, KMS stand-in, in-process WeCom fake${dynalitePid ? '' : ', dynalite'}), ` +
      `Graph simulator ${pct(simsShare)}, ${dynalitePid ? `dynalite child ${pct(share.child)}` : 'dynalite in the bench process'}, other processes on the machine ${pct(Math.max(0, share.others - simsShare))}`,
  );
  // Per event, CPU time hardly depends on what else runs on the machine; wall time does.
  console.log(`  CPU per event: bench process ${f((1000 * share.self * seconds) / N)} ms${dynalitePid ? `, dynalite child ${f((1000 * share.child * seconds) / N)} ms` : ''}`);
  console.log(`  engine counters: ${JSON.stringify(counts)}`);

  await Promise.all(queues.map((q) => q.close()));
  await sims.close();
  client.destroy();
  queueClient.destroy();
  for (const name of [...Object.values(tables), ...(kind === 'durable' ? [queueTable] : [])]) await dyn.client.send(new DeleteTableCommand({ TableName: name }));
  const ok = lost === 0 && duplicates === 0 && deadLetters === 0;
  if (!ok) console.error(`FAILED (${kind}): events lost, duplicated or parked`, parked.slice(0, 3));
  return { kind, eventsPerSec, cpuMs: { bench: (1000 * share.self * seconds) / N, dynalite: (1000 * share.child * seconds) / N }, ok };
}

/**
 * The queue alone, with a consumer that does nothing: its own ceiling, far above what the drain
 * needs if the queue is not what limits the drain above.
 */
async function queueOnly(kind: QueueKind, dyn: LocalDynamo, dynalitePid: number | undefined): Promise<void> {
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dyn.endpoint });
  const tableName = `${kind}-queue-only`;
  const opts = { consumer: async () => {} };
  const queues = await Promise.all(
    Array.from({ length: SHARDS }, (_, s) => (kind === 'memory' ? new LocalFifoQueue(opts) : LocalFifoQueue.open({ ...opts, client, tableName, namespace: `shard-${s}` }))),
  );
  const e0 = performance.now();
  await Promise.all(
    queues.map(async (q, s) => {
      for (let i = s; i < N; i += SHARDS) await q.enqueue([{ v: 1, subject: `user:q${i}`, source: 'wecom', eventId: `q-${i}`, operator: 'bench', receivedAt: '2026-01-01T00:00:00Z' }]);
    }),
  );
  const enqueueSeconds = (performance.now() - e0) / 1000;
  const cpu = cpuMeter(dynalitePid);
  const t0 = performance.now();
  await Promise.all(queues.map((q) => q.drain(30 * 60_000)));
  const seconds = (performance.now() - t0) / 1000;
  const share = cpu();
  const cpuText =
    seconds < 1
      ? 'too short to measure CPU'
      : `CPU while draining: bench process ${(100 * share.self).toFixed(0)} %${dynalitePid ? `, dynalite child ${(100 * share.child).toFixed(0)} %` : ''}`;
  console.log(`queue alone (${kind}, no-op consumer, ${SHARDS} shards): enqueue ${(N / enqueueSeconds).toFixed(0)}/s, drain ${(N / seconds).toFixed(0)} messages/s; ${cpuText}`);
  await Promise.all(queues.map((q) => q.close()));
  if (kind === 'durable') await client.send(new DeleteTableCommand({ TableName: tableName }));
  client.destroy();
}

async function main() {
  // DynamoDB in its own process, as in reality: the worker's thread is not also serving the table.
  const childProcess = process.env.DRAIN_DYNALITE !== 'inprocess';
  const dyn = await startDynalite({ childProcess });
  const dynalitePid = childProcess ? dynaliteChildPid() : undefined;
  const kms = await startKmsServer();
  // Rounds alternate the order: runs later in a process tend to be slower (whatever the queue),
  // and load from other processes on the machine comes and goes.
  const rounds: Array<Partial<Record<QueueKind, DrainResult>>> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round: Partial<Record<QueueKind, DrainResult>> = {};
    for (const kind of r % 2 ? [...KINDS].reverse() : KINDS) round[kind] = await drain(kind, r, dyn, kms, dynalitePid);
    rounds.push(round);
  }
  for (const kind of KINDS) await queueOnly(kind, dyn, dynalitePid);
  await kms.close();
  await dyn.close();

  const ratios: number[] = [];
  for (const [i, { memory, durable }] of rounds.entries()) {
    if (!memory || !durable) continue;
    ratios.push(durable.eventsPerSec / memory.eventsPerSec);
    console.log(
      `round ${i + 1}: durable vs in-memory queue: ${durable.eventsPerSec.toFixed(1)} vs ${memory.eventsPerSec.toFixed(1)} events/s → ${(100 * ratios.at(-1)!).toFixed(1)} % (target ≥ 90 %); ` +
        `CPU per event ${durable.cpuMs.bench.toFixed(2)} vs ${memory.cpuMs.bench.toFixed(2)} ms (bench process), ${durable.cpuMs.dynalite.toFixed(2)} vs ${memory.cpuMs.dynalite.toFixed(2)} ms (dynalite)`,
    );
  }
  if (ratios.length > 1) {
    // Geometric mean: with an even number of rounds each kind ran first equally often.
    const mean = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
    console.log(`over ${ratios.length} rounds: durable at ${(100 * mean).toFixed(1)} % of the in-memory drain (geometric mean; rounds ${ratios.map((r) => (100 * r).toFixed(1)).join(', ')} %)`);
  } else if (ratios.length === 1) {
    console.log('  (one round: the kind that runs second in a process tends to be a few % slower; DRAIN_ROUNDS=2 alternates)');
  }
  if (!rounds.every((round) => Object.values(round).every((r) => r.ok))) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
