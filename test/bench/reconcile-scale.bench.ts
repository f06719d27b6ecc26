/**
 * Reconcile past one Lambda run: N WeCom members and their Graph accounts (bulk-seeded in the
 * simulators' own process, support/sims-process.ts, with planted drift), reconciled by the
 * chunked job (functions/sync/reconcile/job.ts) on a run store in a child process: by default
 * the in-memory store over IPC (support/run-store-process.ts), RS_STORE=dynalite for the
 * reconcile table on dynalite through the real DynamoDB client (dynalite then binds the run:
 * ~1 ms of its CPU per item written). Everything that bounds a real run is scaled by the same
 * factor S so the run takes minutes here: WeCom's limit (10,000 calls/min per API → 10,000·S,
 * this process's budget 9,000·S) and the chunk's deadline (a Lambda's 15 minutes → 15/S min,
 * after which the next chunk resumes from the checkpoint, as the next invocation would).
 *
 * The process runs with its heap capped at 256 MB (--max-old-space-size=256: it re-executes
 * itself so), so finishing at all shows the bound; it also reports the live heap after a full
 * GC at the end of each chunk (--expose-gc), which is what a directory's size could grow.
 *
 * Prints: wall time against the rate-limit bound (user/get calls ÷ the budget), chunks and
 * resumptions, peak heap (process.memoryUsage and v8 heap statistics sampled every 250 ms),
 * CPU share per process (this one, simulators, dynalite), and whether the report holds exactly
 * the planted drift.
 *
 * Env: RS_N (default 1,000,000), RS_SCALE (S, default 20), RS_PAGE (items per step, default
 *      1000), RS_CONCURRENCY (user/get in flight, default 32), RS_GRAPH_RATE (Graph calls/s, default 50),
 *      RS_STORE (process | dynalite, default process).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { startDynalite } from '../../bin/local/dynalite';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { LocalFileKeyProvider } from '../../functions/security/local-key-provider';
import { storedAuditChainKey } from '../../functions/security/audit-chain-key';
import { DynamoAuditLog } from '../../functions/store/audit';
import type { RunStore } from '../../functions/store/run-store';
import { DynamoRunStore } from '../../functions/store/run-store-dynamo';
import { DynamoStateStore } from '../../functions/store/state';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { runReconcileChunk, type ReconcileDeps } from '../../functions/sync/reconcile';
import type { ReconcileReport } from '../../functions/sync/report';
import { WecomApiClient } from '../../functions/wecom/api';
import { cpuMeter, dynaliteChildPid, procCpuSeconds } from './support/cpu';
import { startRunStoreProcess } from './support/run-store-process';
import { plantedDrift, startSimsProcess } from './support/sims-process';

const HEAP_CAP_MB = 256;
if (!process.execArgv.some((a) => a.startsWith('--max-old-space-size'))) {
  const run = spawnSync(process.execPath, [`--max-old-space-size=${HEAP_CAP_MB}`, '--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}
const gc = (globalThis as { gc?: () => void }).gc;

const N = Number(process.env.RS_N ?? 1_000_000);
const S = Number(process.env.RS_SCALE ?? 20);
const PAGE = Number(process.env.RS_PAGE ?? 1000);
const CONCURRENCY = Number(process.env.RS_CONCURRENCY ?? 32);
const GRAPH_RATE = Number(process.env.RS_GRAPH_RATE ?? 50);
const STORE = process.env.RS_STORE === 'dynalite' ? 'dynalite' : 'process';
const WECOM_PER_MINUTE = 10_000 * S;
const BUDGET = 9_000 * S;
const CHUNK_MS = (15 * 60_000) / S;
const CORP = { corpId: 'wwscale', contactsSecret: 'contacts-scale', appSecret: 'app-scale' };
const f = (n: number, d = 1) => n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
const mb = (b: number) => `${f(b / 2 ** 20, 0)} MB`;

const dir = mkdtempSync(join(tmpdir(), 'reconcile-scale-'));
const tSeed = performance.now();
const dyn = await startDynalite({ childProcess: true, path: join(dir, 'dynamodb') });
const sims = await startSimsProcess({ corp: CORP, wecomPerMinute: WECOM_PER_MINUTE, graphRate: GRAPH_RATE, seed: 0, directory: N });
const seeded = await sims.lightStats();
const seedSeconds = (performance.now() - tSeed) / 1000;

const wecom = new WecomApiClient({ apiBase: sims.wecomBase, ...CORP, callsPerMinute: BUDGET });
const mailbox = new GraphDirectory({ apiBase: sims.graphBase, tokenUrl: `${sims.graphBase}/t/oauth2/v2.0/token`, tenantId: 't', clientId: 'c', clientSecret: 's', domain: 'example.com', maxRetries: 20 });
const keys = new LocalFileKeyProvider(join(dir, 'master.key'));
const deps: ReconcileDeps = {
  wecom,
  mailbox,
  state: new DynamoStateStore(dyn.client, dyn.tables.state),
  audit: new DynamoAuditLog(dyn.client, dyn.tables.audit, { chain: storedAuditChainKey(keys, dyn.client, dyn.tables.state) }),
  cipher: new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, dyn.client, dyn.tables.state) }),
  departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 3_600_000 }),
  config: parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com' }),
  now: () => new Date(),
  stateTable: dyn.tables.state,
  concurrency: CONCURRENCY,
  chunking: { pageSize: PAGE, shards: 16 },
};
const storeProcess = STORE === 'process' ? await startRunStoreProcess() : undefined;
const table: RunStore = storeProcess?.store ?? new DynamoRunStore(dyn.client, dyn.tables.reconcile!, { writeConcurrency: 8 });
let itemsWritten = 0;
const store: RunStore = {
  put: (items) => ((itemsWritten += items.length), table.put(items)),
  get: (pk, sk) => table.get(pk, sk),
  page: (pk, o) => table.page(pk, o),
  getVersioned: (pk, sk) => table.getVersioned(pk, sk),
  putVersioned: (pk, sk, v, e) => table.putVersioned(pk, sk, v, e),
};

// ---- heap, sampled
let peakHeapUsed = 0;
let peakV8Used = 0;
let peakRss = 0;
const sample = () => {
  const m = process.memoryUsage();
  peakHeapUsed = Math.max(peakHeapUsed, m.heapUsed);
  peakRss = Math.max(peakRss, m.rss);
  peakV8Used = Math.max(peakV8Used, getHeapStatistics().used_heap_size);
};
const sampler = setInterval(sample, 250);

// ---- the run: chunks that end at their (scaled) deadline, each resuming from the checkpoint
const phaseAt: Record<string, number> = {};
let peakLive = 0;
deps.progress = (p) => void (phaseAt[p.phase] ??= (performance.now() - t0) / 1000);
gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const t0 = performance.now();
const cpu = cpuMeter(dynaliteChildPid());
const simsCpu0 = procCpuSeconds(sims.pid);
const storeCpu0 = storeProcess ? procCpuSeconds(storeProcess.pid) : 0;
let chunks = 0;
let report: ReconcileReport | undefined;
let runId: string | undefined;
while (!report) {
  const r = await runReconcileChunk(deps, store, { ...(runId ? { runId } : {}), deadlineMs: Date.now() + CHUNK_MS });
  chunks++;
  runId = r.runId;
  report = r.report;
  sample();
  gc?.();
  const live = process.memoryUsage().heapUsed;
  peakLive = Math.max(peakLive, live);
  process.stdout.write(`  chunk ${chunks}: ${r.steps} steps, stopped in ${r.phase} at ${f((performance.now() - t0) / 1000, 0)} s, live heap after GC ${mb(live)}\n`);
}
const seconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
const share = cpu();
const simsShare = (procCpuSeconds(sims.pid) - simsCpu0) / seconds;
const storeShare = storeProcess ? (procCpuSeconds(storeProcess.pid) - storeCpu0) / seconds : 0;
const stats = await sims.lightStats();

// ---- the bound: user/get is the busiest WeCom API (one call per member); Graph lists 999 a page
const userGets = stats.wecomCalls['user/get'] ?? 0;
const wecomBound = userGets / (BUDGET / 60);
const graphPages = Object.entries(stats.graphCalls).filter(([k]) => k.startsWith('GET /v1.0/users')).reduce((a, [, v]) => a + v, 0);
const graphBound = graphPages / GRAPH_RATE;
const bound = Math.max(wecomBound, graphBound);
const planted = plantedDrift(N);
const got = report.counts.byClass;
const correct =
  report.counts.wecomPeople === N &&
  (got['missing-in-mailbox'] ?? 0) === planted.missing &&
  (got['fields-differ'] ?? 0) === planted.fieldsDiffer &&
  (got.unmanaged ?? 0) === planted.unmanaged &&
  report.drift === planted.missing + planted.fieldsDiffer;

console.log(`reconcile-scale: ${f(N, 0)} WeCom members, ${f(seeded.accounts, 0)} Graph accounts (seeded in ${f(seedSeconds, 0)} s); scale S = ${S}: WeCom ${f(WECOM_PER_MINUTE, 0)} calls/min per API (real: 10,000), budget ${f(BUDGET, 0)}/min; chunk deadline ${f(CHUNK_MS / 1000, 0)} s (= 15 min ÷ S); ${PAGE} items per step, ${CONCURRENCY} user/get in flight; run store: ${STORE === 'process' ? 'in memory, in its own process' : 'the reconcile table on dynalite'}`);
console.log(`  wall time ${f(seconds, 0)} s; rate-limit bound ${f(bound, 0)} s (user/get ${f(userGets, 0)} ÷ ${f(BUDGET / 60, 0)}/s = ${f(wecomBound, 0)} s; Graph ${graphPages} pages ÷ ${GRAPH_RATE}/s = ${f(graphBound, 0)} s) → ${f((100 * bound) / seconds, 0)} % of the bound`);
console.log(`  phases reached at: ${Object.entries(phaseAt).map(([p, t]) => `${p} ${f(t, 0)} s`).join(', ')}, report ${f(seconds, 0)} s`);
console.log(`  chunks ${chunks} (${chunks - 1} resumptions from the checkpoint); at WeCom's real limit (budget 9,000/min) the ${f(userGets, 0)} user/get alone take ≥ ${f(userGets / 9000, 0)} min → ≥ ${Math.ceil(userGets / 9000 / 13)} Lambda chunks of 15 min (13 min of steps each)`);
console.log(`  heap capped at ${HEAP_CAP_MB} MB: peak heap used ${mb(peakHeapUsed)} (v8 used_heap_size ${mb(peakV8Used)}), rss ${mb(peakRss)}; live heap after GC: ${mb(heapBefore)} before the run, at most ${mb(peakLive)} at a chunk's end (${f((Math.max(0, peakLive - heapBefore) / N) * 1000, 0)} B per 1,000 people above the start)`);
console.log(`  run-store items written ${f(itemsWritten, 0)} (${f(itemsWritten / N, 2)} per person); WeCom 45009 answers: ${JSON.stringify(stats.wecomRateLimited)}; client waited ${f(wecom.limiter!.waitedMs / 1000, 0)} s for its budget`);
console.log(`  CPU (100 % = one core of ${availableParallelism()}): reconcile process ${f(100 * share.self, 0)} %, simulators ${f(100 * simsShare, 0)} %, ${storeProcess ? `run store process ${f(100 * storeShare, 0)} %, ` : ''}dynalite ${f(100 * share.child, 0)} %, rest ${f(100 * Math.max(0, share.others - simsShare - storeShare), 0)} %`);
console.log(`  report: drift ${report.drift} (${Object.entries(got).map(([k, v]) => `${v} ${k}`).join(', ')}); planted ${planted.missing} missing, ${planted.fieldsDiffer} fields-differ, ${planted.unmanaged} unmanaged → ${correct ? 'exact' : 'WRONG'}`);

await sims.close();
await storeProcess?.stop();
await dyn.close();
rmSync(dir, { recursive: true, force: true });
if (!correct) {
  console.error('reconcile-scale bench: the report does not hold the planted drift');
  process.exit(1);
}
