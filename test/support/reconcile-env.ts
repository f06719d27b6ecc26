/**
 * A whole sync environment on loopback, for reconcile tests and the reconcile benchmark:
 * dynalite (state + audit, real DynamoDB client), the local key file cipher, the WeCom and
 * Graph simulators over HTTP with the real API clients, and EngineDeps wired like the worker's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import { createWecomSim } from '../../bin/local/sim/wecom';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import type { SyncMessage } from '../../functions/queue/messages';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { LocalFileKeyProvider } from '../../functions/security/local-key-provider';
import { storedAuditChainKey } from '../../functions/security/audit-chain-key';
import { DynamoAuditLog } from '../../functions/store/audit';
import { DynamoStateStore } from '../../functions/store/state';
import type { EngineDeps } from '../../functions/sync/context';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { syncSubject } from '../../functions/sync/engine';
import { LocalReportSink } from '../../functions/sync/report';
import type { ReconcileDeps } from '../../functions/sync/reconcile';
import { WecomApiClient } from '../../functions/wecom/api';

export const CORP = { corpId: 'wwreconcile', contactsSecret: 'contacts-secret-r', appSecret: 'app-secret-r' };
export const GRAPH = { tenantId: 'tenant-r', clientId: 'client-r', clientSecret: 'graph-secret-r' };

export type WecomSimT = ReturnType<typeof createWecomSim>;

export interface SyncEnv {
  dir: string;
  dynamo: LocalDynamo;
  wecomSim: WecomSimT;
  graphSim: GraphSim;
  wecomBase: string;
  graphBase: string;
  deps: ReconcileDeps;
  reportsDir: string;
  sync(userid: string, hint?: string): ReturnType<typeof syncSubject>;
  close(): Promise<void>;
}

export async function startSyncEnv(opts: { config?: Record<string, unknown>; concurrency?: number; dynamo?: LocalDynamo } = {}): Promise<SyncEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'reconcile-'));
  const dynamo = opts.dynamo ?? (await startDynalite());
  const keys = new LocalFileKeyProvider(join(dir, 'master.key'));
  const cipher = new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, dynamo.client, dynamo.tables.state) });

  const wecomSim = createWecomSim({ ...CORP });
  const wecomSrv = await wecomSim.start();
  const graphSim = createGraphSim({ ...GRAPH });
  const graphSrv = await graphSim.start();

  const config = parseRuntimeConfig(
    JSON.stringify({
      provider: 'graph',
      mailDomain: 'example.com',
      ...opts.config,
      wecom: { apiBase: wecomSrv.baseUrl },
      graph: { apiBase: graphSrv.baseUrl, tokenUrl: `${graphSrv.baseUrl}/${GRAPH.tenantId}/oauth2/v2.0/token` },
    }),
  );
  const wecom = new WecomApiClient({ apiBase: wecomSrv.baseUrl, ...CORP });
  const mailbox = new GraphDirectory({
    ...GRAPH,
    apiBase: graphSrv.baseUrl,
    tokenUrl: `${graphSrv.baseUrl}/${GRAPH.tenantId}/oauth2/v2.0/token`,
    domain: 'example.com',
    sleep: async () => undefined,
  });
  const reportsDir = join(dir, 'reports');
  const enqueued: SyncMessage[] = [];
  const deps: ReconcileDeps = {
    wecom,
    mailbox,
    state: new DynamoStateStore(dynamo.client, dynamo.tables.state),
    audit: new DynamoAuditLog(dynamo.client, dynamo.tables.audit, { chain: storedAuditChainKey(keys, dynamo.client, dynamo.tables.state) }),
    cipher,
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 60_000 }),
    config,
    now: () => new Date(),
    stateTable: dynamo.tables.state,
    enqueue: async (m) => void enqueued.push(...m),
    reports: new LocalReportSink(reportsDir),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  };
  let n = 0;
  return {
    dir,
    dynamo,
    wecomSim,
    graphSim,
    wecomBase: wecomSrv.baseUrl,
    graphBase: graphSrv.baseUrl,
    deps,
    reportsDir,
    sync: (userid, hint) =>
      syncSubject(
        { v: 1, subject: `user:${userid}`, source: 'wecom', eventId: `setup-${++n}`, ...(hint ? { hint } : {}), operator: 'test-setup', receivedAt: new Date().toISOString() },
        deps,
      ),
    close: async () => {
      await wecomSrv.close();
      await graphSrv.close();
      if (!opts.dynamo) await dynamo.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
