/**
 * The local stack: the whole product in one process, with no AWS account and no
 * credentials. The same handlers that deploy to Lambda run here behind a node:http server
 * that builds API Gateway v2 events; DynamoDB is dynalite (persisted under .data/dynamodb),
 * the queue is an in-process FIFO with SQS semantics, field encryption uses a local key
 * file, and WeCom and the mailbox system are loopback simulators served on the same port under
 * /_sim/… — unless real credentials are configured, in which case the real APIs are used.
 *
 * The mailbox system is SYNC_CONFIG's `provider` (default graph): graph, google and exmail run
 * simulated (Graph at /_sim/graph, Google Workspace at /_sim/google, Tencent Exmail at
 * /_sim/exmail) or real with their credential variables (credentials.ts); ldap has no
 * simulator and runs against a real directory only.
 *
 * Routes:
 *   GET|POST /wecom/callback              WeCom callback (verification + events)
 *   POST     /mailbox/events/graph        Graph change / lifecycle notifications
 *   POST     /mailbox/events/google       Google users.watch channel notifications
 *   POST     /mailbox/events/webhook      generic signed mailbox webhook
 *   GET      /healthz                     liveness
 *   *        /_sim/wecom/…  /_sim/graph/… /_sim/google/… /_sim/exmail/…
 *                                         the simulators (when simulated; the mailbox one of the provider only)
 *   GET      /_local/status, /_local/dlq; POST /_local/dlq/redrive, /_local/enqueue
 *            operator endpoints used by the CLI (loopback only; see ADMIN-CONTRACT.md)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseEnv } from 'node:util';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Context } from 'aws-lambda';
import { ConfigError, parseRuntimeConfig, type MailboxProviderName, type RuntimeConfig } from '../../functions/config/runtime';
import { createWecomCallbackHandler } from '../../functions/handlers/wecom-callback';
import { createMailboxEventsHandler } from '../../functions/handlers/mailbox-events';
import { stateFeedCursor, stateKnownIds } from '../../functions/mailbox/feed-cursor';
import type { FeedUpkeepResult, MailboxProvider, PushChannelStatus } from '../../functions/mailbox/provider';
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
import { createExmailSim, type ExmailSim } from './sim/exmail';
import { createGoogleSim, type GoogleSim } from './sim/google';
import { createGraphSim, type GraphSim } from './sim/graph';
import { createWecomSim, type WecomSim } from './sim/wecom';
import { DEFAULT_LOCAL_PROVIDER, LocalConfigError, loadCredentials, localMailboxSecret, type LocalCredentials, type LocalModes, type MailboxMode } from './credentials';
import { adminToken, adminTokenFile, hasAdminToken, lockDown, notLocal } from './surface';

export { LocalConfigError, type LocalCredentials, type MailboxMode } from './credentials';

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
  /** Runs of the mailbox feed upkeep: renewal when due, delta catch-up, log poll (ms; default 15 min with push, 1 min with a delta or polled feed; 0 = off). */
  subscriptionIntervalMs?: number;
  now?: () => Date;
}

export interface LocalStack {
  port: number;
  baseUrl: string;
  callbackUrl: string;
  dataDir: string;
  credentials: LocalCredentials;
  /** Which side is simulated (`graph`: the mailbox side, whatever the provider; its name from when Graph was the only one). */
  simulated: { wecom: boolean; graph: boolean };
  /**
   * WeCom: simulated | callback-only (real callback keys, simulated API) | real; mailbox (the
   * configured provider): simulated | real; `graph` = `mailbox`, kept for existing callers.
   */
  modes: LocalModes;
  /** The mailbox side: the provider (SYNC_CONFIG.provider, default graph), its mode, and its simulator's URL when simulated. */
  mailbox: { provider: MailboxProviderName; title: string; mode: MailboxMode; simUrl?: string };
  /** Credentials taken from the environment / .env: never printed. */
  fromEnv: Array<keyof LocalCredentials>;
  /** The operator endpoints' token (also in <dataDir>/admin-token, 0600). */
  adminToken: string;
  wecomSim?: WecomSim;
  /** The mailbox simulator of the configured provider (at most one of these is set). */
  graphSim?: GraphSim;
  googleSim?: GoogleSim;
  exmailSim?: ExmailSim;
  queue: LocalFifoQueue;
  dynamo: LocalDynamo;
  engine: EngineDeps;
  config: RuntimeConfig;
  subscription?: PushChannelStatus;
  /** Run the mailbox feed's upkeep now (what the interval runs: push renewal, delta catch-up, log poll). */
  upkeep(): Promise<FeedUpkeepResult>;
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

/**
 * The banner's mailbox line: the provider, its mode and where its simulator answers, e.g.
 * "mailbox (Google Workspace): simulated at http://127.0.0.1:3000/_sim/google". No secrets.
 */
export function describeMailbox(stack: Pick<LocalStack, 'mailbox'>): string {
  const m = stack.mailbox;
  const title = m.title.replace(/ \(.*\)$/, '');
  const what = m.mode === 'simulated' ? `simulated at ${m.simUrl}` : 'REAL (credentials from the environment)';
  return `mailbox (${title}): ${what}`;
}

const LAMBDA_CONTEXT = { functionName: 'local', awsRequestId: 'local', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const env = opts.env ?? process.env;
  const print = opts.print ?? ((line: string) => console.log(line));
  const now = opts.now ?? (() => new Date());
  const dataDir = resolve(opts.dataDir ?? '.data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  lockDown(dataDir);
  // SYNC_CONFIG picks the mailbox provider (default graph); checked before anything starts.
  let sync: Record<string, unknown> = {};
  if (env.SYNC_CONFIG) {
    try {
      sync = JSON.parse(env.SYNC_CONFIG) as Record<string, unknown>;
    } catch {
      throw new LocalConfigError('SYNC_CONFIG is not valid JSON');
    }
    if (!sync || typeof sync !== 'object' || Array.isArray(sync)) throw new LocalConfigError('SYNC_CONFIG must be a JSON object');
  }
  const block = (name: string) => (sync[name] && typeof sync[name] === 'object' ? (sync[name] as Record<string, unknown>) : {});
  const requested = typeof sync.provider === 'string' ? sync.provider : DEFAULT_LOCAL_PROVIDER;
  let provider: MailboxProvider;
  try {
    provider = await loadMailboxProvider(requested);
  } catch (err) {
    if (err instanceof ConfigError) throw new LocalConfigError(`SYNC_CONFIG ${err.message}`);
    throw err;
  }
  const providerName = requested as MailboxProviderName; // an implemented provider's name: the registry said so
  const mailDomain = typeof sync.mailDomain === 'string' ? sync.mailDomain : (env.MAIL_DOMAIN ?? 'example.com');
  // A partly configured side stops here, naming what is missing (LocalConfigError).
  const { creds, modes, fromEnv } = loadCredentials(env, dataDir, { provider: providerName, ldap: block('ldap'), mailDomain });
  const realWecom = modes.wecom === 'real';
  const realMailbox = modes.mailbox === 'real';
  const simulated = (name: MailboxProviderName) => providerName === name && !realMailbox;
  const mailboxSecret = localMailboxSecret(providerName, creds);
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

  let config: RuntimeConfig;
  try {
    config = parseRuntimeConfig({
      provider: DEFAULT_LOCAL_PROVIDER,
      mailDomain: env.MAIL_DOMAIN ?? 'example.com',
      ...sync,
      wecom: {
        ...block('wecom'),
        apiBase: realWecom ? (env.WECOM_API_BASE ?? 'https://qyapi.weixin.qq.com') : `${baseUrl}/_sim/wecom`,
      },
      graph: {
        ...block('graph'),
        ...(simulated('graph') ? { apiBase: `${baseUrl}/_sim/graph`, tokenUrl: `${baseUrl}/_sim/graph/${creds.tenantId}/oauth2/v2.0/token` } : {}),
        notificationUrl: env.GRAPH_NOTIFICATION_URL ?? `${baseUrl}/mailbox/events/graph`,
      },
      google: {
        ...block('google'),
        ...(simulated('google') ? { apiBase: `${baseUrl}/_sim/google`, tokenUrl: `${baseUrl}/_sim/google/token` } : {}),
        // Real Google must reach this URL over HTTPS (a tunnel): GOOGLE_NOTIFICATION_URL or SYNC_CONFIG.google.notificationUrl.
        notificationUrl: env.GOOGLE_NOTIFICATION_URL ?? (simulated('google') ? undefined : block('google').notificationUrl) ?? `${baseUrl}/mailbox/events/google`,
      },
      exmail: {
        ...block('exmail'),
        ...(simulated('exmail') ? { apiBase: `${baseUrl}/_sim/exmail` } : {}),
      },
    });
  } catch (err) {
    // Nothing else has started yet: the server goes, the problem is named (never a value).
    await new Promise<void>((ok) => server.close(() => ok()));
    if (err instanceof ConfigError) throw new LocalConfigError(`SYNC_CONFIG: ${err.message}`);
    throw err;
  }

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
  const graphSim = simulated('graph')
    ? createGraphSim({ tenantId: creds.tenantId, clientId: creds.clientId, clientSecret: creds.clientSecret, persistDir: simDir, cloud: config.graph.cloud })
    : undefined;
  // Google: the simulator trusts the demo service account's public key; the adapter signs with its private half.
  const googleSim = simulated('google')
    ? createGoogleSim({
        clientEmail: creds.google!.clientEmail,
        publicKey: creds.google!.publicKey!,
        adminEmail: creds.google!.adminEmail,
        domains: [config.mailDomain],
        persistDir: simDir,
      })
    : undefined;
  const exmailSim = simulated('exmail')
    ? createExmailSim({ corpId: creds.exmail!.corpId, contactsSecret: creds.exmail!.contactsSecret, logSecret: creds.exmail!.logSecret, domains: [config.mailDomain], persistDir: simDir })
    : undefined;
  // Only the configured provider's simulator exists (and none when it runs real).
  const simMount = graphSim || googleSim || exmailSim ? `/_sim/${providerName}` : undefined;

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
  // The provider's adapter, and its change feed (push channel upkeep and/or the delta cursor;
  // for a polling feed also the ids we know, so deletions are found).
  const feedState = new DynamoStateStore(client, tables.state);
  const mailbox = provider.create(
    config,
    mailboxSecret,
    { now, feed: { cursor: stateFeedCursor(feedState, provider.name, now), enqueue: (m) => queue.enqueue(m), known: stateKnownIds(feedState, provider.name) } },
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
    // The secret the system echoes in each notification: Graph's clientState, Google's channel token.
    clientState: mailboxSecret.clientState ?? '',
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

  /**
   * The demo's stand-in for the provider's own admin console (Graph's demo PATCHes through its
   * simulator's API; Google's API wants a signed JWT and Exmail follows console edits through
   * its operation log, so neither is a curl away):
   *   GET  /_sim/google|exmail/_console/users/<address>   the stored account
   *   POST /_sim/google|exmail/_console/users/<address>   {"enabled": false} (or true)
   * An edit here is an administrator's edit: Google pushes it on the users.watch channels,
   * Exmail logs it for the feed (polled every minute). Local callers only, like every /_sim route.
   */
  const simConsole = async (req: IncomingMessage, res: ServerResponse, address: string) => {
    const g = googleSim?.users.byPrimaryEmail(address);
    const x = exmailSim?.users.get(address.toLowerCase());
    if (!g && !x) return sendJson(res, 404, { error: `no account ${address} in the simulator` });
    if (req.method === 'GET') return sendJson(res, 200, g ?? x);
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'GET or POST' });
    const raw = await readBody(req, 64 * 1024);
    const body = raw === 'too-large' ? undefined : parseJson(raw.toString('utf8'));
    const enabled = (body as { enabled?: unknown } | undefined)?.enabled;
    if (typeof enabled !== 'boolean') return sendJson(res, 400, { error: 'body must be {"enabled": true|false}' });
    if (g) googleSim!.adminUpdate(g.id, (u) => void (u.suspended = !enabled));
    else if (enabled) exmailSim!.console.enable(x!.userid);
    else exmailSim!.console.disable(x!.userid);
    return sendJson(res, 200, { address, enabled });
  };

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
    const adminConsole = /^\/_sim\/(google|exmail)\/_console\/users\/([^/]+)$/.exec(path);
    if (adminConsole && (googleSim || exmailSim)) return simConsole(req, res, decodeURIComponent(adminConsole[2]!));
    if (path.startsWith('/_sim/google/') && googleSim) return googleSim.handle(req, res, (req.url ?? '/').slice('/_sim/google'.length));
    if (path.startsWith('/_sim/exmail/') && exmailSim) return exmailSim.handle(req, res, (req.url ?? '/').slice('/_sim/exmail'.length));
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
          simulated: { wecom: !realWecom, graph: !realMailbox, mailbox: !realMailbox },
          provider: providerName,
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
    print(`local: the ${provider.title} feed upkeep failed (${(err as Error).name}); mailbox changes are not followed until its next run`);
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
  // The feed's upkeep: renewal (when due) and the delta catch-up / log poll; with a delta or
  // polled feed (no push: Exmail's operation log, LDAP) this timer IS the mailbox feed, so every minute.
  const renewEvery = opts.subscriptionIntervalMs ?? (mailbox.feed.kind === 'push' ? 15 * 60_000 : 60_000);
  if (renewEvery > 0) timers.push(setInterval(() => void renewSubscription().catch(() => undefined), renewEvery).unref());

  // What the CLI needs to find this stack (no secrets: those stay in demo-credentials.json).
  // Written whole to a temporary file and renamed over the old one: a reader (the CLI, a test
  // polling for the restarted stack) never sees half a file.
  const stackFile = join(dataDir, 'local-stack.json');
  const stackFileTmp = `${stackFile}.${process.pid}.tmp`;
  writeFileSync(
    stackFileTmp,
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
        // `graph`: the mailbox side, whatever the provider (the CLI reads that side's credentials
        // from the environment when false); `mailbox` says the same under its own name.
        simulated: { wecom: !realWecom, graph: !realMailbox, mailbox: !realMailbox },
        mailbox: { provider: providerName, mode: modes.mailbox, simUrl: simMount ? `${baseUrl}${simMount}` : null },
        // The effective runtime config (no secrets), so the CLI runs with the same profile.
        config,
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  chmodSync(stackFileTmp, 0o600);
  renameSync(stackFileTmp, stackFile);

  return {
    port: boundPort,
    baseUrl,
    callbackUrl,
    dataDir,
    credentials: creds,
    simulated: { wecom: !realWecom, graph: !realMailbox },
    modes,
    mailbox: { provider: providerName, title: provider.title, mode: modes.mailbox, ...(simMount ? { simUrl: `${baseUrl}${simMount}` } : {}) },
    fromEnv,
    adminToken: admin,
    wecomSim,
    graphSim,
    googleSim,
    exmailSim,
    queue,
    dynamo,
    engine,
    config,
    subscription,
    upkeep: () => renewSubscription(),
    settle: async (timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      // Callbacks and notifications can enqueue work, and work can trigger notifications:
      // loop until a full pass finds nothing moving.
      for (let pass = 0; pass < 20 && Date.now() < deadline; pass++) {
        await wecomSim?.flushCallbacks();
        await graphSim?.flushNotifications();
        await googleSim?.flushNotifications();
        const before = queue.depth;
        await queue.drain(Math.max(1, deadline - Date.now()));
        await wecomSim?.flushCallbacks();
        await graphSim?.flushNotifications();
        await googleSim?.flushNotifications();
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
