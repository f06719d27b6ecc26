/**
 * The whole sync loop on loopback, for the integration test and the drain benchmark:
 *
 *   WeCom sim ──encrypted callback──▶ wecom-callback handler ─▶ DynamoInbox (dynalite)
 *   Graph sim ──change notification─▶ mailbox-events handler ─┘        │
 *                                                              LocalFifoQueue
 *                                                                      ▼
 *        sync worker ─▶ WecomApiClient ⇄ WeCom sim, GraphDirectory ⇄ Graph sim,
 *                       DynamoStateStore / DynamoAuditLog (dynalite),
 *                       EnvelopeCipher over KmsKeyProvider ⇄ loopback KMS
 *
 * One node:http server routes /wecom/callback and /mailbox/events/* to the real handler
 * factories through API Gateway v2 events, as the local stack does.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KMSClient } from '@aws-sdk/client-kms';
import type { Context } from 'aws-lambda';
import { readBody, toApiGatewayEvent, writeResult } from '../../bin/local/apigw';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { LocalFifoQueue, type DeadLetter } from '../../bin/local/queue';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import { startKmsServer, type KmsServer } from '../../bin/local/sim/kms';
import { createWecomSim } from '../../bin/local/sim/wecom';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { createMailboxEventsHandler } from '../../functions/handlers/mailbox-events';
import { createWecomCallbackHandler } from '../../functions/handlers/wecom-callback';
import { createSyncWorkerHandler } from '../../functions/handlers/sync-worker';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { addressKey } from '../../functions/mailbox/receive';
import { ensureGraphSubscriptions } from '../../functions/mailbox/graph/subscriptions';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { storedAuditChainKey } from '../../functions/security/audit-chain-key';
import { DynamoAuditLog } from '../../functions/store/audit';
import { DynamoInbox } from '../../functions/store/inbox';
import { DynamoStateStore } from '../../functions/store/state';
import type { EngineDeps } from '../../functions/sync/context';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { WecomApiClient } from '../../functions/wecom/api';

export const CREDS = {
  corpId: 'wwloop0000000001',
  contactsSecret: 'contacts-secret-loop',
  appSecret: 'app-secret-loop',
  token: 'looptoken123',
  // 43 characters of base64 (a 32-byte AES key without its '=' padding).
  encodingAESKey: Buffer.alloc(32, 7).toString('base64').slice(0, 43),
  tenantId: 'tenant-loop',
  clientId: 'client-loop',
  clientSecret: 'client-secret-loop',
  clientState: 'client-state-loop-' + 'x'.repeat(40),
  webhookSecret: 'webhook-secret-loop',
};

export interface LoopOptions {
  config?: Record<string, unknown>;
  graph?: { failRate?: number; rateLimit?: { perSecond: number }; retryAfterSeconds?: number };
  /** Sleep used by the Graph client between throttled retries (default: real, capped at 50 ms). */
  graphSleep?: (ms: number) => Promise<void>;
  maxReceiveCount?: number;
  retryDelayMs?: number;
  /** Count DynamoDB commands (bench). */
  countDynamo?: boolean;
  /** Parallel FIFO consumers (Lambda concurrency): subjects are spread over this many queues. */
  shards?: number;
  subscribe?: boolean;
}

export async function startLoop(opts: LoopOptions = {}) {
  let clock: number | undefined;
  const now = () => (clock === undefined ? new Date() : new Date(clock));
  const dyn: LocalDynamo = await startDynalite();
  const dynamoCalls: Record<string, number> = {};
  if (opts.countDynamo) {
    dyn.client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context as { commandName?: string }).commandName ?? 'unknown';
        dynamoCalls[name] = (dynamoCalls[name] ?? 0) + 1;
        return next(args);
      },
      { step: 'initialize', name: 'countCommands' },
    );
  }
  const kms: KmsServer = await startKmsServer();
  const keys = new KmsKeyProvider(new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint }), kms.keyId);
  const cipher = new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, dyn.client, dyn.tables.state) });

  // Routes for callbacks and notifications, served by the real handler factories.
  let route: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => Promise<void> = async (_q, r) => void r.writeHead(503).end();
  const server: Server = createServer((req, res) => void route(req, res).catch(() => res.writeHead(500).end()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const wecomSim = createWecomSim({
    corpId: CREDS.corpId,
    contactsSecret: CREDS.contactsSecret,
    appSecret: CREDS.appSecret,
    callback: { url: `${baseUrl}/wecom/callback`, token: CREDS.token, encodingAESKey: CREDS.encodingAESKey },
  });
  const wecomSrv = await wecomSim.start();
  const graphSim: GraphSim = createGraphSim({
    tenantId: CREDS.tenantId,
    clientId: CREDS.clientId,
    clientSecret: CREDS.clientSecret,
    ...(opts.graph?.failRate !== undefined ? { failRate: opts.graph.failRate } : {}),
    ...(opts.graph?.rateLimit ? { rateLimit: opts.graph.rateLimit } : {}),
    retryAfterSeconds: opts.graph?.retryAfterSeconds ?? 1,
  });
  const graphSrv = await graphSim.start();

  const config = parseRuntimeConfig(
    JSON.stringify({
      provider: 'graph',
      mailDomain: 'example.com',
      ...opts.config,
      wecom: { apiBase: wecomSrv.baseUrl },
      graph: { apiBase: graphSrv.baseUrl, tokenUrl: `${graphSrv.baseUrl}/${CREDS.tenantId}/oauth2/v2.0/token`, notificationUrl: `${baseUrl}/mailbox/events/graph` },
    }),
  );
  const wecom = new WecomApiClient({ apiBase: wecomSrv.baseUrl, corpId: CREDS.corpId, contactsSecret: CREDS.contactsSecret, appSecret: CREDS.appSecret });
  const graph = new GraphDirectory({
    apiBase: graphSrv.baseUrl,
    tokenUrl: `${graphSrv.baseUrl}/${CREDS.tenantId}/oauth2/v2.0/token`,
    tenantId: CREDS.tenantId,
    clientId: CREDS.clientId,
    clientSecret: CREDS.clientSecret,
    domain: 'example.com',
    maxRetries: 6,
    sleep: opts.graphSleep ?? ((ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50)))),
  });

  const state = new DynamoStateStore(dyn.client, dyn.tables.state);
  const audit = new DynamoAuditLog(dyn.client, dyn.tables.audit, { now, chain: storedAuditChainKey(keys, dyn.client, dyn.tables.state) });
  const inbox = new DynamoInbox(dyn.client, dyn.tables.inbox);
  const counts: Record<string, number> = {};
  const parked: DeadLetter[] = [];

  const shards = Math.max(1, opts.shards ?? 1);
  const queues = Array.from({ length: shards }, () => new LocalFifoQueue({ maxReceiveCount: opts.maxReceiveCount ?? 6, retryDelayMs: opts.retryDelayMs ?? 20 }));
  const shardOf = (subject: string) => {
    let h = 0;
    for (let i = 0; i < subject.length; i++) h = (h * 31 + subject.charCodeAt(i)) >>> 0;
    return queues[h % shards]!;
  };
  const queue = {
    async enqueue(msgs: import('../../functions/queue/messages').SyncMessage[]) {
      for (const m of msgs) await shardOf(m.subject).enqueue([m]);
    },
  };

  const engine: EngineDeps = {
    wecom,
    mailbox: graph,
    state,
    audit,
    cipher,
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 60_000 }),
    config,
    now,
    metrics: { count: (name, n = 1) => void (counts[name] = (counts[name] ?? 0) + n) },
    stateTable: dyn.tables.state,
    enqueue: (msgs) => queue.enqueue(msgs),
    addressKey: (email) => addressKey(CREDS.webhookSecret, email),
  };
  const worker = createSyncWorkerHandler({
    engineDeps: async () => engine,
    maxReceiveCount: opts.maxReceiveCount ?? 6,
    deadLetters: { park: async (message, reason) => void parked.push({ messageId: message.eventId, message, reason, receiveCount: 0 }) },
  });
  for (const q of queues) q.setConsumer((e) => worker(e, {} as Context));

  const callback = createWecomCallbackHandler({
    keys: { corpId: CREDS.corpId, token: CREDS.token, encodingAESKey: CREDS.encodingAESKey },
    inbox,
    queue,
  });
  const mailboxEvents = createMailboxEventsHandler({ inbox, queue, provider: 'graph', clientState: CREDS.clientState, webhookSecret: CREDS.webhookSecret });
  route = async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const body = await readBody(req);
    if (body === 'too-large') return void res.writeHead(413).end();
    if (path === '/wecom/callback') return writeResult(res, await callback(toApiGatewayEvent(req, body, `${req.method} /wecom/callback`), {} as Context));
    if (path.startsWith('/mailbox/events/')) return writeResult(res, await mailboxEvents(toApiGatewayEvent(req, body, 'POST /mailbox/events/{provider}'), {} as Context));
    res.writeHead(404).end();
  };

  if (opts.subscribe !== false) {
    await ensureGraphSubscriptions(graph, { notificationUrl: `${baseUrl}/mailbox/events/graph`, clientState: CREDS.clientState });
  }

  const deadLetters = () => [...parked, ...queues.flatMap((q) => q.deadLetters)];
  const drain = async (timeoutMs = 20_000) => {
    for (const q of queues) q.start();
    await Promise.all(queues.map((q) => q.drain(timeoutMs)));
  };
  /** Deliver pending callbacks and notifications and drain the queue until nothing moves. */
  const settle = async (timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (let pass = 0; pass < 30 && Date.now() < deadline; pass++) {
      await wecomSim.flushCallbacks();
      await graphSim.flushNotifications();
      const depth = queues.reduce((n, q) => n + q.depth, 0);
      await drain(Math.max(1, deadline - Date.now()));
      await wecomSim.flushCallbacks();
      await graphSim.flushNotifications();
      if (depth === 0 && queues.every((q) => q.depth === 0)) return;
    }
  };

  return {
    baseUrl,
    dyn,
    kms,
    wecomSim,
    wecomSrv,
    graphSim,
    graphSrv,
    graph,
    wecom,
    engine,
    state,
    audit,
    queue,
    queues,
    counts,
    dynamoCalls,
    deadLetters,
    drain,
    settle,
    setNow(ms: number | undefined) {
      clock = ms;
    },
    async close() {
      for (const q of queues) q.stop();
      await wecomSrv.close();
      await graphSrv.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections?.();
      await kms.close();
      await dyn.close();
    },
  };
}

export type Loop = Awaited<ReturnType<typeof startLoop>>;
