/**
 * The deployed system: HTTP API → receivers → SQS FIFO → sync worker, scheduled jobs,
 * DynamoDB (inbox / state / audit), KMS, Secrets Manager, alarms.
 *
 * KEY SEPARATION (the one design decision a reviewer should check first):
 * two customer-managed keys, both with rotation on.
 *  - `PersonalDataKey` protects personal data at rest: the state and audit tables, the
 *    field-level envelopes (mobile, telephone, … sealed by functions/security/envelope.ts,
 *    plus the wrapped keyed-hash key) and the reconcile reports.
 *  - `TransportKey` protects what the receivers must WRITE: the inbox (dedupe) table, the work
 *    queue and its DLQ, and the alarm topic. An inbox row and a queue message name a subject
 *    (`user:<userid>`) and an event kind; they carry no mobile/email.
 * The callback receiver is the function exposed to the internet. Writing to a KMS-encrypted
 * table or queue needs kms:Decrypt/GenerateDataKey on its key, so with one key the receiver
 * could decrypt personal data. With two, its role holds nothing on PersonalDataKey and no
 * access at all to the state and audit tables (asserted in test/infra/stack.test.ts).
 *
 * Every function has its own role built from explicit statements (no AWS managed policies,
 * no wildcard actions); table access to a CMK-encrypted table is granted on the key only
 * `kms:ViaService` DynamoDB/SQS/S3, and direct key use (envelopes) only with this app's
 * encryption context.
 *
 * AUDIT: append-only twice over. The allowed audit writes are PutItem (conditional, by the
 * code) and nothing else, and every function role carries an explicit Deny of UpdateItem,
 * DeleteItem, BatchWriteItem and PartiQL on the audit table and its index, so no later grant
 * can open them by mistake. Each record is linked by a HMAC under the audit chain key (a data
 * key under PersonalDataKey, encryption context purpose `audit-chain-key`), and an hourly job
 * signs a digest of every chain head with a KMS asymmetric key into an Object Lock bucket
 * (lib/audit-digest.ts): table access alone can neither forge a record nor hide a removal.
 *
 * CALLBACK SOURCE CHECK: the receiver refuses sources outside WeCom's published callback
 * ranges. The list is fetched hourly by `wecom-callback-ips`, the only function besides the
 * WeCom-calling jobs that holds the WeCom API secret, and stored as one inbox item that only it
 * may write (IAM dynamodb:LeadingKeys; every other inbox writer is explicitly denied that key).
 * The receiver only reads it, so it still holds no API secret (asserted in test/infra).
 *
 * REGIONS: partition-aware throughout (no literal ARN or service hostname); a mainland China
 * region needs the ICP-filed custom domain (lib/config.ts, lib/api-domain.ts, lib/region.ts).
 */
import { Annotations, Aws, CfnOutput, Duration, Fn, RemovalPolicy, SecretValue, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { AUDIT_CHAIN_KEY } from '../functions/security/audit-chain-key';
import { KMS_APP } from '../functions/security/envelope';
import { AUDIT_RETENTION_DAYS } from '../functions/store/audit';
import { INBOX_PENDING_INDEX } from '../functions/store/tables';
import { CALLBACK_IP_LIST_KEY } from '../functions/store/callback-ip-list';
import { DIGEST_PREFIX } from '../functions/audit/s3-store';
import { SOURCE_CHECK_METRICS } from '../functions/wecom/callback-source';
import { ApiCustomDomain } from './api-domain';
import { AuditDigestStorage } from './audit-digest';
import { type DeploymentConfig, feedSchedule, rateSeconds, toSyncConfig } from './config';
import { CALLS_MAILBOX, CALLS_WECOM, HANDLERS, RUNTIME, SIZING, SyncFunction, type HandlerName } from './functions';
import { checkRegionSupport, concreteRegion, isMainlandChinaRegion } from './region';
import { createTable, indexNames, type TableRole } from './tables';

export interface WecomMailboxSyncStackProps extends StackProps {
  config: DeploymentConfig;
  /** Repository root (functions/, package-lock.json). */
  projectRoot: string;
}

/** Actions per kind of table access. Audit is append-only: no UpdateItem, no DeleteItem. */
const TABLE_ACTIONS = {
  inboxReadWrite: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
  /** The sweep lists pending items (Query on the pending index only) and marks them; it never creates or deletes one. */
  inboxSweepMark: ['dynamodb:UpdateItem'],
  inboxSweepList: ['dynamodb:Query'],
  stateReadWrite: [
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:Query',
  ],
  stateRead: ['dynamodb:GetItem', 'dynamodb:Query'],
  auditAppend: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query'],
  auditRead: ['dynamodb:GetItem', 'dynamodb:Query'],
  /** The reconcile runs' scratch and checkpoints: overwrites (batched), reads, conditional checkpoint puts; no delete (TTL). */
  reconcileRun: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query'],
} as const;

/** Denied on the callback IP list's inbox item to every inbox writer but its refresher. */
export const CALLBACK_IP_LIST_DENIED_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] as const;

/** Denied on the audit table and its index to every function role, whatever else it is granted. */
export const AUDIT_DENIED_ACTIONS = [
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:PartiQLInsert',
  'dynamodb:PartiQLUpdate',
  'dynamodb:PartiQLDelete',
  'dynamodb:PartiQLSelect',
] as const;

/** What DynamoDB / SQS / S3 need on a caller's behalf to use a customer-managed key. */
const KEY_VIA_SERVICE_ACTIONS = ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'];

/**
 * Key policy statement for the account: explicit administrative and usage actions (no
 * `kms:*`), which also delegates usage to IAM so the function roles' statements take effect.
 * kms:PutKeyPolicy is kept so the key can never become unmanageable.
 */
const ACCOUNT_KEY_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:CreateAlias',
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:DeleteAlias',
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:EnableKey',
  'kms:EnableKeyRotation',
  'kms:Encrypt',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GetKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:ListAliases',
  'kms:ListGrants',
  'kms:ListKeyPolicies',
  'kms:ListKeyRotations',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:RetireGrant',
  'kms:RevokeGrant',
  'kms:RotateKeyOnDemand',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateAlias',
  'kms:UpdateKeyDescription',
];

/** Who may touch what. Everything not listed here is denied by omission. */
interface Access {
  /** 'rw': the receivers (record, mark). 'sweep': list pending items through their index, mark them. */
  inbox?: 'rw' | 'sweep';
  /** 'chain-key': GetItem of the audit chain key's meta item only (dynamodb:LeadingKeys). */
  state?: 'rw' | 'r' | 'chain-key';
  /**
   * 'append': PutItem + reads, and the chain key (unwrap, or generate on a fresh deployment);
   * 'read': reads (incl. the byDay index) and unwrapping the chain key, never generating it.
   */
  audit?: 'append' | 'read';
  /** Sign audit digests (kms:Sign on the signing key) and store them (the Object Lock bucket). */
  digests?: boolean;
  queueSend?: boolean;
  queueConsume?: boolean;
  dlqSend?: boolean;
  queueDepth?: boolean;
  /** Direct use of PersonalDataKey: field envelopes and the keyed-hash key. */
  envelopes?: boolean;
  /**
   * WeCom's callback source ranges (one inbox item): 'read' by the receiver's source check
   * (its inbox access already covers the GetItem), 'write' by the refresher (PutItem of that
   * one key, nothing else in the table).
   */
  callbackIps?: 'read' | 'write';
  reports?: boolean;
  /** The chunked reconcile: its scratch table, and its continuation queue (send; consumed through the event source). */
  reconcileRun?: boolean;
  secrets: Array<'wecomCallback' | 'wecomApi' | 'mailbox'>;
}

export const ACCESS: Record<HandlerName, Access> = {
  'wecom-callback': { inbox: 'rw', queueSend: true, callbackIps: 'read', secrets: ['wecomCallback'] },
  'mailbox-events': { inbox: 'rw', queueSend: true, secrets: ['mailbox'] },
  'sync-worker': {
    state: 'rw',
    audit: 'append',
    queueSend: true,
    queueConsume: true,
    dlqSend: true,
    envelopes: true,
    secrets: ['wecomApi', 'mailbox'],
  },
  reconcile: {
    state: 'rw',
    audit: 'append',
    queueSend: true,
    envelopes: true,
    reports: true,
    reconcileRun: true,
    secrets: ['wecomApi', 'mailbox'],
  },
  // Renews Graph subscriptions and runs the delta query: stores subscription/delta meta items
  // in the state table and enqueues the subjects delta reports.
  subscriptions: { state: 'rw', audit: 'append', queueSend: true, secrets: ['mailbox'] },
  'grace-deleter': {
    state: 'rw',
    audit: 'append',
    queueSend: true,
    envelopes: true,
    secrets: ['wecomApi', 'mailbox'],
  },
  health: { state: 'r', queueDepth: true, secrets: ['wecomApi', 'mailbox'] },
  // Re-enqueues what a receiver left pending: the inbox and the queue, nothing on personal data, no secret.
  'inbox-sweeper': { inbox: 'sweep', queueSend: true, secrets: [] },
  // Reads the audit trail and the chain key, signs and stores digests; writes no table.
  'audit-digest': { state: 'chain-key', audit: 'read', digests: true, secrets: [] },
  // Fetches WeCom's callback ranges (getcallbackip needs an access token: the API secret) and
  // writes them to one inbox item; no queue, no state, no personal data.
  'wecom-callback-ips': { callbackIps: 'write', secrets: ['wecomApi'] },
};

/** The schedule-driven functions: each has an errors alarm and a line on the dashboard. */
const SCHEDULED = ['reconcile', 'subscriptions', 'grace-deleter', 'health', 'inbox-sweeper', 'audit-digest', 'wecom-callback-ips'] as const satisfies readonly HandlerName[];

/** Where the functions' EMF metrics land (Powertools: namespace, and the service dimension). */
export const METRICS_NAMESPACE = 'WecomMailboxSync';
export const METRICS_SERVICE = 'wecom-mailbox-sync';

/**
 * The mailbox secret per provider: what the operator fills in (REPLACE_ME) and the one value
 * the stack can generate (a shared secret the provider echoes back). The keys are the
 * provider's own (`secretEnv` in functions/mailbox/<provider>/config.ts) plus `webhookSecret`
 * (the generic webhook route).
 */
export const MAILBOX_SECRET_TEMPLATES: Record<DeploymentConfig['provider'], [description: string, placeholders: Record<string, string>, generate: { key: string; length: number }]> = {
  graph: [
    'Mailbox provider (Microsoft Graph): tenantId, clientId, clientSecret (Entra app), clientState (Graph subscriptions), webhookSecret',
    { tenantId: 'REPLACE_ME', clientId: 'REPLACE_ME', clientSecret: 'REPLACE_ME', webhookSecret: 'REPLACE_ME' },
    // Graph echoes clientState in every notification; at most 128 characters.
    { key: 'clientState', length: 64 },
  ],
  google: [
    'Mailbox provider (Google Workspace): clientEmail, privateKey (the service account key), adminEmail (the admin it impersonates), clientState (the users.watch channel token), webhookSecret',
    { clientEmail: 'REPLACE_ME', privateKey: 'REPLACE_ME', adminEmail: 'REPLACE_ME', webhookSecret: 'REPLACE_ME' },
    // Google echoes the channel token in X-Goog-Channel-Token; at most 256 characters.
    { key: 'clientState', length: 64 },
  ],
  exmail: [
    'Mailbox provider (Tencent Exmail): corpId, contactsSecret (通讯录管理 app), logSecret (系统日志 app), webhookSecret',
    { corpId: 'REPLACE_ME', contactsSecret: 'REPLACE_ME', logSecret: 'REPLACE_ME' },
    { key: 'webhookSecret', length: 64 },
  ],
  ldap: [
    'Mailbox provider (LDAP / Active Directory): bindDn, bindPassword (the bind account), caCert (PEM of the CA that signed the directory servers’ certificates; delete the key to use the public trust store), webhookSecret',
    { bindDn: 'REPLACE_ME', bindPassword: 'REPLACE_ME', caCert: 'REPLACE_ME' },
    { key: 'webhookSecret', length: 64 },
  ],
  scim: [
    'Mailbox provider (SCIM, planned): webhookSecret',
    {},
    { key: 'webhookSecret', length: 64 },
  ],
};

export class WecomMailboxSyncStack extends Stack {
  readonly functions: Record<HandlerName, SyncFunction>;
  readonly personalDataKey: kms.Key;
  readonly transportKey: kms.Key;
  readonly tables: Record<TableRole, dynamodb.Table>;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly reconcileQueue: sqs.Queue;
  readonly reconcileDeadLetterQueue: sqs.Queue;
  readonly api: apigw.HttpApi;
  readonly auditDigests: AuditDigestStorage;
  /** The NAT gateway's Elastic IP (WeCom trusted IP), when wecomEgress.fixedIp is on. */
  egressIp?: ec2.CfnEIP;
  /** The API's custom domain, when apiDomain is configured. */
  readonly apiDomain?: ApiCustomDomain;

  constructor(scope: Construct, id: string, props: WecomMailboxSyncStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    const logRetention = cfg.logRetentionDays as logs.RetentionDays;
    const region = concreteRegion(this);
    checkRegionSupport(this, RUNTIME.name);
    if (region && isMainlandChinaRegion(region) && !cfg.apiDomain) {
      // Only reachable with allowChinaWithoutCustomDomain (lib/config.ts refuses it otherwise).
      Annotations.of(this).addWarning(
        `${region} without apiDomain: WeCom callbacks and Graph notifications cannot reach this API until an ICP-filed custom domain is configured (apiDomain); only the scheduled jobs will work.`,
      );
    }

    // ------------------------------------------------------------------ keys
    this.personalDataKey = this.createKey('PersonalDataKey', 'personal-data', 'state, audit, field envelopes, reports');
    this.transportKey = this.createKey('TransportKey', 'transport', 'inbox table, work queue, DLQ, alarm topic');
    // CloudWatch alarms publish to the KMS-encrypted alarm topic.
    this.transportKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublishToTheEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );

    // ------------------------------------------------------------------ tables
    this.tables = {
      inbox: createTable(this, 'InboxTable', 'inbox', { encryptionKey: this.transportKey, ttl: true, protect: false }),
      state: createTable(this, 'StateTable', 'state', { encryptionKey: this.personalDataKey, ttl: false, protect: true }),
      audit: createTable(this, 'AuditTable', 'audit', { encryptionKey: this.personalDataKey, ttl: true, protect: true }),
      // Scratch of chunked reconcile runs (keyed hashes, masks, non-sensitive fields): expires by TTL.
      reconcile: createTable(this, 'ReconcileTable', 'reconcile', { encryptionKey: this.personalDataKey, ttl: true, protect: false }),
    };

    // ------------------------------------------------------------------ queue
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      fifo: true,
      contentBasedDeduplication: false,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.transportKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14), // the SQS maximum: time for an operator to redrive
    });
    this.queue = new sqs.Queue(this, 'WorkQueue', {
      fifo: true,
      // The receivers set MessageDeduplicationId from the event id + subject (functions/queue/dedupe.ts).
      contentBasedDeduplication: false,
      // AWS: at least 6 × the consuming function's timeout, so a batch retried on throttling
      // is not redelivered while still in flight.
      visibilityTimeout: Duration.seconds(6 * SIZING['sync-worker'].timeout.toSeconds()),
      retentionPeriod: Duration.days(4),
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.transportKey,
      dataKeyReuse: Duration.minutes(5),
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: cfg.queue.maxReceiveCount },
    });
    // The chunked reconcile continues itself through this queue: a chunk that reaches its
    // deadline sends { runId }; a chunk that dies (timeout, crash) leaves its message, which comes
    // back after the visibility timeout and resumes from the checkpoint. Three deaths in a row park it.
    this.reconcileDeadLetterQueue = new sqs.Queue(this, 'ReconcileDeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.transportKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.reconcileQueue = new sqs.Queue(this, 'ReconcileQueue', {
      // Longer than the function's timeout: a running chunk's message is never handed to a second one.
      visibilityTimeout: SIZING.reconcile.timeout.plus(Duration.minutes(1)),
      retentionPeriod: Duration.days(1),
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.transportKey,
      enforceSSL: true,
      deadLetterQueue: { queue: this.reconcileDeadLetterQueue, maxReceiveCount: 3 },
    });

    // ------------------------------------------------------------------ report bucket
    const accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      // Server access log delivery supports SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      lifecycleRules: [{ expiration: Duration.days(cfg.reportRetentionDays), noncurrentVersionExpiration: Duration.days(30) }],
    });
    Validations.of(accessLogsBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the server-access-log bucket of the report bucket; logging it would need yet another bucket (or log into itself, which S3 advises against).',
    });
    const reportBucket = new s3.Bucket(this, 'ReportBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.personalDataKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: accessLogsBucket,
      serverAccessLogsPrefix: 'report-bucket/',
      lifecycleRules: [{ expiration: Duration.days(cfg.reportRetentionDays), noncurrentVersionExpiration: Duration.days(30) }],
    });

    // ------------------------------------------------------------------ audit digests
    this.auditDigests = new AuditDigestStorage(this, 'AuditDigests', {
      auditRetentionDays: AUDIT_RETENTION_DAYS,
      encryptionKey: this.personalDataKey,
      accessLogsBucket,
      aliasPrefix: `alias/${this.stackName}`,
    });
    const digestBucket = this.auditDigests.bucket;
    const digestIntervalSeconds = rateSeconds(cfg.schedules.auditDigest);
    if (!digestIntervalSeconds) throw new Error('schedules.auditDigest must be a rate() expression');

    // ------------------------------------------------------------------ secrets
    const secrets = {
      wecomCallback: this.createSecret(
        'WecomCallbackSecret',
        'WeCom callback: corpId, token, encodingAESKey (paste the same token and key into the WeCom app’s API-receive settings)',
        { corpId: 'REPLACE_ME', token: 'REPLACE_ME' },
        // A valid EncodingAESKey: 43 characters of [A-Za-z0-9].
        { key: 'encodingAESKey', length: 43 },
      ),
      wecomApi: this.createSecret(
        'WecomApiSecret',
        'WeCom API: corpId, contactsSecret (contacts sync), appSecret (self-built app)',
        { corpId: 'REPLACE_ME', contactsSecret: 'REPLACE_ME', appSecret: 'REPLACE_ME' },
      ),
      mailbox: this.createSecret('MailboxSecret', ...MAILBOX_SECRET_TEMPLATES[cfg.provider]),
    };
    const secretEnv = {
      wecomCallback: 'WECOM_CALLBACK_SECRET_ARN',
      wecomApi: 'WECOM_API_SECRET_ARN',
      mailbox: 'MAILBOX_SECRET_ARN',
    } as const;

    // ------------------------------------------------------------------ API (created before the
    // functions so SYNC_CONFIG can carry the Graph notification URL)
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.api = new apigw.HttpApi(this, 'Api', {
      description: 'wecom-mailbox-sync: WeCom callbacks and mailbox change notifications',
      createDefaultStage: false,
      // With a custom domain, that domain is the only way in: one TLS policy, one (ICP-filed) name.
      disableExecuteApiEndpoint: cfg.apiDomain !== undefined,
    });
    const stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: cfg.apiThrottle.rate, burstLimit: cfg.apiThrottle.burst },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        // JSON, one line per request. No query string: it carries WeCom's signature and echostr.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            time: '$context.requestTime',
            method: '$context.httpMethod',
            route: '$context.routeKey',
            status: '$context.status',
            length: '$context.responseLength',
            latency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            userAgent: '$context.identity.userAgent',
          }),
        ),
      },
    });
    if (cfg.apiDomain) {
      this.apiDomain = new ApiCustomDomain(this, 'ApiDomain', { api: this.api, stage, ...cfg.apiDomain });
    }
    const endpoint = this.apiDomain?.url ?? this.api.apiEndpoint;
    const callbackUrl = `${endpoint}/wecom/callback`;
    const graphNotificationUrl = `${endpoint}/mailbox/events/graph`;
    const webhookUrl = `${endpoint}/mailbox/events/webhook`;
    const syncConfig = this.toJsonString(toSyncConfig(cfg, graphNotificationUrl));

    // ------------------------------------------------------------------ trusted egress IP
    type Network = { vpc: ec2.IVpc; subnets: ec2.SubnetSelection; securityGroups: ec2.ISecurityGroup[] };
    let network: Network | undefined;
    if (cfg.wecomEgress.fixedIp && !cfg.vpc) {
      network = this.createEgressNetwork(logRetention);
    }
    // ------------------------------------------------------------------ the directory's VPC
    // `vpc` (required for provider ldap): the functions that call the mailbox directory run in
    // the operator's VPC, which routes to the company network (VPN / Direct Connect). With
    // wecomEgress.fixedIp the WeCom callers join them there: that VPC's NAT is WeCom's trusted IP.
    const directoryNetwork: Network | undefined = cfg.vpc ? this.importNetwork(cfg.vpc) : undefined;
    if (directoryNetwork && cfg.wecomEgress.fixedIp) {
      Annotations.of(this).addWarning(
        'wecomEgress.fixedIp with vpc: no egress VPC or Elastic IP is created; the functions that call WeCom run in vpc.subnetIds, so WeCom sees that VPC’s NAT gateway address: register it as the trusted IP.',
      );
    }
    const networkOf = (name: HandlerName): Network | undefined =>
      directoryNetwork && (CALLS_MAILBOX.includes(name) || (cfg.wecomEgress.fixedIp && CALLS_WECOM.includes(name)))
        ? directoryNetwork
        : network && CALLS_WECOM.includes(name)
          ? network
          : undefined;

    // ------------------------------------------------------------------ functions
    const environments: Record<HandlerName, Record<string, string>> = {} as never;
    for (const name of HANDLERS) {
      const access = ACCESS[name];
      const env: Record<string, string> = { SYNC_CONFIG: syncConfig };
      if (access.inbox || access.callbackIps) env.INBOX_TABLE = this.tables.inbox.tableName;
      if (access.callbackIps === 'read') {
        env.CALLBACK_SOURCE_CHECK = cfg.callbackSourceCheck.mode;
        env.CALLBACK_IPS_MAX_AGE_SECONDS = String(cfg.callbackSourceCheck.maxAgeHours * 3600);
      }
      if (access.state) env.STATE_TABLE = this.tables.state.tableName;
      if (access.audit) env.AUDIT_TABLE = this.tables.audit.tableName;
      if (access.queueSend || access.queueConsume || access.queueDepth) env.QUEUE_URL = this.queue.queueUrl;
      if (access.dlqSend || access.queueDepth) env.DLQ_URL = this.deadLetterQueue.queueUrl;
      // The personal-data key wraps the envelopes' data keys and the audit chain key.
      if (access.envelopes || access.audit) env.KMS_KEY_ID = this.personalDataKey.keyArn;
      if (access.reports) env.REPORT_BUCKET = reportBucket.bucketName;
      if (access.reconcileRun) {
        env.RECONCILE_TABLE = this.tables.reconcile.tableName;
        env.RECONCILE_QUEUE_URL = this.reconcileQueue.queueUrl;
      }
      if (access.digests) {
        env.AUDIT_DIGEST_BUCKET = digestBucket.bucketName;
        env.AUDIT_DIGEST_KEY_ID = this.auditDigests.signingKey.keyArn;
        env.AUDIT_RETENTION_DAYS = String(AUDIT_RETENTION_DAYS);
        env.AUDIT_DIGEST_INTERVAL_SECONDS = String(digestIntervalSeconds);
      }
      for (const s of access.secrets) env[secretEnv[s]] = secrets[s].secretArn;
      environments[name] = env;
    }
    const fns = {} as Record<HandlerName, SyncFunction>;
    for (const name of HANDLERS) {
      fns[name] = new SyncFunction(this, pascal(name), {
        projectRoot: props.projectRoot,
        name,
        provider: cfg.provider,
        environment: environments[name],
        logRetention,
        logRemovalPolicy: RemovalPolicy.DESTROY,
        // Caps concurrent workers so a burst of events cannot exceed WeCom's / Graph's rate limits.
        reservedConcurrentExecutions: name === 'sync-worker' ? cfg.workerReservedConcurrency : undefined,
        vpc: networkOf(name),
      });
    }
    this.functions = fns;

    // ------------------------------------------------------------------ permissions
    const via = (...services: string[]) => ({
      StringEquals: { 'kms:ViaService': services.map((s) => `${s}.${Aws.REGION}.${Aws.URL_SUFFIX}`) },
    });
    const tableResources = (role: TableRole, withIndexes: boolean) => {
      const arn = this.tables[role].tableArn;
      return withIndexes ? [arn, ...indexNames(role).map((i) => `${arn}/index/${i}`)] : [arn];
    };
    for (const name of HANDLERS) {
      const access = ACCESS[name];
      const role = fns[name].role;
      const allow = (sid: string, actions: readonly string[], resources: string[], conditions?: Record<string, unknown>) =>
        role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions: [...actions], resources, conditions }));

      if (access.inbox === 'rw') allow('InboxTable', TABLE_ACTIONS.inboxReadWrite, tableResources('inbox', false));
      if (access.callbackIps === 'write') {
        allow('CallbackIpListWrite', ['dynamodb:PutItem'], tableResources('inbox', false), {
          'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [CALLBACK_IP_LIST_KEY] },
        });
      }
      if (access.inbox) {
        // Only the refresher writes the list the receiver trusts: not the internet-facing
        // receivers (whose inbox writes could otherwise widen it), not the sweeper.
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'CallbackIpListReadOnly',
            effect: iam.Effect.DENY,
            actions: [...CALLBACK_IP_LIST_DENIED_ACTIONS],
            resources: tableResources('inbox', false),
            conditions: { 'ForAnyValue:StringEquals': { 'dynamodb:LeadingKeys': [CALLBACK_IP_LIST_KEY] } },
          }),
        );
      }
      if (access.inbox === 'sweep') {
        allow('InboxTableMark', TABLE_ACTIONS.inboxSweepMark, tableResources('inbox', false));
        allow('InboxPendingIndexQuery', TABLE_ACTIONS.inboxSweepList, [`${this.tables.inbox.tableArn}/index/${INBOX_PENDING_INDEX}`]);
      }
      if (access.state === 'rw') allow('StateTable', TABLE_ACTIONS.stateReadWrite, tableResources('state', true));
      if (access.state === 'r') allow('StateTableRead', TABLE_ACTIONS.stateRead, tableResources('state', true));
      if (access.state === 'chain-key') {
        // One item: the wrapped audit chain key. No other state (people, claims) is readable.
        allow('StateChainKeyItem', ['dynamodb:GetItem'], tableResources('state', false), {
          'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [AUDIT_CHAIN_KEY.pk] },
        });
      }
      if (access.audit === 'append') allow('AuditTableAppend', TABLE_ACTIONS.auditAppend, tableResources('audit', true));
      if (access.audit === 'read') allow('AuditTableRead', TABLE_ACTIONS.auditRead, tableResources('audit', true));
      // Explicit, for every role (even those without audit access): an Allow added later
      // anywhere cannot make the audit table mutable.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'AuditTableAppendOnly', effect: iam.Effect.DENY, actions: [...AUDIT_DENIED_ACTIONS], resources: tableResources('audit', true) }),
      );
      if (access.queueSend) allow('WorkQueueSend', ['sqs:SendMessage'], [this.queue.queueArn]);
      if (access.reconcileRun) {
        allow('ReconcileTable', TABLE_ACTIONS.reconcileRun, tableResources('reconcile', false));
        allow('ReconcileQueueSend', ['sqs:SendMessage'], [this.reconcileQueue.queueArn]);
      }
      if (access.dlqSend) allow('DeadLetterQueueSend', ['sqs:SendMessage'], [this.deadLetterQueue.queueArn]);
      if (access.queueDepth) {
        allow('QueueDepth', ['sqs:GetQueueAttributes'], [this.queue.queueArn, this.deadLetterQueue.queueArn]);
      }
      // Consuming (ReceiveMessage, DeleteMessage, … + kms:Decrypt) is granted by the event source below.

      const transportVia = [
        ...(access.inbox || access.callbackIps === 'write' ? ['dynamodb'] : []),
        ...(access.queueSend || access.dlqSend || access.queueConsume ? ['sqs'] : []),
      ];
      if (transportVia.length) {
        allow('TransportKeyViaService', KEY_VIA_SERVICE_ACTIONS, [this.transportKey.keyArn], via(...transportVia));
      }
      const personalVia = [...(access.state || access.audit ? ['dynamodb'] : []), ...(access.reports || access.digests ? ['s3'] : [])];
      if (personalVia.length) {
        allow('PersonalDataKeyViaService', KEY_VIA_SERVICE_ACTIONS, [this.personalDataKey.keyArn], via(...personalVia));
      }
      if (access.envelopes) {
        // Field envelopes and the keyed-hash key: every call carries the app's encryption context.
        allow('PersonalDataKeyEnvelopes', ['kms:GenerateDataKey', 'kms:Decrypt'], [this.personalDataKey.keyArn], {
          StringEquals: { 'kms:EncryptionContext:app': KMS_APP },
        });
      }
      if (access.audit) {
        // The audit chain key only: its own encryption-context purpose, so this grants no
        // envelope or keyed-hash key. Appenders may generate it on a fresh deployment.
        allow('AuditChainKey', access.audit === 'append' ? ['kms:GenerateDataKey', 'kms:Decrypt'] : ['kms:Decrypt'], [this.personalDataKey.keyArn], {
          StringEquals: { 'kms:EncryptionContext:app': KMS_APP, 'kms:EncryptionContext:purpose': AUDIT_CHAIN_KEY.purpose },
        });
      }
      if (access.reports) allow('ReportWrite', ['s3:PutObject'], [reportBucket.arnForObjects('reports/*')]);
      if (access.digests) {
        allow('AuditDigestSign', ['kms:Sign'], [this.auditDigests.signingKey.keyArn], {
          StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' },
        });
        // The public key checks the previous digest before building on it: a digest planted in
        // the bucket must not have its heads laundered into a genuinely signed one.
        allow('AuditDigestPublicKey', ['kms:GetPublicKey'], [this.auditDigests.signingKey.keyArn]);
        allow('AuditDigestWriteRead', ['s3:PutObject', 's3:GetObject'], [digestBucket.arnForObjects(`${DIGEST_PREFIX}*`)]);
        allow('AuditDigestList', ['s3:ListBucket'], [digestBucket.bucketArn], { StringLike: { 's3:prefix': `${DIGEST_PREFIX}*` } });
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(digestBucket.node.defaultChild as s3.CfnBucket)}.Arn>/${DIGEST_PREFIX}*]`,
          reason: 'The audit digest job writes one digest object per run under digests/ (keys are creation times) and reads the newest; the prefix is the narrowest possible resource. Overwrites are refused by If-None-Match and Object Lock.',
        });
      }
      for (const s of access.secrets) secrets[s].grantRead(role);

      if (networkOf(name)) {
        // What AWSLambdaVPCAccessExecutionRole grants, minus its logs:* part: Lambda manages
        // the function's ENIs with the function's role. EC2 has no resource-level scoping for
        // these Describe calls and Lambda validates Create/Delete against "*".
        allow(
          'VpcNetworkInterfaces',
          [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          ['*'],
        );
        Validations.of(role).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason:
            'Lambda creates and deletes the function’s VPC network interfaces with the execution role; these EC2 actions do not support resource-level permissions (the same statement as AWSLambdaVPCAccessExecutionRole, without its logs:* part).',
        });
      }
      if (access.reports) {
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(reportBucket.node.defaultChild as s3.CfnBucket)}.Arn>/reports/*]`,
          reason: 'Reconcile writes one report object per run under reports/; object keys are dated, so the prefix is the narrowest possible resource.',
        });
      }
    }

    // ------------------------------------------------------------------ API routes
    const callbackIntegration = new HttpLambdaIntegration('WecomCallbackIntegration', fns['wecom-callback'].fn);
    const mailboxIntegration = new HttpLambdaIntegration('MailboxEventsIntegration', fns['mailbox-events'].fn);
    this.api.addRoutes({
      path: '/wecom/callback',
      methods: [apigw.HttpMethod.GET, apigw.HttpMethod.POST],
      integration: callbackIntegration,
    });
    // Graph posts notifications here, and its validation handshake too (POST ?validationToken=…).
    this.api.addRoutes({
      path: '/mailbox/events/{provider}',
      methods: [apigw.HttpMethod.POST],
      integration: mailboxIntegration,
    });
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'The callers are WeCom and Microsoft Graph, which cannot present IAM, JWT or API-key credentials. Each request is authenticated in the function instead: WeCom by msg_signature (SHA-1 over token, timestamp, nonce, ciphertext) and AES decryption with the receive id checked; Graph by clientState (a 64-char secret); webhooks by HMAC. Stage throttling bounds abuse.',
    });

    // ------------------------------------------------------------------ worker event source
    const consumers = Math.max(2, cfg.workerReservedConcurrency);
    fns['sync-worker'].fn.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        // Never more pollers than reserved concurrency: otherwise throttled invocations would
        // count as receives and push healthy messages to the DLQ.
        maxConcurrency: consumers,
      }),
    );

    // The reconcile's continuations: one chunk at a time per message.
    fns.reconcile.fn.addEventSource(new SqsEventSource(this.reconcileQueue, { batchSize: 1, maxConcurrency: 2 }));

    // ------------------------------------------------------------------ schedules
    const schedule = (id: string, fn: HandlerName, expression: string, description: string) =>
      new events.Rule(this, id, {
        description,
        schedule: events.Schedule.expression(expression),
        targets: [new targets.LambdaFunction(fns[fn].fn, { retryAttempts: 2, maxEventAge: Duration.hours(1) })],
      });
    schedule('ReconcileSchedule', 'reconcile', cfg.schedules.reconcile, 'reconcile-all: drift report, repair, deletion guard');
    schedule('SubscriptionsSchedule', 'subscriptions', feedSchedule(cfg), 'mailbox change feed: renew the push subscription, read the delta');
    schedule('GraceDeleterSchedule', 'grace-deleter', cfg.schedules.graceDeleter, 'delete offboarded members after the grace period');
    schedule('HealthSchedule', 'health', cfg.schedules.health, 'health check: tokens, endpoints, queue depth');
    schedule('InboxSweepSchedule', 'inbox-sweeper', cfg.schedules.inboxSweep, 're-enqueue inbox items a receiver left pending');
    schedule('AuditDigestSchedule', 'audit-digest', cfg.schedules.auditDigest, 'sign a digest of every audit chain head (Object Lock bucket)');
    schedule('WecomCallbackIpsSchedule', 'wecom-callback-ips', cfg.schedules.callbackIps, "refresh WeCom's callback source ranges for the callback source check");

    // ------------------------------------------------------------------ alarms
    const topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'wecom-mailbox-sync alarms',
      masterKey: this.transportKey,
      enforceSSL: true,
    });
    if (cfg.alarmEmail) topic.addSubscription(new subscriptions.EmailSubscription(cfg.alarmEmail));
    const alarmAction = new cwActions.SnsAction(topic);
    const alarm = (id: string, props: cloudwatch.AlarmProps) => {
      const a = new cloudwatch.Alarm(this, id, { treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING, ...props });
      a.addAlarmAction(alarmAction);
      a.addOkAction(alarmAction);
      return a;
    };
    const minute = Duration.minutes(1);
    const fiveMinutes = Duration.minutes(5);
    const dlqVisible = this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' });
    const oldestAge = this.queue.metricApproximateAgeOfOldestMessage({ period: minute, statistic: 'Maximum' });
    const workerErrors = fns['sync-worker'].fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' });
    const workerThrottles = fns['sync-worker'].fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' });
    const api4xx = this.api.metricClientError({ period: fiveMinutes, statistic: 'Sum' });
    const apiCount = this.api.metricCount({ period: fiveMinutes, statistic: 'Sum' });
    const sourceMetric = (metricName: string) =>
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service: METRICS_SERVICE }, period: fiveMinutes, statistic: 'Sum' });
    const sourceUnverified = sourceMetric(SOURCE_CHECK_METRICS.unverified);
    const sourceRefused = sourceMetric(SOURCE_CHECK_METRICS.refused);
    const api4xxRate = new cloudwatch.MathExpression({
      // A percentage, and only once there is traffic to speak of (one forged request is not 100 %).
      expression: 'IF(requests >= 10, 100 * clientErrors / requests, 0)',
      usingMetrics: { clientErrors: api4xx, requests: apiCount },
      period: fiveMinutes,
      label: 'callback 4xx %',
    });
    const alarms = [
      alarm('DeadLetterQueueNotEmpty', {
        alarmDescription: 'Messages were parked in the DLQ: inspect the reason and redrive (wecom-sync dlq).',
        metric: dlqVisible,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      }),
      alarm('ReconcileRunParked', {
        alarmDescription: 'A reconcile chunk failed three times in a row: its run is parked in the reconcile DLQ (the checkpoint is kept; send the message back to resume).',
        metric: this.reconcileDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: 'Maximum' }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      }),
      alarm('WorkerErrors', {
        alarmDescription: 'The sync worker failed invocations (not per-message failures).',
        metric: workerErrors,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      }),
      alarm('WorkerThrottles', {
        alarmDescription: 'The sync worker hit its reserved concurrency.',
        metric: workerThrottles,
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      }),
      alarm('QueueMessageAge', {
        alarmDescription: `A sync message has waited more than ${cfg.queue.maxMessageAgeSeconds} s: the worker is stuck or starved.`,
        metric: oldestAge,
        threshold: cfg.queue.maxMessageAgeSeconds,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
      }),
      alarm('Callback4xxRate', {
        alarmDescription: `More than ${cfg.callback4xxAlarmPercent} % of API requests answered 4xx: forged or stale callbacks, or a wrong token/AES key.`,
        metric: api4xxRate,
        threshold: cfg.callback4xxAlarmPercent,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      }),
      alarm('DestructiveActionsHeld', {
        alarmDescription:
          'The deletion guard on the event path held destructive actions (a burst of mailbox disables or WeCom offboardings): decide with `wecom-sync approvals list | approve | reject`.',
        // Emitted by the engine (EMF, functions/handlers/wiring.ts) for every held action.
        metric: new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: 'held', dimensionsMap: { service: METRICS_SERVICE }, period: fiveMinutes, statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      }),
      ...(cfg.callbackSourceCheck.mode === 'off'
        ? []
        : [
            alarm('CallbackSourceUnverified', {
              alarmDescription: `WeCom callbacks were accepted WITHOUT the source check (fail open): the stored WeCom callback IP list is missing, older than ${cfg.callbackSourceCheck.maxAgeHours} h or unreadable. Check the wecom-callback-ips function (its errors alarm, logs) and the WeCom API secret / trusted IP.`,
              // Emitted by the receiver (EMF, functions/wecom/callback-source.ts) for each such callback.
              metric: sourceUnverified,
              threshold: 0,
              comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
              evaluationPeriods: 1,
            }),
          ]),
      ...SCHEDULED.map((name) =>
        alarm(`${pascal(name)}Errors`, {
          alarmDescription: `The scheduled ${name} function failed.`,
          metric: fns[name].fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
        }),
      ),
    ];

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(24) });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms, width: 24 }),
      new cloudwatch.GraphWidget({ title: 'Work queue', left: [this.queue.metricApproximateNumberOfMessagesVisible()], right: [oldestAge], width: 12 }),
      new cloudwatch.GraphWidget({ title: 'Dead-letter queue', left: [dlqVisible], width: 12 }),
      new cloudwatch.GraphWidget({
        title: 'Sync worker',
        left: [fns['sync-worker'].fn.metricInvocations(), workerErrors, workerThrottles],
        right: [fns['sync-worker'].fn.metricDuration({ statistic: 'p99' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({ title: 'Callback API', left: [apiCount, api4xx, this.api.metricServerError()], right: [api4xxRate], width: 12 }),
      new cloudwatch.GraphWidget({
        title: 'Receivers latency p99',
        left: [fns['wecom-callback'].fn.metricDuration({ statistic: 'p99' }), fns['mailbox-events'].fn.metricDuration({ statistic: 'p99' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Callback source check',
        left: [sourceRefused, sourceUnverified],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Scheduled jobs errors',
        left: SCHEDULED.map((n) => fns[n].fn.metricErrors()),
        width: 12,
      }),
    );

    // ------------------------------------------------------------------ outputs
    new CfnOutput(this, 'CallbackUrl', { value: callbackUrl, description: 'WeCom app → 接收消息 → URL' });
    new CfnOutput(this, 'GraphNotificationUrl', { value: graphNotificationUrl, description: 'Graph change-notification URL (subscriptions are created by the subscriptions function)' });
    new CfnOutput(this, 'MailboxWebhookUrl', { value: webhookUrl, description: 'Signed mailbox webhook URL' });
    new CfnOutput(this, 'ReportBucketName', { value: reportBucket.bucketName });
    new CfnOutput(this, 'QueueName', { value: this.queue.queueName });
    new CfnOutput(this, 'DeadLetterQueueName', { value: this.deadLetterQueue.queueName });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'AlarmTopicArn', { value: topic.topicArn });
    new CfnOutput(this, 'WecomCallbackSecretArn', { value: secrets.wecomCallback.secretArn });
    new CfnOutput(this, 'WecomApiSecretArn', { value: secrets.wecomApi.secretArn });
    new CfnOutput(this, 'MailboxSecretArn', { value: secrets.mailbox.secretArn });
    new CfnOutput(this, 'StateTableName', { value: this.tables.state.tableName });
    new CfnOutput(this, 'AuditTableName', { value: this.tables.audit.tableName });
    // The CLI's reconcile keeps its scratch there too, so its memory does not grow with the directory.
    new CfnOutput(this, 'ReconcileTableName', { value: this.tables.reconcile.tableName });
    // For the operator CLI (`wecom-sync --stack NAME`): the key that opens/hashes personal data
    // (its key policy still decides who may use it) and the non-secret runtime config.
    new CfnOutput(this, 'PersonalDataKeyArn', { value: this.personalDataKey.keyArn });
    new CfnOutput(this, 'SyncConfig', { value: syncConfig, description: 'SYNC_CONFIG of the functions (no secrets)' });
    // For `wecom-sync audit verify|digest --stack NAME`: where the digests are and the key that signs them.
    new CfnOutput(this, 'AuditDigestBucketName', { value: digestBucket.bucketName });
    new CfnOutput(this, 'AuditDigestSigningKeyArn', { value: this.auditDigests.signingKey.keyArn });
    if (this.egressIp) {
      new CfnOutput(this, 'WecomEgressIp', {
        value: this.egressIp.ref,
        description: 'Add this IP to the WeCom app’s 企业可信IP (trusted IPs) list',
      });
    }
    void stage;
  }

  private createKey(id: string, purpose: string, protects: string): kms.Key {
    const key = new kms.Key(this, id, {
      description: `wecom-mailbox-sync ${purpose} key: ${protects}`,
      enableKeyRotation: true,
      alias: `alias/${this.stackName}/${purpose}`,
      // The retained tables are unreadable without it.
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'AccountAdministersAndDelegatesToIam',
            principals: [new iam.AccountRootPrincipal()],
            actions: ACCOUNT_KEY_ACTIONS,
            resources: ['*'],
          }),
        ],
      }),
    });
    return key;
  }

  private createSecret(
    id: string,
    description: string,
    placeholders: Record<string, string>,
    generate?: { key: string; length: number },
  ): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, id, {
      description: `wecom-mailbox-sync — ${description}. Fill REPLACE_ME fields after deploy.`,
      ...(generate
        ? {
            generateSecretString: {
              secretStringTemplate: JSON.stringify(placeholders),
              generateStringKey: generate.key,
              passwordLength: generate.length,
              excludePunctuation: true,
              includeSpace: false,
            },
          }
        : {
            // Nothing we can generate: every field is issued by WeCom. Placeholders, not secrets.
            secretObjectValue: Object.fromEntries(
              Object.entries(placeholders).map(([k, v]) => [k, SecretValue.unsafePlainText(v)]),
            ),
          }),
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Third-party credentials (WeCom corp secrets and callback keys, Entra client secret) are issued and rotated in the WeCom admin console / Entra portal, not by AWS; a Lambda rotation would desynchronise them. Rotation is a documented operator procedure (README.md, Deploy).',
    });
    return secret;
  }

  private createEgressNetwork(logRetention: logs.RetentionDays) {
    // The single public IP WeCom will see: registered by hand in the WeCom admin console, so it
    // must survive updates (a CfnEIP is only replaced if its own properties change).
    const eip = new ec2.CfnEIP(this, 'WecomEgressEip', { domain: 'vpc' });
    this.egressIp = eip;
    const vpc = new ec2.Vpc(this, 'EgressVpc', {
      maxAzs: 2,
      natGateways: 1, // one NAT gateway, one EIP: one address to register
      natGatewayProvider: ec2.NatProvider.gateway({ eipAllocationIds: [eip.attrAllocationId] }),
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
      // Keeps a custom-resource Lambda out of the stack; no resource uses the default SG.
      restrictDefaultSecurityGroup: false,
      gatewayEndpoints: {
        // DynamoDB and S3 traffic stays on the AWS network instead of crossing the NAT.
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      },
    });
    const flowLogs = new logs.LogGroup(this, 'EgressVpcFlowLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    const securityGroup = new ec2.SecurityGroup(this, 'FunctionsSecurityGroup', {
      vpc,
      description: 'wecom-mailbox-sync functions: HTTPS out only, nothing in',
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to WeCom, Graph and AWS APIs');
    return { vpc, subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }, securityGroups: [securityGroup] };
  }

  /**
   * The operator's VPC (config `vpc`), imported by id: nothing in it is created or changed. The
   * security groups are imported immutable, so their rules stay the operator's (LDAPS / LDAP to
   * the directory servers, HTTPS out).
   */
  private importNetwork(v: NonNullable<DeploymentConfig['vpc']>) {
    // Lambda needs the subnet and security group ids only; the zones are the region's (no lookup, no credentials at synth).
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'DirectoryVpc', { vpcId: v.vpcId, availabilityZones: Fn.getAzs() });
    Annotations.of(vpc).acknowledgeWarning('@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones', 'Only Lambda uses this VPC, with explicit subnet ids.');
    const subnets: ec2.SubnetSelection = {
      subnets: v.subnetIds.map((id, i) => {
        const subnet = ec2.Subnet.fromSubnetId(this, `DirectorySubnet${i}`, id);
        Annotations.of(subnet).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId', 'The routes are the operator’s; the stack adds none.');
        return subnet;
      }),
    };
    const securityGroups = v.securityGroupIds.map((id, i) => ec2.SecurityGroup.fromSecurityGroupId(this, `DirectorySecurityGroup${i}`, id, { mutable: false }));
    return { vpc, subnets, securityGroups };
  }
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}
