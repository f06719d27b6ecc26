/**
 * Mailbox-first onboarding drain (lifecycle.source 'mailbox'): N new accounts in the Graph
 * simulator, one `mailbox:graph:<id>` message each (what the change notifications or the
 * delta read queue), drained by the sync worker over parallel FIFO consumers — each account
 * derived a userid, linked, its WeCom member created disabled and enabled. Against the WeCom
 * simulator WITH WeCom's frequency limit (10,000 calls/min per API per corp; over it the API
 * is blocked for 60 s) and the Graph simulator with a rate limit, both in their own process
 * (support/sims-process.ts); real DynamoDB client on dynalite (child process), EnvelopeCipher
 * over the loopback KMS. So this process's CPU is the worker's (plus the KMS stand-in).
 *
 * Reports: drain time and rate, API calls per account per API on each side, the bound they
 * imply (per WeCom API: 10,000/min ÷ calls per account; Graph: its rate ÷ calls per account)
 * and the share of it achieved, 45009 / 429 answers, lost / duplicate / not enabled, and the
 * CPU share of each process (worker, simulators, dynalite).
 *
 * Env: MF_N (default 2000), MF_GRAPH_RATE (Graph calls/s, default 400), MF_SHARDS (parallel
 *      consumers ≈ Lambda concurrency × batches in flight, default 16), MF_WECOM_PER_MINUTE
 *      (default 10000).
 */
import { availableParallelism } from 'node:os';
import { KMSClient } from '@aws-sdk/client-kms';
import type { Context } from 'aws-lambda';
import { LOCAL_AWS, startDynalite } from '../../bin/local/dynalite';
import { LocalFifoQueue } from '../../bin/local/queue';
import { startKmsServer } from '../../bin/local/sim/kms';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { createSyncWorkerHandler } from '../../functions/handlers/sync-worker';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import type { SyncMessage } from '../../functions/queue/messages';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { storedAuditChainKey } from '../../functions/security/audit-chain-key';
import { DynamoAuditLog } from '../../functions/store/audit';
import { DynamoStateStore } from '../../functions/store/state';
import type { EngineDeps } from '../../functions/sync/context';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { WecomApiClient } from '../../functions/wecom/api';
import { cpuMeter, dynaliteChildPid, procCpuSeconds } from './support/cpu';
import { startSimsProcess } from './support/sims-process';

const N = Number(process.env.MF_N ?? 2000);
const GRAPH_RATE = Number(process.env.MF_GRAPH_RATE ?? 400);
const SHARDS = Number(process.env.MF_SHARDS ?? 16);
const WECOM_PER_MINUTE = Number(process.env.MF_WECOM_PER_MINUTE ?? 10_000);
const CORP = { corpId: 'wwbench', contactsSecret: 'contacts-bench', appSecret: 'app-bench' };

const dyn = await startDynalite({ childProcess: true });
const kms = await startKmsServer();
const sims = await startSimsProcess({ corp: CORP, wecomPerMinute: WECOM_PER_MINUTE, graphRate: GRAPH_RATE, seed: N });

const graphStatus: Record<string, number> = {};
const graphCalls: Record<string, number> = {};
const mailbox = new GraphDirectory({
  apiBase: sims.graphBase,
  tokenUrl: `${sims.graphBase}/t/oauth2/v2.0/token`,
  tenantId: 't',
  clientId: 'c',
  clientSecret: 's',
  domain: 'example.com',
  maxRetries: 20,
  fetch: async (input, init) => {
    const res = await fetch(input, init);
    const url = String(input);
    if (!url.includes('/token')) {
      graphStatus[res.status] = (graphStatus[res.status] ?? 0) + 1;
      if (res.status < 300) {
        const route = `${init?.method ?? 'GET'} ${new URL(url).pathname.replace(/\/[0-9a-f-]{36}/g, '/{id}')}`;
        graphCalls[route] = (graphCalls[route] ?? 0) + 1;
      }
    }
    return res;
  },
});
// The product's budget for one process (config wecom.callsPerMinute, default 9,000 of 10,000).
const BUDGET = Number(process.env.MF_WECOM_BUDGET ?? Math.floor(WECOM_PER_MINUTE * 0.9));
const wecom = new WecomApiClient({ apiBase: sims.wecomBase, ...CORP, callsPerMinute: BUDGET });
const keys = new KmsKeyProvider(new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint }), kms.keyId);
const cipher = new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, dyn.client, dyn.tables.state) });
const engine: EngineDeps = {
  wecom,
  mailbox,
  state: new DynamoStateStore(dyn.client, dyn.tables.state),
  audit: new DynamoAuditLog(dyn.client, dyn.tables.audit, { chain: storedAuditChainKey(keys, dyn.client, dyn.tables.state) }),
  cipher,
  departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 600_000 }),
  config: parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', lifecycle: { source: 'mailbox' } }),
  now: () => new Date(),
  stateTable: dyn.tables.state,
};


const parked: string[] = [];
const worker = createSyncWorkerHandler({ engineDeps: async () => engine, maxReceiveCount: 10, deadLetters: { park: async (m, reason) => void parked.push(`${m.subject}: ${reason}`) } });
const queues = Array.from({ length: SHARDS }, () => new LocalFifoQueue({ consumer: (e) => worker(e, {} as Context), maxReceiveCount: 10, retryDelayMs: 200 }));
const receivedAt = new Date().toISOString();
const ids = (await sims.stats()).accountIds;
const messages: SyncMessage[] = ids.map((id, i) => ({ v: 1, subject: `mailbox:graph:${id}`, source: 'mailbox', eventId: `mf-${i}`, hint: 'graph.updated', operator: 'bench', receivedAt }));
await Promise.all(queues.map(async (q, s) => {
  for (let i = s; i < messages.length; i += SHARDS) await q.enqueue([messages[i]!]);
}));
await sims.resetCalls();

const t0 = performance.now();
const cpu = cpuMeter(dynaliteChildPid());
const simsCpu0 = procCpuSeconds(sims.pid);
await Promise.all(queues.map((q) => q.drain(30 * 60_000)));
const seconds = (performance.now() - t0) / 1000;
const share = cpu();
const simsShare = (procCpuSeconds(sims.pid) - simsCpu0) / seconds;

// ---- correctness: every account linked once, every member created and enabled
const stats = await sims.stats();
const enabled = stats.enabledMembers;
const duplicates = stats.linked - stats.distinctLinks;
const lost = N - stats.linked;

// ---- the bound
const wecomApis = Object.fromEntries(Object.entries(stats.wecomCalls).filter(([k]) => k !== 'gettoken'));
const perAccount = (c: number) => c / N;
const busiest = Math.max(...Object.values(wecomApis).map(perAccount));
const wecomBound = BUDGET / 60 / busiest;
const graphOk = Object.values(graphCalls).reduce((a, b) => a + b, 0);
const graphBound = GRAPH_RATE / perAccount(graphOk);
const bound = Math.min(wecomBound, graphBound);
const rate = N / seconds;
const f = (n: number, d = 1) => n.toFixed(d);
const pct = (x: number) => `${f(100 * x, 0)} %`;

console.log(`mailbox-first onboarding: ${N} new Graph accounts → WeCom members, ${SHARDS} parallel FIFO consumers (batch 10)`);
console.log(`  drained in ${f(seconds)} s → ${f(rate)} accounts/s`);
console.log(`  WeCom calls per account: ${Object.entries(wecomApis).map(([k, v]) => `${k} ${f(perAccount(v), 2)}`).join(', ')}; answered 45009: ${JSON.stringify(stats.wecomRateLimited)}`);
console.log(`  WeCom bound (this process's budget ${BUDGET}/min per API — WeCom allows ${WECOM_PER_MINUTE} — ÷ ${f(busiest, 2)} calls per account on the busiest API): ${f(wecomBound)} accounts/s sustained; the client waited ${f(wecom.limiter!.waitedMs / 1000)} s in total`);
console.log(`  Graph calls per account: ${f(perAccount(graphOk), 2)} (${Object.entries(graphCalls).map(([k, v]) => `${k} ${f(perAccount(v), 2)}`).join(', ')}); 429: ${graphStatus['429'] ?? 0}; bound at ${GRAPH_RATE}/s: ${f(graphBound)} accounts/s`);
console.log(`  bound: ${f(bound)} accounts/s (${wecomBound <= graphBound ? 'WeCom' : 'Graph'}) → achieved ${f((100 * rate) / bound)} % of it`);
console.log(`  lost: ${lost}, duplicate links: ${duplicates}, WeCom members ${stats.members}, enabled ${enabled}, dead letters ${parked.length + queues.reduce((n, q) => n + q.deadLetters.length, 0)}`);
console.log(`  CPU while draining (100 % = one core of ${availableParallelism()}): worker process ${pct(share.self)} (sync worker + KMS stand-in), simulators ${pct(simsShare)}, dynalite ${pct(share.child)}, rest of the machine ${pct(Math.max(0, share.others - simsShare))}`);
if (parked.length) console.log(`  first dead letter: ${parked[0]}`);

await Promise.all(queues.map((q) => q.close()));
await sims.close();
await kms.close();
await dyn.close();
const ok = lost === 0 && duplicates === 0 && enabled === N && parked.length === 0;
if (!ok) {
  console.error('mailbox-first bench: the drain was not correct');
  process.exit(1);
}
