/**
 * The chunked reconcile (functions/sync/reconcile/job.ts) on loopback: the WeCom and Graph
 * simulators over HTTP (user/list_id paged 7 rows at a time), dynalite with the reconcile
 * table (store/run-store-dynamo.ts), the real engine. Chunks are forced to end after every
 * step (deadline already passed) or killed between their writes and their checkpoint, and
 * the report is compared with the pre-issue-16 single pass (test/support/reconcile-single-run.ts)
 * on the same data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LOCAL_AWS } from '../../bin/local/dynalite';
import { createReconcileHandler } from '../../functions/handlers/reconcile';
import { SqsReconcileContinuation } from '../../functions/queue/reconcile-continuation';
import { DynamoRunStore } from '../../functions/store/run-store-dynamo';
import type { RunStore } from '../../functions/store/run-store';
import { RECONCILE_SUBJECT, reconcileAll, runReconcileChunk, RunSupersededError, type ChunkOptions, type ReconcileDeps } from '../../functions/sync/reconcile';
import type { ReconcileReport } from '../../functions/sync/report';
import { WecomApiClient } from '../../functions/wecom/api';
import { CORP, startSyncEnv, type SyncEnv } from '../support/reconcile-env';
import { startLoopbackSqs } from '../support/aws-json-loopback';
import { reconcileSingleRun } from '../support/reconcile-single-run';

/** A report without what differs between two runs on the same data (ids, times, where it went), findings in one order. */
function comparable(r: ReconcileReport) {
  const findings = r.findings.map((f) => JSON.stringify(f, Object.keys(f).sort())).sort();
  return { mode: r.mode, counts: r.counts, drift: r.drift, guard: r.guard, findings };
}

/** Runs a whole run in chunks of one step each (the deadline has always passed). */
async function chunked(deps: ReconcileDeps, store: RunStore, opts: ChunkOptions = {}): Promise<{ report: ReconcileReport; chunks: number }> {
  let r = await runReconcileChunk(deps, store, { ...opts, deadlineMs: 0 });
  while (!r.report) {
    expect(r.steps).toBe(1);
    r = await runReconcileChunk(deps, store, { runId: r.runId, deadlineMs: 0 });
  }
  return { report: r.report, chunks: r.chunks };
}

const MOBILE = (i: number) => `+86138${String(10_000_000 + i).slice(-8)}`;

describe('chunked reconcile on the simulators', () => {
  let env: SyncEnv;
  let deps: ReconcileDeps;
  let store: DynamoRunStore;

  beforeAll(async () => {
    env = await startSyncEnv();
    const d = env.wecomSim.departments;
    d.set(1, { id: 1, name: 'Root', parentid: 0 } as never);
    d.set(2, { id: 2, name: '技术部', parentid: 1 } as never);
    d.set(3, { id: 3, name: '研发组', parentid: 2 } as never);
    d.set(5, { id: 5, name: '市场部', parentid: 1 } as never);
    const add = (userid: string, extra: Record<string, unknown> = {}) =>
      env.wecomSim.users.set(userid, { userid, name: userid.toUpperCase(), department: [3], main_department: 3, position: 'Engineer', enable: 1, status: 1, ...extra } as never);
    for (let i = 0; i < 24; i++) add(`u${String(i).padStart(2, '0')}`, { mobile: MOBILE(i), ...(i % 5 === 0 ? { department: [5], main_department: 5 } : {}) });
    for (const id of env.wecomSim.users.keys()) await env.sync(id, 'create_user');
    const account = (userid: string) => [...env.graphSim.users.values()].find((u) => u.employeeId === userid)!;
    // Every class of drift the simulators can show, planted without an event:
    add('newbie'); // missing-in-mailbox
    (env.wecomSim.users.get('u01') as { position: string }).position = 'Architect'; // fields-differ
    env.wecomSim.users.delete('u02'); // extra-in-mailbox
    account('u03').accountEnabled = false; // offboarded-in-mailbox
    (env.wecomSim.users.get('u04') as { enable: number }).enable = 0; // disabled-in-wecom
    account('u06').department = 'Nowhere/Else'; // mailbox-department-unknown (+ fields-differ)
    (env.wecomSim.users.get('u08') as { mobile: string }).mobile = MOBILE(7); // duplicate-mobile (u07, u08)
    (env.wecomSim.users.get('u09') as { mobile: string }).mobile = 'call me'; // invalid-field
    add('orphan', { department: [99], main_department: 99 }); // department-unmapped
    d.set(6, { id: 6, name: '市场部', parentid: 1 } as never); // department-duplicate-path
    (env.wecomSim.users.get('u10') as { enable: number }).enable = 0; // disabled on both sides: in sync
    account('u10').accountEnabled = false;
    // A second account carrying u11's employeeId, and an unmanaged one.
    env.graphSim.seedUser({ displayName: 'U11 again', userPrincipalName: 'u11.b@example.com', mail: 'u11.b@example.com', employeeId: 'u11' } as never);
    env.graphSim.seedUser({ displayName: 'Mailbox Admin', userPrincipalName: 'admin@example.com', mail: 'admin@example.com' });
    deps = {
      ...env.deps,
      // user/list_id 7 rows a page: the WeCom side spans pages, and so chunks.
      wecom: new WecomApiClient({ apiBase: env.wecomBase, ...CORP, listLimit: 7 }),
      chunking: { pageSize: 4, shards: 3 },
    };
    store = new DynamoRunStore(env.dynamo.client, env.dynamo.tables.reconcile!);
  }, 120_000);

  afterAll(async () => {
    await env?.close();
  });

  it.each(['report', 'repair-dry-run'] as const)('%s: chunks ended after every step give the report of one pass on the same data', async (mode) => {
    const opts = mode === 'report' ? {} : { repair: true };
    const single = await reconcileSingleRun(env.deps, opts);
    expect(single.drift).toBeGreaterThan(10);
    const { report, chunks } = await chunked(deps, store, opts);
    expect(chunks).toBeGreaterThan(20);
    expect(comparable(report)).toEqual(comparable(single));
    // And reconcileAll (the CLI's path, one chunk to the end) on the same store agrees too.
    expect(comparable(await reconcileAll({ ...deps, runStore: store }, opts))).toEqual(comparable(single));
  }, 120_000);

  it('a chunk killed after its writes and before its checkpoint is redone: no finding twice, no count twice', async () => {
    const single = await reconcileSingleRun(env.deps);
    // Every third checkpoint write fails as a kill -9 would leave it: the step's items written, the checkpoint not.
    let n = 0;
    let kills = 0;
    const killing: RunStore = {
      put: (i) => store.put(i),
      get: (pk, sk) => store.get(pk, sk),
      page: (pk, o) => store.page(pk, o),
      getVersioned: (pk, sk) => store.getVersioned(pk, sk),
      putVersioned: async (pk, sk, v, e) => {
        if (++n > 1 && n % 3 === 0) {
          kills++;
          throw new Error('killed');
        }
        return store.putVersioned(pk, sk, v, e);
      },
    };
    let r = await runReconcileChunk(deps, killing, { deadlineMs: 0 });
    const runId = r.runId;
    while (!r.report) {
      try {
        r = await runReconcileChunk(deps, killing, { runId, deadlineMs: 0 });
      } catch (err) {
        expect((err as Error).message).toBe('killed');
      }
    }
    expect(kills).toBeGreaterThan(10);
    expect(comparable(r.report)).toEqual(comparable(single));
    const keys = r.report.findings.map((f) => `${f.class} ${f.subject} ${f.accountId ?? ''}`);
    expect(new Set(keys).size).toBe(keys.length);
  }, 120_000);

  it('two executions of one run: only one advances the checkpoint, the other stops; the run still ends with the one-pass report', async () => {
    const single = await reconcileSingleRun(env.deps);
    let r = await runReconcileChunk(deps, store, { deadlineMs: 0 });
    for (let i = 0; i < 5; i++) r = await runReconcileChunk(deps, store, { runId: r.runId, deadlineMs: 0 });
    // A duplicate continuation: both resume from the same checkpoint version.
    const both = await Promise.allSettled([runReconcileChunk(deps, store, { runId: r.runId, deadlineMs: 0 }), runReconcileChunk(deps, store, { runId: r.runId, deadlineMs: 0 })]);
    expect(both.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    const lost = both.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(RunSupersededError);
    const { report } = await chunked(deps, store, { runId: r.runId });
    expect(comparable(report)).toEqual(comparable(single));
  }, 120_000);

  it('the Lambda handler runs one chunk per invocation and continues itself through the queue until the report', async () => {
    const single = await reconcileSingleRun(env.deps);
    // The continuation as deployed: the real SQS client's SendMessage, to an SQS endpoint on loopback.
    const sqs = await startLoopbackSqs();
    const continuation = new SqsReconcileContinuation(new SQSClient({ ...LOCAL_AWS, endpoint: sqs.endpoint }), `${sqs.endpoint}/000000000000/wecom-mailbox-sync-reconcile`);
    const handler = createReconcileHandler({
      reconcileDeps: async () => deps,
      defaultMode: 'report',
      chunking: async () => ({ store, continueRun: (runId) => continuation.send(runId), marginMs: 60_000 }),
    });
    // 60 s left and a 60 s margin: every chunk makes its one step and stops.
    const context = { getRemainingTimeInMillis: () => 60_000 } as never;
    let out = await handler({}, context);
    let invocations = 1;
    try {
      while (!out.done) {
        expect(sqs.messages).toHaveLength(1);
        const sent = sqs.messages.shift()!;
        expect(sent.QueueUrl).toMatch(/wecom-mailbox-sync-reconcile$/);
        expect(JSON.parse(sent.MessageBody)).toEqual({ runId: out.runId });
        out = await handler({ Records: [{ body: sent.MessageBody }] }, context);
        invocations++;
      }
    } finally {
      await sqs.close();
    }
    expect(sqs.messages).toEqual([]);
    expect(invocations).toBeGreaterThan(20);
    expect(out).toMatchObject({ done: true, mode: 'report', drift: single.drift, byClass: single.counts.byClass });
    const last = (await env.deps.audit.bySubject(RECONCILE_SUBJECT)).at(-1)!;
    expect(last.eventId).toBe(out.runId);
  }, 120_000);
});

describe('chunked repair: the deletion guard counts over the whole run', () => {
  let g: SyncEnv;
  beforeAll(async () => {
    g = await startSyncEnv();
    g.wecomSim.departments.set(1, { id: 1, name: 'Root', parentid: 0 } as never);
    for (let i = 0; i < 40; i++) {
      const userid = `p${String(i).padStart(2, '0')}`;
      g.wecomSim.users.set(userid, { userid, name: userid, department: [1], main_department: 1, enable: 1, status: 1 } as never);
      await g.sync(userid, 'create_user');
    }
    // An upstream glitch: 30 members vanish from WeCom.
    for (let i = 0; i < 30; i++) g.wecomSim.users.delete(`p${String(i).padStart(2, '0')}`);
  }, 120_000);
  afterAll(async () => {
    await g?.close();
  });

  it('30 destructive repairs planned 2 per chunk: the guard sees 30 > 2, refuses every one, nothing disabled; confirmed, all are applied', async () => {
    const deps: ReconcileDeps = { ...g.deps, chunking: { pageSize: 10, shards: 4 } };
    const store = new DynamoRunStore(g.dynamo.client, g.dynamo.tables.reconcile!);
    const { report, chunks } = await chunked(deps, store, { repair: true, apply: true });
    expect(chunks).toBeGreaterThan(15); // 30 subjects planned 2 per step, in 4 shards
    expect(report.guard).toEqual({ destructive: 30, limit: 2, tripped: true, confirmed: false });
    expect(report.findings.filter((f) => f.repair === 'refused')).toHaveLength(30);
    expect([...g.graphSim.users.values()].filter((u) => !u.accountEnabled)).toEqual([]);
    const refused = (await g.deps.audit.bySubject(RECONCILE_SUBJECT)).filter((a) => a.action === 'refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toContain('(30 > 2)');

    // Confirmed, and killed in the middle of the apply phase twice: every account disabled once.
    let n = 0;
    const killing: RunStore = { ...bind(store), putVersioned: async (pk, sk, v, e) => (++n === 25 || n === 31 ? Promise.reject(new Error('killed')) : store.putVersioned(pk, sk, v, e)) };
    let r = await runReconcileChunk(deps, killing, { repair: true, apply: true, confirm: true, deadlineMs: 0 });
    while (!r.report) r = await runReconcileChunk(deps, killing, { runId: r.runId, deadlineMs: 0 }).catch(() => r);
    expect(r.report.guard).toMatchObject({ destructive: 30, tripped: true, confirmed: true });
    expect(r.report.findings.filter((f) => f.repair === 'applied')).toHaveLength(30);
    expect([...g.graphSim.users.values()].filter((u) => !u.accountEnabled)).toHaveLength(30);
    const writes = g.graphSim.requests.filter((q) => q.method === 'PATCH' && q.body && (q.body as { accountEnabled?: boolean }).accountEnabled === false);
    expect(writes.length).toBeLessThanOrEqual(30 + 2); // a killed step redoes at most its page's disables, which find the account disabled already
  }, 120_000);

  it('chunks killed right after the run’s own audit appends (the refusal, the summary) and before their checkpoints: each is in the trail once', async () => {
    for (let i = 30; i < 40; i++) g.wecomSim.users.delete(`p${i}`); // the rest vanish too: the guard trips again
    const deps: ReconcileDeps = { ...g.deps, chunking: { pageSize: 50, shards: 2 } };
    const store = new DynamoRunStore(g.dynamo.client, g.dynamo.tables.reconcile!);
    // The checkpoint that would record the step after the guard's refusal, and the one after the summary: each fails once.
    const killAt = new Set<string>(['apply', 'done']);
    const kills: string[] = [];
    const killing: RunStore = {
      ...bind(store),
      putVersioned: async (pk, sk, v, e) => {
        const phase = (v as { phase: string }).phase;
        if (killAt.delete(phase)) {
          kills.push(phase);
          throw new Error('killed');
        }
        return store.putVersioned(pk, sk, v, e);
      },
    };
    let r = await runReconcileChunk(deps, killing, { repair: true, apply: true, deadlineMs: 0 });
    const runId = r.runId;
    while (!r.report) r = await runReconcileChunk(deps, killing, { runId, deadlineMs: 0 }).catch(() => r);
    expect(kills).toEqual(['apply', 'done']);
    expect(r.report.guard).toMatchObject({ tripped: true, confirmed: false });
    const ofRun = (await g.deps.audit.bySubject(RECONCILE_SUBJECT)).filter((a) => a.eventId === runId);
    expect(ofRun.map((a) => a.action)).toEqual(['refused', 'skip']);
    expect((await g.deps.audit.verify(RECONCILE_SUBJECT)).ok).toBe(true);
  }, 120_000);
});

function bind(store: RunStore): RunStore {
  return {
    put: (i) => store.put(i),
    get: (pk, sk) => store.get(pk, sk),
    page: (pk, o) => store.page(pk, o),
    getVersioned: (pk, sk) => store.getVersioned(pk, sk),
    putVersioned: (pk, sk, v, e) => store.putVersioned(pk, sk, v, e),
  };
}
