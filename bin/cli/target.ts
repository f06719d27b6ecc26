/**
 * Where the CLI points: the local stack (default; found through `.data/local-stack.json`,
 * see bin/local/ADMIN-CONTRACT.md) or a deployed stack (`--stack NAME`: CloudFormation
 * outputs, Secrets Manager, KMS, SQS with the operator's own AWS credentials).
 *
 * Both give the same `CliTarget`, so every command is written once. Clients are built
 * lazily: `dlq list` never loads the KMS client, `audit` never fetches a WeCom secret.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { parseRuntimeConfig, type RuntimeConfig } from '../../functions/config/runtime';
import type { MailboxDirectory } from '../../functions/mailbox/directory';
import type { MailboxConnection, MailboxSecret } from '../../functions/mailbox/provider';
import { connectMailbox, loadMailboxProvider, mailboxProviderNames } from '../../functions/mailbox/providers';
import { messageGroupId } from '../../functions/queue/dedupe';
import type { SyncMessage } from '../../functions/queue/messages';
import type { AuditVerifyDeps } from '../../functions/audit/verify';
import type { DigestJobDeps } from '../../functions/audit/run';
import { LocalDigestSigner, LocalDigestStore, localDigestJobDeps, localDigestPaths, localVerifyDeps } from '../../functions/audit/local';
import { storedAuditChainKey, type AuditChainKey } from '../../functions/security/audit-chain-key';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { StoredHashKey } from '../../functions/security/hash-key';
import { LocalFileKeyProvider } from '../../functions/security/local-key-provider';
import type { KeyProvider } from '../../functions/security/ports';
import { DynamoAuditLog } from '../../functions/store/audit';
import type { AuditLog } from '../../functions/store/ports';
import type { RunStore } from '../../functions/store/run-store';
import { DynamoRunStore } from '../../functions/store/run-store-dynamo';
import { DynamoStateStore } from '../../functions/store/state';
import type { EngineDeps } from '../../functions/sync/context';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { wecomTokenProbe, type HealthDeps } from '../../functions/sync/health';
import { LocalReportSink, type ReportSink } from '../../functions/sync/report';
import { WecomApiClient } from '../../functions/wecom/api';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface DeadLetterView {
  id: string;
  eventId?: string;
  subject: string;
  source?: string;
  hint?: string | null;
  reason: string;
  receiveCount?: number;
}

export interface QueueStatus {
  depth: number;
  deadLetters: number;
  subscription?: { id: string; expiresAt: string } | null;
}

export interface CliTarget {
  kind: 'local' | 'stack';
  name: string;
  engineDeps(): Promise<EngineDeps>;
  reports(): Promise<ReportSink>;
  /** Where a reconcile keeps its scratch (the reconcile table), when the target has one; else in memory. */
  runStore?(): Promise<RunStore | undefined>;
  /** Reading the reconcile reports back (the console's Reports page): where `reports()` writes them. */
  reportArchive?(): Promise<import('../console/report-archive').ReportArchive>;
  audit(): Promise<AuditLog>;
  /**
   * The audit trail's integrity: what verification reads (raw records, the chain key — read
   * only, never created — the digests and their public key), and a digest run on demand
   * (the local key file, or kms:Sign and s3:PutObject with the operator's credentials).
   */
  auditIntegrity(): Promise<{ verify: AuditVerifyDeps; digestJob(): Promise<DigestJobDeps> }>;
  health(): Promise<HealthDeps>;
  queueStatus(): Promise<QueueStatus>;
  listDeadLetters(): Promise<DeadLetterView[]>;
  /** Returns how many went back to the work queue. */
  redrive(id?: string): Promise<number>;
  enqueue(messages: SyncMessage[]): Promise<void>;
  /** Local only: the simulated Graph's token and API base (for curl in the README). */
  local?: { graphToken(): Promise<string>; graph(): Promise<MailboxDirectory> };
  close(): Promise<void>;
}

interface Secrets {
  corpId: string;
  contactsSecret: string;
  appSecret: string;
  /** The mailbox provider's secret, as its descriptor reads it (mailbox/provider.ts). */
  mailbox: MailboxSecret;
}

const LOCAL_AWS = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

/** Shared by both targets once the pieces are known. */
function engineFrom(o: {
  config: RuntimeConfig;
  dynamo: DynamoDBClient;
  tables: { state: string; audit: string };
  keys: KeyProvider;
  secrets: Secrets;
  mailbox: MailboxConnection;
  enqueue?: (m: SyncMessage[]) => Promise<void>;
}): EngineDeps {
  const { config, secrets } = o;
  const wecom = new WecomApiClient({ apiBase: config.wecom.apiBase, callsPerMinute: config.wecom.callsPerMinute, corpId: secrets.corpId, contactsSecret: secrets.contactsSecret, appSecret: secrets.appSecret });
  return {
    wecom,
    mailbox: o.mailbox.directory,
    state: new DynamoStateStore(o.dynamo, o.tables.state),
    // The CLI appends too (approvals, reconcile, import): it may create the chain key on a fresh deployment.
    audit: new DynamoAuditLog(o.dynamo, o.tables.audit, { chain: storedAuditChainKey(o.keys, o.dynamo, o.tables.state) }),
    cipher: new EnvelopeCipher({ keys: o.keys, hashKey: new StoredHashKey(o.keys, o.dynamo, o.tables.state) }),
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 60_000 }),
    config,
    now: () => new Date(),
    stateTable: o.tables.state,
    ...(o.enqueue ? { enqueue: o.enqueue } : {}),
  };
}

/** The configured mailbox provider, built once per target (mailbox/providers.ts: the one factory). */
function mailboxOf(config: () => RuntimeConfig, secrets: () => Promise<Secrets>): () => Promise<MailboxConnection> {
  let built: Promise<MailboxConnection> | undefined;
  return () => {
    built ??= secrets().then((s) => connectMailbox(config(), s.mailbox));
    built.catch(() => (built = undefined));
    return built;
  };
}

function healthFrom(config: RuntimeConfig, s: Secrets, mailbox: MailboxConnection, extra: Partial<HealthDeps>): HealthDeps {
  return {
    wecomTokens: {
      contacts: wecomTokenProbe(config.wecom.apiBase, s.corpId, s.contactsSecret),
      app: wecomTokenProbe(config.wecom.apiBase, s.corpId, s.appSecret),
    },
    mailbox: mailbox.health(),
    now: () => new Date(),
    timeoutMs: 5_000,
    ...extra,
  };
}

// ------------------------------------------------------------------ local stack

export interface LocalStackFile {
  baseUrl: string;
  port?: number;
  dynamoEndpoint: string;
  /** `reconcile`: absent in files written by older stacks. */
  tables: { inbox: string; state: string; audit: string; reconcile?: string };
  keyFile: string;
  wecomApiBase: string;
  graphApiBase?: string | null;
  graphTokenUrl?: string | null;
  credentialsFile: string;
  /** The operator endpoints' token (0600; absent in files written by older stacks). */
  adminTokenFile?: string;
  /** The CorpID the stack's WeCom side uses (in callback-only mode, the real one from the environment). */
  wecomCorpId?: string;
  reportsDir?: string;
  /** The local audit digests (default: localDigestPaths(dataDir) of functions/audit/local.ts). */
  auditDigests?: { dir: string; signingKey: string; verifyKey: string; intervalSeconds?: number };
  simulated?: { wecom: boolean; graph: boolean };
  config?: unknown;
}

const NOT_RUNNING = 'local stack not running: start it with `npm start`';

/** KEY=VALUE lines of .env (existing variables win), like the local stack reads them. */
function withDotEnv(env: NodeJS.ProcessEnv, path: string): NodeJS.ProcessEnv {
  if (!existsSync(path)) return env;
  const out = { ...env };
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    if (out[m[1]!] === undefined) out[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

async function adminFetch(baseUrl: string, token: string, path: string, init: RequestInit = {}): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(baseUrl + path, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  } catch {
    throw new CliError(NOT_RUNNING);
  }
  if (!res.ok) throw new CliError(`local stack: ${init.method ?? 'GET'} ${path} answered ${res.status}`);
  return res.json();
}

export async function localTarget(opts: { dataDir?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliTarget> {
  const cwd = opts.cwd ?? process.cwd();
  const dataDir = resolve(cwd, opts.dataDir ?? '.data');
  const file = join(dataDir, 'local-stack.json');
  if (!existsSync(file)) throw new CliError(NOT_RUNNING);
  let stack: LocalStackFile;
  try {
    stack = JSON.parse(readFileSync(file, 'utf8')) as LocalStackFile;
  } catch {
    throw new CliError(`${file} is not valid JSON: restart the local stack`);
  }
  try {
    const res = await fetch(`${stack.baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) throw new Error();
  } catch {
    throw new CliError(NOT_RUNNING);
  }
  const env = withDotEnv(opts.env ?? process.env, join(cwd, '.env'));

  // Read when an operator endpoint is first needed: `audit`, `reconcile` … do not use one.
  let token: string | undefined;
  const adminToken = () => {
    try {
      return (token ??= readFileSync(stack.adminTokenFile ?? join(dataDir, 'admin-token'), 'utf8').trim());
    } catch {
      throw new CliError('cannot read the local stack’s admin token (.data/admin-token): run the CLI as the user who started the stack');
    }
  };
  const admin = (path: string, init?: RequestInit) => adminFetch(stack.baseUrl, adminToken(), path, init);
  const demo = JSON.parse(readFileSync(stack.credentialsFile, 'utf8')) as Record<string, string>;
  const secrets: Secrets = {
    corpId: stack.wecomCorpId ?? demo.corpId!,
    contactsSecret: demo.contactsSecret!,
    appSecret: demo.appSecret!,
    mailbox: { webhookSecret: demo.webhookSecret ?? '' },
  };
  if (stack.simulated && !stack.simulated.wecom) {
    Object.assign(secrets, { corpId: env.WECOM_CORP_ID, contactsSecret: env.WECOM_CONTACTS_SECRET, appSecret: env.WECOM_APP_SECRET });
  }
  const sync = env.SYNC_CONFIG ? (JSON.parse(env.SYNC_CONFIG) as Record<string, Record<string, unknown> | undefined>) : {};
  const config = parseRuntimeConfig(
    (stack.config as never) ?? {
      // A stack file from before `config` was written: the stack then ran the one implemented provider.
      provider: mailboxProviderNames('implemented')[0],
      mailDomain: env.MAIL_DOMAIN ?? 'example.com',
      ...sync,
      wecom: { ...(sync.wecom ?? {}), apiBase: stack.wecomApiBase },
      graph: {
        ...(sync.graph ?? {}),
        ...(stack.graphApiBase ? { apiBase: stack.graphApiBase } : {}),
        ...(stack.graphTokenUrl ? { tokenUrl: stack.graphTokenUrl } : {}),
        notificationUrl: env.GRAPH_NOTIFICATION_URL ?? `${stack.baseUrl}/mailbox/events/graph`,
      },
    },
  );
  // The provider's keys only: the demo file (simulated side) or, when that side is real, the
  // environment under the provider's own names.
  const provider = await loadMailboxProvider(config.provider);
  const realMailbox = stack.simulated !== undefined && !stack.simulated.graph;
  // Demo keys: WeCom's and Graph's at the top level, another provider's under its name (they collide with WeCom's / Graph's).
  const own = (demo as Record<string, unknown>)[config.provider];
  const providerDemo = own && typeof own === 'object' ? (own as Record<string, string>) : {};
  for (const [key, name] of Object.entries(provider.secretEnv)) {
    const value = realMailbox ? env[name] : config.provider === 'graph' ? demo[key] : providerDemo[key];
    if (value) secrets.mailbox[key] = value;
  }
  const mailbox = mailboxOf(() => config, async () => secrets);

  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: stack.dynamoEndpoint });
  const keys = new LocalFileKeyProvider(stack.keyFile);
  // Reading and verifying never creates the chain key: a fresh key would make every record look forged.
  const readChain = storedAuditChainKey(keys, dynamo, stack.tables.state, { create: false });
  const readAudit = () => new DynamoAuditLog(dynamo, stack.tables.audit, { chain: readChain });
  const digestFiles: NonNullable<LocalStackFile['auditDigests']> = stack.auditDigests ?? localDigestPaths(dataDir);
  const enqueue = async (messages: SyncMessage[]) => {
    await admin('/_local/enqueue', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(messages) });
  };
  let engine: EngineDeps | undefined;
  const status = async () => (await admin('/_local/status')) as { queue: { depth: number; deadLetters: number }; subscription?: { id: string; expiresAt: string } | null };

  return {
    kind: 'local',
    name: `local (${stack.baseUrl})`,
    engineDeps: async () => (engine ??= engineFrom({ config, dynamo, tables: stack.tables, keys, secrets, mailbox: await mailbox(), enqueue })),
    reports: async () => new LocalReportSink(stack.reportsDir ?? join(dataDir, 'reports')),
    runStore: async () => (stack.tables.reconcile ? new DynamoRunStore(dynamo, stack.tables.reconcile) : undefined),
    reportArchive: async () => new (await import('../console/report-archive')).LocalReportArchive(stack.reportsDir ?? join(dataDir, 'reports')),
    audit: async () => readAudit(),
    auditIntegrity: async () => {
      const store = new LocalDigestStore(digestFiles.dir);
      const signer = new LocalDigestSigner(digestFiles.signingKey, digestFiles.verifyKey);
      const base = { dataDir, audit: readAudit(), chain: readChain };
      return {
        verify: { ...localVerifyDeps(base), store, verifier: signer },
        digestJob: async () => ({ ...localDigestJobDeps({ ...base, ...(digestFiles.intervalSeconds ? { intervalSeconds: digestFiles.intervalSeconds } : {}) }), store, signer }),
      };
    },
    health: async () =>
      healthFrom(config, secrets, await mailbox(), {
        queueDepth: async () => {
          const s = await status();
          return { queue: s.queue.depth, deadLetters: s.queue.deadLetters };
        },
      }),
    queueStatus: async () => {
      const s = await status();
      return { depth: s.queue.depth, deadLetters: s.queue.deadLetters, subscription: s.subscription ?? null };
    },
    listDeadLetters: async () => (await admin('/_local/dlq')) as DeadLetterView[],
    redrive: async (id) => {
      const out = (await admin('/_local/dlq/redrive', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(id ? { id } : {}),
      })) as { redriven: number };
      return out.redriven;
    },
    enqueue,
    local: {
      graph: async () => (await mailbox()).directory,
      graphToken: async () => {
        // The README's curl demo against the simulated Graph: the same token request as the adapter's (cloud, scope).
        const { GraphClient } = await import('../../functions/mailbox/graph/client');
        const m = secrets.mailbox;
        const client = new GraphClient({
          tenantId: m.tenantId ?? '',
          clientId: m.clientId ?? '',
          clientSecret: m.clientSecret ?? '',
          cloud: config.graph.cloud,
          ...(config.graph.tokenUrl ? { tokenUrl: config.graph.tokenUrl } : {}),
        });
        try {
          return (await client.requestToken()).value;
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      },
    },
    close: async () => dynamo.destroy(),
  };
}

// ------------------------------------------------------------------ deployed stack

/** Stack outputs the CLI reads (names from lib/stack.ts). */
const OUT = {
  state: 'StateTableName',
  audit: 'AuditTableName',
  /** Absent on stacks deployed before the chunked reconcile. */
  reconcile: 'ReconcileTableName',
  reports: 'ReportBucketName',
  queueName: 'QueueName',
  dlqUrl: 'DeadLetterQueueUrl',
  wecomSecret: 'WecomApiSecretArn',
  mailboxSecret: 'MailboxSecretArn',
  /** Needed to open/hash personal data (reconcile, import): the personal-data key. */
  kmsKey: 'PersonalDataKeyArn',
  /** The deployed SYNC_CONFIG (non-secret). */
  syncConfig: 'SyncConfig',
  /** The audit digests: the Object Lock bucket and the signing key (kms:GetPublicKey to verify, kms:Sign to run one). */
  digestBucket: 'AuditDigestBucketName',
  digestKey: 'AuditDigestSigningKeyArn',
} as const;

export async function stackTarget(opts: { stack: string; region?: string }): Promise<CliTarget> {
  const region = opts.region ? { region: opts.region } : {};
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const cfn = new CloudFormationClient(region);
  let outputs: Record<string, string>;
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: opts.stack }));
    const s = out.Stacks?.[0];
    if (!s) throw new CliError(`stack ${opts.stack} not found`);
    outputs = Object.fromEntries((s.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot describe stack ${opts.stack}: ${(err as Error).name}`);
  } finally {
    cfn.destroy();
  }
  const need = (key: string) => {
    const v = outputs[key];
    if (!v) throw new CliError(`stack ${opts.stack} has no output ${key} (deploy a version of the stack that exports it)`);
    return v;
  };

  const { SQSClient, GetQueueUrlCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, DeleteMessageCommand, ChangeMessageVisibilityCommand } =
    await import('@aws-sdk/client-sqs');
  const sqs = new SQSClient(region);
  const dynamo = new DynamoDBClient(region);
  let queueUrl: string | undefined;
  const mainQueueUrl = async () => (queueUrl ??= (await sqs.send(new GetQueueUrlCommand({ QueueName: need(OUT.queueName) }))).QueueUrl!);
  const depth = async (url: string) =>
    Number((await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes?.ApproximateNumberOfMessages ?? 0);

  let secrets: Promise<Secrets> | undefined;
  const loadSecrets = () =>
    (secrets ??= (async () => {
      const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
      const sm = new SecretsManagerClient(region);
      const get = async (arn: string) => JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString ?? '{}') as Record<string, string>;
      const [w, m] = await Promise.all([get(need(OUT.wecomSecret)), get(need(OUT.mailboxSecret))]);
      sm.destroy();
      return { corpId: w.corpId!, contactsSecret: w.contactsSecret!, appSecret: w.appSecret!, mailbox: { ...m, webhookSecret: m.webhookSecret ?? '' } };
    })());
  const config = () => parseRuntimeConfig(JSON.parse(need(OUT.syncConfig)) as never);
  const mailbox = mailboxOf(config, loadSecrets);

  /** Receive every DLQ message once (hidden for 60 s while we look), then act on each. */
  const sweepDlq = async (act: (msg: { MessageId?: string; ReceiptHandle?: string; Body?: string; attrs: Record<string, string>; count: number }) => Promise<'keep' | 'done'>) => {
    const dlqUrl = need(OUT.dlqUrl);
    const seen = new Set<string>();
    for (let empty = 0; empty < 2; ) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlqUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 60,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      const msgs = (out.Messages ?? []).filter((m) => m.MessageId && !seen.has(m.MessageId));
      if (!msgs.length) {
        empty++;
        continue;
      }
      for (const m of msgs) {
        seen.add(m.MessageId!);
        const attrs = Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']));
        const verdict = await act({ ...m, attrs, count: Number(m.Attributes?.ApproximateReceiveCount ?? 0) });
        if (verdict === 'done') await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: m.ReceiptHandle! }));
        // Give it back at once: listing must not hide messages from the next operator.
        else await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: dlqUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 }));
      }
    }
  };
  const view = (m: { MessageId?: string; Body?: string; attrs: Record<string, string>; count: number }): DeadLetterView => {
    let msg: Partial<SyncMessage> = {};
    try {
      msg = JSON.parse(m.Body ?? '{}') as SyncMessage;
    } catch {
      /* a raw parked body: shown by id only */
    }
    return {
      id: m.MessageId!,
      ...(msg.eventId ? { eventId: msg.eventId } : {}),
      subject: msg.subject ?? '(not a sync message)',
      ...(msg.source ? { source: msg.source } : {}),
      hint: msg.hint ?? null,
      reason: m.attrs.reason ?? '',
      receiveCount: m.count,
    };
  };
  const sendToQueue = async (message: SyncMessage, redriveId: string) => {
    const { createHash } = await import('node:crypto');
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: await mainQueueUrl(),
        MessageBody: JSON.stringify(message),
        MessageGroupId: messageGroupId(message),
        // A new dedupe id: the original one may still be inside SQS's 5-minute window.
        MessageDeduplicationId: createHash('sha256').update(`${message.eventId}|${message.subject}|redrive|${redriveId}`).digest('hex'),
      }),
    );
  };

  // The chain key (read only: verification must never create it) is unwrapped at the first
  // MAC, so `status` and `audit` listings never load the KMS client; the digest outputs are
  // needed only by verification, so an older stack without them still lists its audit.
  let chainKey: Promise<AuditChainKey> | undefined;
  const chain: AuditChainKey = {
    mac: async (data) =>
      (await (chainKey ??= (async () => {
        const [{ KMSClient }, { KmsKeyProvider }] = await Promise.all([import('@aws-sdk/client-kms'), import('../../functions/security/kms-key-provider')]);
        return storedAuditChainKey(new KmsKeyProvider(new KMSClient(region), need(OUT.kmsKey)), dynamo, need(OUT.state), { create: false });
      })())).mac(data),
  };
  let auditLog: DynamoAuditLog | undefined;
  const readAudit = () => (auditLog ??= new DynamoAuditLog(dynamo, need(OUT.audit), { chain }));
  let integrityParts: Promise<{ verify: AuditVerifyDeps; job: DigestJobDeps }> | undefined;
  const integrity = () =>
    (integrityParts ??= (async () => {
      const [{ KMSClient }, { S3Client }, { KmsDigestSigner }, { S3DigestStore }] = await Promise.all([
        import('@aws-sdk/client-kms'),
        import('@aws-sdk/client-s3'),
        import('../../functions/audit/kms-signer'),
        import('../../functions/audit/s3-store'),
      ]);
      const audit = readAudit();
      const store = new S3DigestStore(new S3Client(region), need(OUT.digestBucket));
      const signer = new KmsDigestSigner(new KMSClient(region), need(OUT.digestKey));
      const retentionDays = audit.retentionDays;
      return { verify: { audit, chain, store, verifier: signer, retentionDays }, job: { audit, chain, store, signer, retentionDays } };
    })());

  let engine: Promise<EngineDeps> | undefined;
  return {
    kind: 'stack',
    name: `stack ${opts.stack}${opts.region ? ` (${opts.region})` : ''}`,
    engineDeps: () =>
      (engine ??= (async () => {
        const [{ KMSClient }, { KmsKeyProvider }] = await Promise.all([import('@aws-sdk/client-kms'), import('../../functions/security/kms-key-provider')]);
        const { SqsWorkQueue } = await import('../../functions/queue/sqs');
        const queue = new SqsWorkQueue(sqs, await mainQueueUrl());
        return engineFrom({
          config: config(),
          dynamo,
          tables: { state: need(OUT.state), audit: need(OUT.audit) },
          keys: new KmsKeyProvider(new KMSClient(region), need(OUT.kmsKey)),
          secrets: await loadSecrets(),
          mailbox: await mailbox(),
          enqueue: (m) => queue.enqueue(m),
        });
      })()),
    reports: async () => {
      const [{ S3Client }, { S3ReportSink }] = await Promise.all([import('@aws-sdk/client-s3'), import('../../functions/sync/report-s3')]);
      return new S3ReportSink(new S3Client(region), need(OUT.reports));
    },
    reportArchive: async () => new (await import('../console/report-archive')).S3ReportArchive(need(OUT.reports), opts.region),
    runStore: async () => {
      const table = outputs[OUT.reconcile];
      return table ? new DynamoRunStore(dynamo, table) : undefined;
    },
    audit: async () => readAudit(),
    auditIntegrity: async () => {
      const i = await integrity();
      return { verify: i.verify, digestJob: async () => i.job };
    },
    health: async () =>
      healthFrom(config(), await loadSecrets(), await mailbox(), {
        queueDepth: async () => ({ queue: await depth(await mainQueueUrl()), deadLetters: await depth(need(OUT.dlqUrl)) }),
      }),
    queueStatus: async () => ({ depth: await depth(await mainQueueUrl()), deadLetters: await depth(need(OUT.dlqUrl)) }),
    listDeadLetters: async () => {
      const out: DeadLetterView[] = [];
      await sweepDlq(async (m) => {
        out.push(view(m));
        return 'keep';
      });
      return out;
    },
    redrive: async (id) => {
      let n = 0;
      await sweepDlq(async (m) => {
        const v = view(m);
        if (id && v.id !== id && v.eventId !== id) return 'keep';
        if (!v.eventId) return 'keep'; // not a SyncMessage: nothing the worker could do with it
        await sendToQueue(JSON.parse(m.Body!) as SyncMessage, v.id);
        n++;
        return 'done';
      });
      return n;
    },
    enqueue: async (messages) => {
      const { SqsWorkQueue } = await import('../../functions/queue/sqs');
      await new SqsWorkQueue(sqs, await mainQueueUrl()).enqueue(messages);
    },
    close: async () => {
      sqs.destroy();
      dynamo.destroy();
    },
  };
}
