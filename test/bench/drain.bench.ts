/**
 * Drain benchmark: a burst of create_user events through LocalFifoQueue + the sync worker,
 * against the loopback Graph simulator WITH a rate limit, real DynamoDB client on dynalite
 * (state + audit), EnvelopeCipher over the loopback KMS. Reports drain time against the
 * rate-limit bound, lost / duplicate accounts, and cost per event (DynamoDB commands,
 * KMS calls, API calls).
 *
 * WeCom side: the loopback WeCom simulator when bin/local/sim/wecom.ts + functions/wecom/api.ts
 * exist (BENCH_WECOM=sim), else an in-process WecomContacts (test/support/sync-fakes.ts) —
 * WeCom is not the rate-limited side here (10,000 calls/min per API) and the figure that
 * matters is the Graph bound.
 *
 * Env: DRAIN_DYNALITE=inprocess (default: dynalite in a child process), DRAIN_N (default 10000), DRAIN_GRAPH_RATE (Graph calls/s, default 400),
 *      DRAIN_SHARDS (parallel FIFO consumers ≈ Lambda concurrency, default 16).
 */
import { KMSClient } from '@aws-sdk/client-kms';
import type { Context } from 'aws-lambda';
import { LOCAL_AWS, startDynalite } from '../../bin/local/dynalite';
import { LocalFifoQueue } from '../../bin/local/queue';
import { createGraphSim } from '../../bin/local/sim/graph';
import { startKmsServer } from '../../bin/local/sim/kms';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { createSyncWorkerHandler } from '../../functions/handlers/sync-worker';
import { GraphDirectory } from '../../functions/mailbox/graph';
import type { SyncMessage } from '../../functions/queue/messages';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { DynamoAuditLog } from '../../functions/store/audit';
import { DynamoStateStore } from '../../functions/store/state';
import type { EngineDeps } from '../../functions/sync/context';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import type { WecomContacts } from '../../functions/wecom/contacts';
import { FakeWecom } from '../support/sync-fakes';

const N = Number(process.env.DRAIN_N ?? 10_000);
const RATE = Number(process.env.DRAIN_GRAPH_RATE ?? 400);
const SHARDS = Number(process.env.DRAIN_SHARDS ?? 16);
const DEPTS = [
  { id: 1, name: 'Root', parentid: 0 },
  { id: 2, name: '技术部', parentid: 1 },
  { id: 3, name: '研发组', parentid: 2 },
  { id: 4, name: '市场部', parentid: 1 },
];

async function main() {
  // DynamoDB in its own process, as in reality: the worker's thread is not also serving the table.
  const dyn = await startDynalite({ childProcess: process.env.DRAIN_DYNALITE !== 'inprocess' });
  const dynamo: Record<string, number> = {};
  dyn.client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? '?';
      dynamo[name] = (dynamo[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchCount' },
  );
  const kms = await startKmsServer();
  const keys = new KmsKeyProvider(new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint }), kms.keyId);
  const cipher = new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, dyn.client, dyn.tables.state) });

  const sim = createGraphSim({ tenantId: 't', clientId: 'c', clientSecret: 's', rateLimit: { perSecond: RATE }, retryAfterSeconds: 1 });
  const srv = await sim.start();
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
    state: new DynamoStateStore(dyn.client, dyn.tables.state),
    audit: new DynamoAuditLog(dyn.client, dyn.tables.audit),
    cipher,
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 600_000 }),
    config: parseRuntimeConfig(JSON.stringify({ provider: 'graph', mailDomain: 'example.com' })),
    now: () => new Date(),
    metrics: { count: (name, n = 1) => void (counts[name] = (counts[name] ?? 0) + n) },
    stateTable: dyn.tables.state,
  };
  const parked: Array<{ subject: string; reason: string }> = [];
  const worker = createSyncWorkerHandler({
    engineDeps: async () => engine,
    maxReceiveCount: 10,
    deadLetters: { park: async (m, reason) => void parked.push({ subject: m.subject, reason }) },
  });
  const queues = Array.from({ length: SHARDS }, () => new LocalFifoQueue({ consumer: (e) => worker(e, {} as Context), maxReceiveCount: 10, retryDelayMs: 200 }));

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
  for (let i = 0; i < messages.length; i++) await queues[i % SHARDS]!.enqueue([messages[i]!]);
  for (const k of Object.keys(dynamo)) delete dynamo[k];
  const kms0 = { ...kms.calls };

  const t0 = performance.now();
  let done = false;
  const progress = setInterval(() => {
    if (done) return;
    const left = queues.reduce((n, q) => n + q.depth, 0);
    process.stdout.write(`  … ${N - left}/${N} drained, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  }, 10_000);
  await Promise.all(queues.map((q) => q.drain(30 * 60_000)));
  const seconds = (performance.now() - t0) / 1000;
  done = true;
  clearInterval(progress);

  // ---- correctness
  const perEmployee = new Map<string, number>();
  for (const u of sim.users.values()) if (u.employeeId) perEmployee.set(u.employeeId, (perEmployee.get(u.employeeId) ?? 0) + 1);
  const lost = [...fake.users.keys()].filter((id) => !perEmployee.has(id)).length;
  const duplicates = [...perEmployee.values()].filter((n) => n > 1).length;
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

  console.log(`drain: ${N} create_user events, ${SHARDS} parallel FIFO consumers (batch 10), Graph rate limit ${RATE} calls/s`);
  console.log(`  drained in ${f(seconds, 1)} s → ${f(eventsPerSec, 1)} events/s`);
  console.log(`  Graph: ${graphOk} successful calls (${f(graphOkPerEvent)}/event), ${graph429} answered 429; achieved ${f(graphOk / seconds, 0)} ok calls/s of ${RATE}`);
  console.log(`  rate-limit bound: ${f(boundEventsPerSec, 1)} events/s → achieved ${f((100 * eventsPerSec) / boundEventsPerSec, 1)} % of the bound (target ≥ 80 %)`);
  console.log(`  lost: ${lost}, duplicate accounts: ${duplicates}, members left gated: ${gatedLeft}, dead letters: ${deadLetters}`);
  console.log(`  DynamoDB per event: ${f(dynWrites / N)} writes, ${f(dynReads / N)} reads  (${Object.entries(dynamo).map(([k, v]) => `${k.replace('Command', '')} ${v}`).join(', ')})`);
  console.log(`  KMS: ${kmsCalls} calls in total (${f(kmsCalls / N, 4)}/event: GenerateDataKey ${kms.calls.GenerateDataKey - kms0.GenerateDataKey}, Decrypt ${kms.calls.Decrypt - kms0.Decrypt})`);
  console.log(`  WeCom API per event: ${f(wecomTotal / N)} (${Object.entries(wecomCalls).map(([k, v]) => `${k} ${v}`).join(', ')}) — in-process WecomContacts`);
  console.log(`  engine counters: ${JSON.stringify(counts)}`);

  await srv.close();
  await kms.close();
  await dyn.close();
  const ok = lost === 0 && duplicates === 0 && deadLetters === 0;
  if (!ok) {
    console.error('FAILED: events lost, duplicated or parked', parked.slice(0, 3));
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
