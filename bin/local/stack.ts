/**
 * The local stack: the whole product in one process, with no AWS account and no
 * credentials. The same handlers that deploy to Lambda run here behind a node:http server
 * that builds API Gateway v2 events; DynamoDB is dynalite (persisted under .data/dynamodb),
 * the queue is an in-process FIFO with SQS semantics, field encryption uses a local key
 * file, and WeCom and Microsoft Graph are loopback simulators served on the same port under
 * /_sim/… — unless real credentials are configured, in which case the real APIs are used.
 *
 * Routes:
 *   GET|POST /wecom/callback              WeCom callback (verification + events)
 *   POST     /mailbox/events/graph        Graph change / lifecycle notifications
 *   POST     /mailbox/events/webhook      generic signed mailbox webhook
 *   GET      /healthz                     liveness
 *   *        /_sim/wecom/…  /_sim/graph/… the simulators (when simulated)
 *   GET      /_local/status, /_local/dlq; POST /_local/dlq/redrive, /_local/enqueue
 *            operator endpoints used by the CLI (loopback only; see ADMIN-CONTRACT.md)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseEnv } from 'node:util';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Context } from 'aws-lambda';
import { parseRuntimeConfig, type RuntimeConfig } from '../../functions/config/runtime';
import { createWecomCallbackHandler } from '../../functions/handlers/wecom-callback';
import { createMailboxEventsHandler } from '../../functions/handlers/mailbox-events';
import { stateFeedCursor } from '../../functions/mailbox/feed-cursor';
import type { PushChannelStatus } from '../../functions/mailbox/provider';
import { loadMailboxProvider } from '../../functions/mailbox/providers';
import { addressKey } from '../../functions/mailbox/webhook';
import type { SyncMessage } from '../../functions/queue/messages';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { LocalFileKeyProvider } from '../../functions/security/local-key-provider';
import { DynamoAuditLog } from '../../functions/store/audit';
import { DynamoInbox } from '../../functions/store/inbox';
import { DynamoStateStore } from '../../functions/store/state';
import type { EngineDeps } from '../../functions/sync/context';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { deleteDueMembers } from '../../functions/sync/grace';
import { createSyncWorker, parseSyncMessage } from '../../functions/sync/worker';
import { sweepInbox } from '../../functions/queue/sweep';
import { localDigestJobDeps, localDigestPaths } from '../../functions/audit/local';
import { runAuditDigest } from '../../functions/audit/run';
import { storedAuditChainKey } from '../../functions/security/audit-chain-key';
import { DynamoCallbackIpList } from '../../functions/store/callback-ip-list';
import { createCallbackSourceCheck } from '../../functions/wecom/callback-source';
import { refreshCallbackIps, wecomCallbackIpSource } from '../../functions/wecom/callback-ips-refresh';
import { WecomApiClient } from '../../functions/wecom/api';
import { createConsole } from '../console/index';
import { localTarget } from '../cli/target';
import { toApiGatewayEvent, readBody, writeResult } from './apigw';
import { startDynalite, type LocalDynamo } from './dynalite';
import { LocalFifoQueue } from './queue';
import { createGraphSim, type GraphSim } from './sim/graph';
import { createWecomSim, type WecomSim } from './sim/wecom';
import { loadCredentials, type GraphMode, type LocalCredentials, type WecomMode } from './credentials';
import { adminToken, adminTokenFile, hasAdminToken, lockDown, notLocal } from './surface';

export { LocalConfigError, type LocalCredentials } from './credentials';

export interface LocalStackOptions {
  /** 0 = a free port. Default: PORT env or 3000. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1; set HOST=0.0.0.0 to let a real WeCom reach it through a tunnel. */
  host?: string;
  /** Where the stack keeps its data. Default .data under the current directory. */
  dataDir?: string;
  /** Keep DynamoDB on disk (default true). Tests pass false for an in-memory stack. */
  persist?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Print lines for the operator (default: console.log). */
  print?: (line: string) => void;
  /** Runs of the grace-period deleter (ms; default 60 s; 0 = off). */
  graceIntervalMs?: number;
  /** Runs of the audit digest signer (ms; default 1 h; 0 = off). */
  auditDigestIntervalMs?: number;
  /** Runs of the inbox sweep (ms; default 60 s; 0 = off). It also runs once at start. */
  sweepIntervalMs?: number;
  /** Accept and queue events, but do not process them (LOCAL_QUEUE_PAUSED=1): to inspect the queue. */
  paused?: boolean;
  /** Runs of the mailbox feed upkeep: renewal when due, delta catch-up (ms; default 15 min with push, 1 min with the delta feed; 0 = off). */
  subscriptionIntervalMs?: number;
  now?: () => Date;
}

export interface LocalStack {
  port: number;
  baseUrl: string;
  callbackUrl: string;
  dataDir: string;
  credentials: LocalCredentials;
  /** Which side is simulated. */
  simulated: { wecom: boolean; graph: boolean };
  /** WeCom: simulated | callback-only (real callback keys, simulated API) | real; Graph: simulated | real. */
  modes: { wecom: WecomMode; graph: GraphMode };
  /** Credentials taken from the environment / .env: never printed. */
  fromEnv: Array<keyof LocalCredentials>;
  /** The operator endpoints' token (also in <dataDir>/admin-token, 0600). */
  adminToken: string;
  wecomSim?: WecomSim;
  graphSim?: GraphSim;
  queue: LocalFifoQueue;
  dynamo: LocalDynamo;
  engine: EngineDeps;
  config: RuntimeConfig;
  subscription?: PushChannelStatus;
  /** A one-time sign-in link to the operator console (/console). */
  consoleLoginUrl(): string;
  /** Wait until the queue is empty and the simulators have delivered everything. */
  settle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A WeCom-style EncodingAESKey: 43 characters that, with '=', are the base64 of the 32-byte
 * AES key. Letters and digits only, as WeCom's admin console accepts (it rejects + and /).
 */
/** Read KEY=VALUE lines of a .env file into a copy of env (existing variables win). */
export function withDotEnv(env: NodeJS.ProcessEnv, path = '.env'): NodeJS.ProcessEnv {
  if (!existsSync(path)) return env;
  // Node's own dotenv parser (quotes, comments, multi-line values); the environment wins over the file.
  return { ...parseEnv(readFileSync(path, 'utf8')), ...env };
}

const LAMBDA_CONTEXT = { functionName: 'local', awsRequestId: 'local', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const env = opts.env ?? process.env;
  const print = opts.print ?? ((line: string) => console.log(line));
  const now = opts.now ?? (() => new Date());
  const dataDir = resolve(opts.dataDir ?? '.data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  lockDown(dataDir);
  // A partly configured side stops here, naming what is missing (LocalConfigError).
  const { creds, modes, fromEnv } = loadCredentials(env, dataDir);
  const realWecom = modes.wecom === 'real';
  const realGraph = modes.graph === 'real';
  const admin = adminToken(dataDir);

  const port = opts.port ?? Number(env.PORT ?? 3000);
  const host = opts.host ?? env.HOST ?? '127.0.0.1';

  // The server must listen before anything can know its URL (callback URL, sim mount points).
  const routes: { handle?: (req: IncomingMessage, res: ServerResponse) => Promise<void> } = {};
  const server: Server = createServer((req, res) => {
    if (!routes.handle) return void res.writeHead(503).end('starting');
    routes.handle(req, res).catch((err: unknown) => {
      print(`local: request failed: ${(err as Error).name}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error');
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  const boundPort = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${boundPort}`;
  const callbackUrl = `${baseUrl}/wecom/callback`;

  const config = parseRuntimeConfig({
    provider: 'graph',
    mailDomain: env.MAIL_DOMAIN ?? 'example.com',
    ...(env.SYNC_CONFIG ? JSON.parse(env.SYNC_CONFIG) : {}),
    wecom: {
      ...(env.SYNC_CONFIG ? JSON.parse(env.SYNC_CONFIG).wecom : {}),
      apiBase: realWecom ? (env.WECOM_API_BASE ?? 'https://qyapi.weixin.qq.com') : `${baseUrl}/_sim/wecom`,
    },
    graph: {
      ...(env.SYNC_CONFIG ? JSON.parse(env.SYNC_CONFIG).graph : {}),
      ...(realGraph ? {} : { apiBase: `${baseUrl}/_sim/graph`, tokenUrl: `${baseUrl}/_sim/graph/${creds.tenantId}/oauth2/v2.0/token` }),
      notificationUrl: env.GRAPH_NOTIFICATION_URL ?? `${baseUrl}/mailbox/events/graph`,
    },
  });

  const provider = await loadMailboxProvider(config.provider);

  const dynamo = await startDynalite(opts.persist === false ? {} : { path: join(dataDir, 'dynamodb') });
  const { client, tables } = dynamo;
  const keys = new LocalFileKeyProvider(join(dataDir, 'master.key'));
  const cipher = new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, client, tables.state) });

  // The simulated directories live under .data/sims too: a restart (or kill -9) keeps them.
  const simDir = opts.persist === false ? undefined : join(dataDir, 'sims');
  const wecomSim = realWecom
    ? undefined
    : createWecomSim({
        persistDir: simDir,
        corpId: creds.corpId,
        contactsSecret: creds.contactsSecret,
        appSecret: creds.appSecret,
        callback: { url: callbackUrl, token: creds.token, encodingAESKey: creds.encodingAESKey },
        // The demo: an edit in the simulated console reaches the callback at once, as in WeCom.
        deliver: 'immediate',
      });
  const graphSim = realGraph
    ? undefined
    : createGraphSim({ tenantId: creds.tenantId, clientId: creds.clientId, clientSecret: creds.clientSecret, persistDir: simDir, cloud: config.graph.cloud });

  const wecom = new WecomApiClient({
    apiBase: config.wecom.apiBase,
    callsPerMinute: config.wecom.callsPerMinute,
    corpId: creds.corpId,
    contactsSecret: creds.contactsSecret,
    appSecret: creds.appSecret,
  });
  // The queue, its dedupe window and its dead letters live in the embedded DynamoDB: an event
  // is on disk before its callback is answered, and a restart after kill -9 picks up where it
  // stopped (in-flight messages again after their visibility timeout).
  const visibilitySeconds = Number(env.LOCAL_QUEUE_VISIBILITY_SECONDS ?? 30);
  const queue = await LocalFifoQueue.open({ client, maxReceiveCount: 5, retryDelayMs: 500, visibilityTimeoutMs: (visibilitySeconds > 0 ? visibilitySeconds : 30) * 1000 });
  // The provider's adapter, and its change feed (push channel upkeep and/or the delta cursor).
  const mailbox = provider.create(
    config,
    { ...creds },
    { now, feed: { cursor: stateFeedCursor(new DynamoStateStore(client, tables.state), provider.name, now), enqueue: (m) => queue.enqueue(m) } },
  );
  const inbox = new DynamoInbox(client, tables.inbox);
  // Audit links are HMACs under a key only this stack (via the local master key) can unwrap.
  const chain = storedAuditChainKey(keys, client, tables.state);
  const audit = new DynamoAuditLog(client, tables.audit, { chain });
  const digestEvery = opts.auditDigestIntervalMs ?? 3_600_000;
  const digestJob = localDigestJobDeps({ dataDir, audit, chain: storedAuditChainKey(keys, client, tables.state, { create: false }), intervalSeconds: Math.max(60, Math.round(digestEvery / 1000)), now });
  const counters: Record<string, number> = {};
  const engine: EngineDeps = {
    wecom,
    mailbox: mailbox.directory,
    state: new DynamoStateStore(client, tables.state),
    audit,
    cipher,
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 60_000 }),
    config,
    now,
    metrics: { count: (name, n = 1) => void (counters[name] = (counters[name] ?? 0) + n) },
    stateTable: tables.state,
    enqueue: (msgs) => queue.enqueue(msgs),
    addressKey: (email) => addressKey(creds.webhookSecret, email),
    onSubscriptionLifecycle: async () => void (await renewSubscription()),
  };
  const worker = createSyncWorker({
    engineDeps: async () => engine,
    maxReceiveCount: 5,
    deadLetters: queue,
  });
  queue.setConsumer(worker);

  // WeCom's published callback sources (getcallbackip), refreshed hourly into one inbox item.
  // Enforced against the simulated WeCom only: behind a tunnel (callback-only / real WeCom)
  // every caller looks like the tunnel's local end, so the check would refuse WeCom itself.
  const callbackIps = new DynamoCallbackIpList(client, tables.inbox);
  const refreshIps = () =>
    refreshCallbackIps({
      source: wecomCallbackIpSource({ apiBase: config.wecom.apiBase, corpId: creds.corpId, secrets: [creds.appSecret, creds.contactsSecret] }),
      store: callbackIps,
    }).catch((err: Error) => print(`local: WeCom callback IP refresh failed: ${err.name}`));
  const sourceCheck = modes.wecom === 'simulated' ? createCallbackSourceCheck({ store: callbackIps, mode: 'enforce', maxAgeMs: 24 * 3_600_000 }) : undefined;
  const callback = createWecomCallbackHandler({
    keys: { corpId: creds.corpId, token: creds.token, encodingAESKey: creds.encodingAESKey },
    inbox,
    queue,
    replayWindowSeconds: config.wecom.replayWindowSeconds,
    ...(sourceCheck ? { sourceCheck } : {}),
  });
  const mailboxEvents = createMailboxEventsHandler({
    inbox,
    queue,
    provider: config.provider,
    clientState: creds.clientState,
    webhookSecret: creds.webhookSecret,
  });

  let subscription: PushChannelStatus | undefined;
  let lastGraceRun: unknown;
  const renewSubscription = async () => {
    const r = await mailbox.feed.upkeep();
    if (r.subscription) subscription = r.subscription;
    return r;
  };

  const sendJson = (res: ServerResponse, status: number, value: unknown) =>
    void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));

  // The operator console (bin/console): the CLI's own target on this stack, behind the admin token.
  const consoleApp = createConsole({ target: () => localTarget({ dataDir, env }), token: admin });

  routes.handle = async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (path === '/healthz') return sendJson(res, 200, { ok: true });
    const isConsole = path === '/console' || path.startsWith('/console/');
    if (path.startsWith('/_sim/') || path.startsWith('/_local/') || isConsole) {
      const refused = notLocal(req);
      if (refused) return sendJson(res, 403, { error: refused });
    }
    if (isConsole) return consoleApp.handle(req, res);
    // The simulators get the path after their prefix WITH the query string (tokens, $filter …).
    // A side that runs with real credentials has no simulator mounted at all.
    if (path.startsWith('/_sim/wecom/') && wecomSim) return wecomSim.handle(req, res, (req.url ?? '/').slice('/_sim/wecom'.length));
    if (path.startsWith('/_sim/graph/') && graphSim) return graphSim.handle(req, res, (req.url ?? '/').slice('/_sim/graph'.length));
    if (path === '/wecom/callback' && (req.method === 'GET' || req.method === 'POST')) {
      const body = await readBody(req, 256 * 1024);
      if (body === 'too-large') return void res.writeHead(413).end('too large');
      return writeResult(res, await callback(toApiGatewayEvent(req, body, `${req.method} /wecom/callback`), LAMBDA_CONTEXT));
    }
    if (/^\/mailbox\/events\/[a-z]+$/.test(path) && req.method === 'POST') {
      const body = await readBody(req, 1024 * 1024);
      if (body === 'too-large') return void res.writeHead(413).end('too large');
      return writeResult(res, await mailboxEvents(toApiGatewayEvent(req, body, 'POST /mailbox/events/{provider}'), LAMBDA_CONTEXT));
    }
    if (path.startsWith('/_local/')) {
      // Operator endpoints: a local caller (checked above) holding the admin token.
      if (!hasAdminToken(req, admin)) return sendJson(res, 401, { error: 'admin token required (Authorization: Bearer <.data/admin-token>)' });
      if (path === '/_local/status' && req.method === 'GET') {
        return sendJson(res, 200, {
          queue: { depth: queue.depth, deadLetters: queue.deadLetters.length },
          simulated: { wecom: !realWecom, graph: !realGraph },
          subscription: subscription ? { id: subscription.subscriptionId, expiresAt: subscription.expiresAt } : null,
          lastGraceRun: lastGraceRun ?? null,
          metrics: counters,
        });
      }
      if (path === '/_local/dlq' && req.method === 'GET') {
        return sendJson(
          res,
          200,
          queue.deadLetters.map((d) => ({
            id: d.messageId,
            eventId: d.message.eventId,
            subject: d.message.subject,
            source: d.message.source,
            hint: d.message.hint ?? null,
            reason: d.reason,
            receiveCount: d.receiveCount,
          })),
        );
      }
      if (path === '/_local/dlq/redrive' && req.method === 'POST') {
        const raw = await readBody(req, 64 * 1024);
        if (raw === 'too-large') return sendJson(res, 413, { error: 'body too large' });
        const body = raw.length === 0 ? {} : parseJson(raw.toString('utf8'));
        if (!body || typeof body !== 'object' || Array.isArray(body)) return sendJson(res, 400, { error: 'body must be {} or {"id": "<messageId or eventId>"}' });
        const id = (body as { id?: unknown }).id;
        if (id !== undefined && typeof id !== 'string') return sendJson(res, 400, { error: 'id must be a string' });
        return sendJson(res, 200, { redriven: await queue.redrive(id) });
      }
      if (path === '/_local/enqueue' && req.method === 'POST') {
        const raw = await readBody(req, 1024 * 1024);
        if (raw === 'too-large') return sendJson(res, 413, { error: 'body too large' });
        const body = parseJson(raw.toString('utf8'));
        if (!Array.isArray(body)) return sendJson(res, 400, { error: 'body must be a JSON array of sync messages' });
        const msgs: SyncMessage[] = [];
        for (const [i, item] of body.entries()) {
          const msg = parseSyncMessage(JSON.stringify(item));
          if (!msg) return sendJson(res, 400, { error: `item ${i} is not a sync message (v: 1, subject, source, eventId, operator, receivedAt)` });
          msgs.push(msg);
        }
        await queue.enqueue(msgs);
        return sendJson(res, 202, { enqueued: msgs.length });
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  };

  // Events an earlier run accepted but never got onto the queue (killed in between): queue them now.
  const sweep = (olderThanMs?: number) =>
    sweepInbox({ inbox, queue, now, ...(olderThanMs !== undefined ? { olderThanMs } : {}) }).then((r) => {
      if (r.found) print(`local: inbox sweep queued ${r.requeued} event(s) left pending${r.failed ? `, ${r.failed} failed (retried later)` : ''}`);
      return r;
    });
  await sweep(0);
  // The simulator is served by this very server: only now can the list be fetched from it.
  if (modes.wecom === 'simulated') await refreshIps();
  const paused = opts.paused ?? env.LOCAL_QUEUE_PAUSED === '1';
  if (!paused) queue.start();
  try {
    await renewSubscription();
  } catch (err) {
    print(`local: could not create the Graph subscription (${(err as Error).name}); mailbox notifications are off until the next renewal`);
  }

  const timers: NodeJS.Timeout[] = [];
  const graceEvery = opts.graceIntervalMs ?? 60_000;
  if (graceEvery > 0) {
    timers.push(
      setInterval(() => {
        deleteDueMembers(engine)
          .then((r) => void (lastGraceRun = { at: now().toISOString(), ...r }))
          .catch((err: Error) => print(`local: grace deleter failed: ${err.name}`));
      }, graceEvery).unref(),
    );
  }
  if (digestEvery > 0) {
    // Signed digests of every chain head: what makes a removed or rewritten trail visible.
    timers.push(setInterval(() => void runAuditDigest(digestJob).catch((err: Error) => print(`local: audit digest failed: ${err.name}`)), digestEvery).unref());
  }
  if (modes.wecom === 'simulated') timers.push(setInterval(() => void refreshIps(), 3_600_000).unref());
  const sweepEvery = opts.sweepIntervalMs ?? 60_000;
  if (sweepEvery > 0) timers.push(setInterval(() => void sweep().catch((err: Error) => print(`local: inbox sweep failed: ${err.name}`)), sweepEvery).unref());
  // The feed's upkeep: renewal (when due) and the delta catch-up; with the delta feed (no push)
  // this timer IS the mailbox feed, so every minute.
  const renewEvery = opts.subscriptionIntervalMs ?? (mailbox.feed.kind === 'push' ? 15 * 60_000 : 60_000);
  if (renewEvery > 0) timers.push(setInterval(() => void renewSubscription().catch(() => undefined), renewEvery).unref());

  // What the CLI needs to find this stack (no secrets: those stay in demo-credentials.json).
  const stackFile = join(dataDir, 'local-stack.json');
  writeFileSync(
    stackFile,
    JSON.stringify(
      {
        pid: process.pid,
        port: boundPort,
        baseUrl,
        dynamoEndpoint: dynamo.endpoint,
        tables,
        keyFile: join(dataDir, 'master.key'),
        wecomApiBase: config.wecom.apiBase,
        graphApiBase: config.graph.apiBase ?? null,
        graphTokenUrl: config.graph.tokenUrl ?? null,
        credentialsFile: join(dataDir, 'demo-credentials.json'),
        adminTokenFile: adminTokenFile(dataDir),
        wecomCorpId: creds.corpId,
        auditDigests: { ...localDigestPaths(dataDir), intervalSeconds: Math.max(60, Math.round(digestEvery / 1000)) },
        modes,
        reportsDir: join(dataDir, 'reports'),
        simulated: { wecom: !realWecom, graph: !realGraph },
        // The effective runtime config (no secrets), so the CLI runs with the same profile.
        config,
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  chmodSync(stackFile, 0o600);

  return {
    port: boundPort,
    baseUrl,
    callbackUrl,
    dataDir,
    credentials: creds,
    simulated: { wecom: !realWecom, graph: !realGraph },
    modes,
    fromEnv,
    adminToken: admin,
    wecomSim,
    graphSim,
    queue,
    dynamo,
    engine,
    config,
    subscription,
    settle: async (timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      // Callbacks and notifications can enqueue work, and work can trigger notifications:
      // loop until a full pass finds nothing moving.
      for (let pass = 0; pass < 20 && Date.now() < deadline; pass++) {
        await wecomSim?.flushCallbacks();
        await graphSim?.flushNotifications();
        const before = queue.depth;
        await queue.drain(Math.max(1, deadline - Date.now()));
        await wecomSim?.flushCallbacks();
        await graphSim?.flushNotifications();
        if (before === 0 && queue.depth === 0) return;
      }
    },
    consoleLoginUrl: () => consoleApp.loginUrl(baseUrl),
    close: async () => {
      for (const t of timers) clearInterval(t);
      await consoleApp.close();
      await queue.close();
      await new Promise<void>((ok) => server.close(() => ok()));
      server.closeAllConnections?.();
      await dynamo.close();
    },
  };
}
