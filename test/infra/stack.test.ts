/**
 * The deployed stack, as synthesized from cdk.json's own configuration: bundling with local
 * esbuild (no Docker, no AWS account), cdk-nag AwsSolutions, and the properties a security
 * review checks. One synth for the whole file.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_RETENTION_DAYS } from '../../functions/store/audit';
import { tableDefinitions } from '../../functions/store/tables';
import { PROJECT_ROOT } from '../../lib/app';
import { feedSchedule, toSyncConfig } from '../../lib/config';
import { ESM_REQUIRE_BANNER, HANDLERS, RUNTIME_SDK, SIZING, type HandlerName } from '../../lib/functions';
import { DIGEST_LOCK_MARGIN_DAYS } from '../../lib/audit-digest';
import { ACCESS, AUDIT_DENIED_ACTIONS, CALLBACK_IP_LIST_DENIED_ACTIONS } from '../../lib/stack';
import { CALLBACK_IP_LIST_KEY } from '../../functions/store/callback-ip-list';
import {
  asArray,
  flatten,
  identityStatements,
  logicalId,
  referencedIds,
  resourcePolicyStatements,
  synth,
  type Synthesized,
} from './synth';

let s: Synthesized;
let ids: {
  fn: Record<HandlerName, string>;
  role: Record<HandlerName, string>;
  logGroup: Record<HandlerName, string>;
  inbox: string;
  state: string;
  audit: string;
  reconcileTable: string;
  reconcileQueue: string;
  queue: string;
  dlq: string;
  personalKey: string;
  transportKey: string;
  digestBucket: string;
  signingKey: string;
};

beforeAll(() => {
  // INFRA_TEST_BUNDLING=0 skips esbuild (e.g. while a handler is mid-edit); CI always bundles.
  s = synth({ bundling: process.env.INFRA_TEST_BUNDLING !== '0' });
  const st = s.stack;
  const per = (pick: (n: HandlerName) => import('constructs').IConstruct) =>
    Object.fromEntries(HANDLERS.map((n) => [n, logicalId(st, pick(n))])) as Record<HandlerName, string>;
  ids = {
    fn: per((n) => st.functions[n].fn),
    role: per((n) => st.functions[n].role),
    logGroup: per((n) => st.functions[n].logGroup),
    inbox: logicalId(st, st.tables.inbox),
    state: logicalId(st, st.tables.state),
    audit: logicalId(st, st.tables.audit),
    reconcileTable: logicalId(st, st.tables.reconcile),
    reconcileQueue: logicalId(st, st.reconcileQueue),
    queue: logicalId(st, st.queue),
    dlq: logicalId(st, st.deadLetterQueue),
    personalKey: logicalId(st, st.personalDataKey),
    transportKey: logicalId(st, st.transportKey),
    digestBucket: logicalId(st, st.auditDigests.bucket),
    signingKey: logicalId(st, st.auditDigests.signingKey),
  };
}, 120_000);

afterAll(() => s?.cleanup());

const fnProps = (n: HandlerName) => s.json.Resources[ids.fn[n]]!.Properties;
const env = (n: HandlerName): Record<string, unknown> => fnProps(n).Environment.Variables;

describe('synth and cdk-nag', () => {
  it('synthesizes with cdk-nag AwsSolutions registered and no unacknowledged finding', () => {
    // The plugin ran inside app.synth(); a finding would have thrown "Validation failed".
    expect(s.validationReport.pluginReports.filter((r) => r.conclusion === 'failure')).toEqual([]);
    // Re-run the pack directly on the tree: zero violations left after acknowledgements.
    const result = new AwsSolutionsChecks().validateScope(s.app);
    expect(result.violations.map((v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    expect(result.success).toBe(true);
  });

  it('acknowledges only a reviewed set of findings, each with a specific reason', () => {
    const acks: Array<{ path: string; id: string; reason: string }> = [];
    for (const c of s.app.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(m.data as Record<string, string>)) acks.push({ path: c.node.path, id, reason });
      }
    }
    const byRule = acks.map((a) => a.id.replace(/^annotation::/i, '').replace(/\[.*$/, ''));
    expect(new Set(byRule)).toEqual(new Set(['AwsSolutions-S1', 'AwsSolutions-APIG4', 'AwsSolutions-SMG4', 'AwsSolutions-IAM5']));
    // IAM5 is acknowledged only for the report prefix on the reconcile role and the digest
    // prefix on the audit-digest role.
    const iam5 = acks.filter((a) => a.id.includes('IAM5')).sort((a, b) => a.path.localeCompare(b.path));
    expect(iam5.map((a) => a.path)).toEqual([`${s.stack.stackName}/AuditDigest/Role`, `${s.stack.stackName}/Reconcile/Role`]);
    expect(iam5[0]!.id).toMatch(/AuditDigestsBucket[0-9A-F]{8}\.Arn>\/digests\/\*\]$/);
    expect(iam5[1]!.id).toMatch(/reports\/\*\]$/);
    for (const a of acks) expect(a.reason.length, `${a.id} at ${a.path}`).toBeGreaterThan(60);
  });

  it.skipIf(process.env.INFRA_TEST_BUNDLING === '0')('bundles every handler locally as minified ESM with the require shim and a source map', () => {
    const assetDirs = new Set(readdirSync(s.outdir).filter((d) => d.startsWith('asset.')));
    for (const n of HANDLERS) {
      // Code.S3Key is '<asset hash>.zip'; the bundle sits in asset.<hash>/ in the cloud assembly.
      const hash = String(fnProps(n).Code.S3Key).replace(/\.zip$/, '');
      const dir = `asset.${hash}`;
      expect(assetDirs.has(dir), n).toBe(true);
      const code = readFileSync(join(s.outdir, dir, 'index.mjs'), 'utf8');
      expect(code.startsWith(ESM_REQUIRE_BANNER), n).toBe(true);
      expect(existsSync(join(s.outdir, dir, 'index.mjs.map')), n).toBe(true);
      // Receivers take the SDK from the runtime (bundle and cold-start targets); the others pin theirs.
      const sources = (JSON.parse(readFileSync(join(s.outdir, dir, 'index.mjs.map'), 'utf8')) as { sources: string[] }).sources;
      expect(sources.some((src) => src.includes('@aws-sdk/client-')), n).toBe(!RUNTIME_SDK.has(n));
      if (n === 'wecom-callback') expect(code.length, 'callback bundle < 400 KB').toBeLessThan(400 * 1024);
    }
  });
});

describe('functions', () => {
  it('one nodejs24.x arm64 function per handler, sized as documented', () => {
    s.template.resourceCountIs('AWS::Lambda::Function', HANDLERS.length);
    for (const n of HANDLERS) {
      const p = fnProps(n);
      expect(p.Runtime, n).toBe('nodejs24.x');
      expect(p.Architectures, n).toEqual(['arm64']);
      expect(p.Handler, n).toBe('index.handler');
      expect(p.MemorySize, n).toBe(SIZING[n].memoryMb);
      expect(p.Timeout, n).toBe(SIZING[n].timeout.toSeconds());
      expect(p.Role, n).toEqual({ 'Fn::GetAtt': [ids.role[n], 'Arn'] });
      expect(p.LoggingConfig.LogGroup, n).toEqual({ Ref: ids.logGroup[n] });
      // Source maps ship but are not enabled at run time (measured: README, Decisions; bundles.test.ts).
      expect(env(n).NODE_OPTIONS, n).toBeUndefined();
      expect(p.VpcConfig, n).toBeUndefined(); // fixed egress IP is off by default
    }
  });

  it('answers WeCom within its 1 s budget and sizes the worker for a 10-message batch', () => {
    expect(SIZING['wecom-callback'].timeout.toSeconds()).toBeLessThanOrEqual(5);
    expect(SIZING['mailbox-events'].timeout.toSeconds()).toBeLessThanOrEqual(5);
    expect(SIZING.reconcile.timeout.toSeconds()).toBe(900);
  });

  it('caps the worker with reserved concurrency from config; no other function reserves', () => {
    expect(fnProps('sync-worker').ReservedConcurrentExecutions).toBe(s.config.workerReservedConcurrency);
    for (const n of HANDLERS.filter((h) => h !== 'sync-worker')) expect(fnProps(n).ReservedConcurrentExecutions, n).toBeUndefined();
  });

  it('each function log group has the configured retention', () => {
    for (const n of HANDLERS) {
      expect(s.json.Resources[ids.logGroup[n]]!.Properties.RetentionInDays, n).toBe(s.config.logRetentionDays);
    }
  });

  it('environment carries names, URLs, ARNs and SYNC_CONFIG — never a secret', () => {
    const secretIds = Object.entries(s.json.Resources)
      .filter(([, r]) => r.Type === 'AWS::SecretsManager::Secret')
      .map(([id]) => id);
    for (const n of HANDLERS) {
      for (const [k, v] of Object.entries(env(n))) {
        const text = JSON.stringify(v);
        expect(text, `${n}.${k}`).not.toMatch(/\{\{resolve:secretsmanager|REPLACE_ME|SecretString/);
        expect(k, n).not.toMatch(/TOKEN|AES|PASSWORD|CLIENT_SECRET|APP_SECRET|CORP_SECRET/);
        if (k.endsWith('_SECRET_ARN')) expect(v, `${n}.${k}`).toEqual({ Ref: expect.any(String) });
        if (k.endsWith('_SECRET_ARN')) expect(secretIds).toContain((v as { Ref: string }).Ref);
      }
    }
  });

  it('gives each function only the environment of what it may touch', () => {
    // NODE_OPTIONS (runtime flags, lib/functions.ts) is checked with the functions above.
    const appEnv = (n: HandlerName) => Object.keys(env(n)).filter((k) => k !== 'NODE_OPTIONS').sort();
    expect(appEnv('wecom-callback')).toEqual(
      ['CALLBACK_IPS_MAX_AGE_SECONDS', 'CALLBACK_SOURCE_CHECK', 'INBOX_TABLE', 'QUEUE_URL', 'SYNC_CONFIG', 'WECOM_CALLBACK_SECRET_ARN'].sort(),
    );
    // The source check is on by default, trusting a list for a day (WeCom advises a daily refresh).
    expect(env('wecom-callback').CALLBACK_SOURCE_CHECK).toBe('enforce');
    expect(env('wecom-callback').CALLBACK_IPS_MAX_AGE_SECONDS).toBe(String(24 * 3600));
    expect(appEnv('wecom-callback-ips')).toEqual(['INBOX_TABLE', 'SYNC_CONFIG', 'WECOM_API_SECRET_ARN']);
    expect(Object.keys(env('sync-worker')).sort()).toEqual(
      ['AUDIT_TABLE', 'DLQ_URL', 'KMS_KEY_ID', 'MAILBOX_SECRET_ARN', 'QUEUE_URL', 'STATE_TABLE', 'SYNC_CONFIG', 'WECOM_API_SECRET_ARN'].sort(),
    );
    expect(env('sync-worker').KMS_KEY_ID).toEqual({ 'Fn::GetAtt': [ids.personalKey, 'Arn'] });
    expect(env('sync-worker').STATE_TABLE).toEqual({ Ref: ids.state });
    expect(env('reconcile').REPORT_BUCKET).toBeDefined();
    for (const n of ['wecom-callback', 'mailbox-events'] as const) {
      expect(env(n).INBOX_TABLE).toEqual({ Ref: ids.inbox });
      expect(env(n).STATE_TABLE).toBeUndefined();
      expect(env(n).KMS_KEY_ID).toBeUndefined();
    }
  });

  it('SYNC_CONFIG is the configuration as JSON, with the deployed Graph notification URL', async () => {
    const raw = flatten(env('sync-worker').SYNC_CONFIG);
    const parsed = JSON.parse(raw);
    const url = `<${logicalId(s.stack, s.stack.api)}.ApiEndpoint>/mailbox/events/graph`;
    expect(parsed).toEqual(JSON.parse(JSON.stringify(toSyncConfig(s.config, url))));
    // Every function receives the same settings.
    for (const n of HANDLERS) expect(flatten(env(n).SYNC_CONFIG)).toBe(raw);
    // The runtime parser (another module) must accept what the stack produces, once it exists.
    const runtime = join(PROJECT_ROOT, 'functions', 'config', 'runtime.ts');
    if (existsSync(runtime)) {
      const mod = (await import(runtime)) as { parseRuntimeConfig?: (json: string) => unknown };
      if (mod.parseRuntimeConfig) {
        const real = raw.replace(/<[^>]+>/, 'https://abc123.execute-api.eu-west-1.amazonaws.com');
        expect(() => mod.parseRuntimeConfig!(real)).not.toThrow();
      }
    }
  });
});

describe('queue', () => {
  it('FIFO work queue with receiver-set dedupe ids, KMS, DLQ redrive and visibility = 6 × worker timeout', () => {
    const q = s.json.Resources[ids.queue]!.Properties;
    expect(q.FifoQueue).toBe(true);
    expect(q.ContentBasedDeduplication).toBe(false);
    expect(q.VisibilityTimeout).toBe(6 * fnProps('sync-worker').Timeout);
    expect(q.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [ids.transportKey, 'Arn'] });
    expect(q.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [ids.dlq, 'Arn'] },
      maxReceiveCount: s.config.queue.maxReceiveCount,
    });
    const dlq = s.json.Resources[ids.dlq]!.Properties;
    expect(dlq.FifoQueue).toBe(true);
    expect(dlq.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [ids.transportKey, 'Arn'] });
    expect(dlq.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  it('both queues deny non-TLS access', () => {
    for (const q of [ids.queue, ids.dlq]) {
      s.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: q }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  it('the worker consumes batches of 10 with partial batch responses, never more pollers than its concurrency', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: ids.fn['sync-worker'] },
      EventSourceArn: { 'Fn::GetAtt': [ids.queue, 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: s.config.workerReservedConcurrency },
    });
  });
});

describe('tables', () => {
  const defs = tableDefinitions({ inbox: 'inbox', state: 'state', audit: 'audit' });
  const table = (role: 'inbox' | 'state' | 'audit') => s.json.Resources[ids[role]]!;

  it('key schemas and GSIs are exactly functions/store/tables.ts', () => {
    for (const role of ['inbox', 'state', 'audit'] as const) {
      const def = defs.find((d) => d.TableName === role)!;
      const p = table(role).Properties;
      expect(p.KeySchema).toEqual(def.KeySchema);
      const sortByName = (a: { AttributeName?: string }, b: { AttributeName?: string }) => a.AttributeName!.localeCompare(b.AttributeName!);
      expect([...p.AttributeDefinitions].sort(sortByName)).toEqual([...def.AttributeDefinitions!].sort(sortByName));
      const gsis = (p.GlobalSecondaryIndexes ?? []).map((g: any) => ({ IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection }));
      expect(gsis).toEqual((def.GlobalSecondaryIndexes ?? []).map((g) => ({ IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection })));
      expect(p.BillingMode).toBe('PAY_PER_REQUEST');
      expect(p.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    }
  });

  it('state and audit use the personal-data key, are deletion-protected and retained; inbox uses the transport key', () => {
    expect(table('inbox').Properties.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: { 'Fn::GetAtt': [ids.transportKey, 'Arn'] },
    });
    for (const role of ['state', 'audit'] as const) {
      const t = table(role);
      expect(t.Properties.SSESpecification).toEqual({
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [ids.personalKey, 'Arn'] },
      });
      expect(t.Properties.DeletionProtectionEnabled).toBe(true);
      expect(t.DeletionPolicy).toBe('Retain');
      expect(t.UpdateReplacePolicy).toBe('Retain');
    }
  });

  it('TTL on expiresAt for inbox and audit only', () => {
    expect(table('inbox').Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table('audit').Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table('state').Properties.TimeToLiveSpecification).toBeUndefined();
  });
});

describe('keys', () => {
  it('two symmetric customer-managed keys with rotation and the digest signing key, all retained', () => {
    s.template.resourceCountIs('AWS::KMS::Key', 3);
    for (const k of [ids.personalKey, ids.transportKey]) {
      const r = s.json.Resources[k]!;
      expect(r.Properties.EnableKeyRotation).toBe(true);
      expect(r.DeletionPolicy).toBe('Retain');
    }
    const signing = s.json.Resources[ids.signingKey]!;
    expect(signing.Properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect(signing.Properties.EnableKeyRotation).not.toBe(true); // asymmetric keys do not rotate
    expect(signing.DeletionPolicy).toBe('Retain');
  });
});

describe('API', () => {
  it('has exactly the callback, notification and handshake routes', () => {
    const routes = Object.values(s.json.Resources)
      .filter((r) => r.Type === 'AWS::ApiGatewayV2::Route')
      .map((r) => r.Properties.RouteKey)
      .sort();
    expect(routes).toEqual(['GET /wecom/callback', 'POST /mailbox/events/{provider}', 'POST /wecom/callback']);
  });

  it('throttles the default stage and writes JSON access logs to a retained-for-N-days log group', () => {
    const stage = Object.values(s.json.Resources).find((r) => r.Type === 'AWS::ApiGatewayV2::Stage')!.Properties;
    expect(stage.StageName).toBe('$default');
    expect(stage.AutoDeploy).toBe(true);
    expect(stage.DefaultRouteSettings).toMatchObject({
      ThrottlingRateLimit: s.config.apiThrottle.rate,
      ThrottlingBurstLimit: s.config.apiThrottle.burst,
    });
    const format = JSON.parse(stage.AccessLogSettings.Format);
    expect(format.requestId).toBe('$context.requestId');
    expect(stage.AccessLogSettings.Format).not.toMatch(/querystring|\$context\.path/i);
    const lg = stage.AccessLogSettings.DestinationArn['Fn::GetAtt'][0];
    expect(s.json.Resources[lg]!.Properties.RetentionInDays).toBe(s.config.logRetentionDays);
  });
});

describe('schedules, alarms, outputs', () => {
  it('schedules the seven jobs with the configured expressions', () => {
    const rules = Object.values(s.json.Resources).filter((r) => r.Type === 'AWS::Events::Rule');
    const byTarget = Object.fromEntries(
      rules.map((r) => [r.Properties.Targets[0].Arn['Fn::GetAtt'][0], r.Properties.ScheduleExpression]),
    );
    expect(byTarget).toEqual({
      [ids.fn.reconcile]: s.config.schedules.reconcile,
      [ids.fn.subscriptions]: feedSchedule(s.config),
      [ids.fn['grace-deleter']]: s.config.schedules.graceDeleter,
      [ids.fn.health]: s.config.schedules.health,
      [ids.fn['inbox-sweeper']]: s.config.schedules.inboxSweep,
      [ids.fn['audit-digest']]: s.config.schedules.auditDigest,
      [ids.fn['wecom-callback-ips']]: s.config.schedules.callbackIps,
    });
    expect(s.config.schedules.callbackIps).toBe('rate(1 hour)');
    expect(feedSchedule(s.config)).toBe('rate(15 minutes)'); // push + delta catch-up (Graph global)
    expect(s.config.schedules.inboxSweep).toBe('rate(5 minutes)'); // cdk.json leaves the default
    expect(s.config.schedules.auditDigest).toBe('rate(1 hour)');
  });

  it('alarms on the DLQ, worker errors and throttles, message age, held destructive actions and the 4xx rate, to an encrypted topic', () => {
    const alarms = Object.values(s.json.Resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm').map((r) => r.Properties);
    const topic = Object.entries(s.json.Resources).find(([, r]) => r.Type === 'AWS::SNS::Topic')!;
    expect(topic[1].Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [ids.transportKey, 'Arn'] });
    for (const a of alarms) expect(a.AlarmActions).toEqual([{ Ref: topic[0] }]);
    const find = (metric: string, dim: string) =>
      alarms.find((a) => a.MetricName === metric && JSON.stringify(a.Dimensions ?? []).includes(dim));
    expect(find('ApproximateNumberOfMessagesVisible', ids.dlq)).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    expect(find('Errors', ids.fn['sync-worker'])).toMatchObject({ Threshold: 0 });
    expect(find('Throttles', ids.fn['sync-worker'])).toMatchObject({ Threshold: 0 });
    expect(find('ApproximateAgeOfOldestMessage', ids.queue)).toMatchObject({ Threshold: s.config.queue.maxMessageAgeSeconds });
    for (const n of ['reconcile', 'subscriptions', 'grace-deleter', 'health', 'inbox-sweeper', 'audit-digest', 'wecom-callback-ips'] as const) {
      expect(find('Errors', ids.fn[n]), `${n} errors alarm`).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
    // The event-path deletion guard held something: the metric the engine emits for each held action.
    expect(alarms.find((a) => a.Namespace === 'WecomMailboxSync' && a.MetricName === 'held')).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      Dimensions: [{ Name: 'service', Value: 'wecom-mailbox-sync' }],
    });
    // The callback source check failed open (no fresh WeCom callback IP list): the receiver's EMF metric.
    expect(alarms.find((a) => a.Namespace === 'WecomMailboxSync' && a.MetricName === 'CallbackSourceUnverified')).toMatchObject({
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'service', Value: 'wecom-mailbox-sync' }],
    });
    const rate = alarms.find((a) => JSON.stringify(a.Metrics ?? []).includes('"4xx"'));
    expect(rate).toMatchObject({ Threshold: s.config.callback4xxAlarmPercent });
    s.template.resourceCountIs('AWS::SNS::Subscription', 0); // no alarmEmail in cdk.json
    s.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('outputs the URLs to register and the names an operator needs', () => {
    for (const o of ['CallbackUrl', 'GraphNotificationUrl', 'MailboxWebhookUrl', 'ReportBucketName', 'QueueName', 'DeadLetterQueueName', 'AuditDigestBucketName', 'AuditDigestSigningKeyArn']) {
      expect(s.json.Outputs?.[o], o).toBeDefined();
    }
    expect(flatten(s.json.Outputs!.CallbackUrl!.Value)).toMatch(/\.ApiEndpoint>\/wecom\/callback$/);
    expect(s.json.Outputs?.WecomEgressIp).toBeUndefined();
    expect(s.json.Outputs!.AuditDigestBucketName!.Value).toEqual({ Ref: ids.digestBucket });
    expect(s.json.Outputs!.AuditDigestSigningKeyArn!.Value).toEqual({ 'Fn::GetAtt': [ids.signingKey, 'Arn'] });
  });

  it('audit digest bucket: Object Lock COMPLIANCE outlasting the audit retention, versioned, KMS, access-logged, deletes denied', () => {
    const p = s.json.Resources[ids.digestBucket]!;
    expect(p.DeletionPolicy).toBe('Retain');
    expect(p.Properties.ObjectLockEnabled).toBe(true);
    const retention = p.Properties.ObjectLockConfiguration.Rule.DefaultRetention;
    expect(p.Properties.ObjectLockConfiguration.ObjectLockEnabled).toBe('Enabled');
    expect(retention.Mode).toBe('COMPLIANCE');
    expect(retention.Days).toBe(AUDIT_RETENTION_DAYS + DIGEST_LOCK_MARGIN_DAYS);
    expect(retention.Days).toBeGreaterThan(AUDIT_RETENTION_DAYS);
    expect(p.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(p.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault).toEqual({
      SSEAlgorithm: 'aws:kms',
      KMSMasterKeyID: { 'Fn::GetAtt': [ids.personalKey, 'Arn'] },
    });
    expect(p.Properties.LoggingConfiguration).toMatchObject({ LogFilePrefix: 'audit-digest-bucket/' });
    // Lifecycle only after the lock has ended.
    expect(p.Properties.LifecycleConfiguration.Rules[0].ExpirationInDays).toBeGreaterThan(retention.Days);
    const deny = resourcePolicyStatements(s.json).filter((x) => x.statement.Effect === 'Deny' && x.statement.Sid === 'DigestsAreNeverDeleted');
    expect(deny).toHaveLength(1);
    expect(asArray(deny[0]!.statement.Action).sort()).toEqual(['s3:DeleteObject', 's3:DeleteObjectVersion']);
    expect(deny[0]!.statement.Principal).toEqual({ AWS: '*' });
  });

  it('report bucket: KMS, no public access, TLS only, versioned, expiring, access-logged', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [ids.personalKey, 'Arn'] } } }),
        ],
      },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: s.config.reportRetentionDays })] },
      LoggingConfiguration: Match.objectLike({ DestinationBucketName: Match.anyValue() }),
    });
    const buckets = Object.entries(s.json.Resources).filter(([, r]) => r.Type === 'AWS::S3::Bucket').map(([id]) => id);
    for (const b of buckets) {
      s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: b },
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    }
  });

  it('three placeholder secrets, none rotated automatically (third-party credentials)', () => {
    const secrets = Object.values(s.json.Resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret');
    expect(secrets.length).toBe(3);
    s.template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 0);
  });
});

describe('least privilege', () => {
  /** What roles are ALLOWED (the explicit audit Deny statements are checked on their own below). */
  const statements = () => identityStatements(s.json).filter((x) => x.statement.Effect === 'Allow');
  const denies = () => identityStatements(s.json).filter((x) => x.statement.Effect === 'Deny');

  it('no AWS managed policies, no wildcard actions, no wildcard resources but the report prefix', () => {
    for (const r of Object.values(s.json.Resources).filter((x) => x.Type === 'AWS::IAM::Role')) {
      expect(r.Properties.ManagedPolicyArns).toBeUndefined();
    }
    // Allow-list: object keys under a prefix cannot be named in advance.
    const allowedWildcards = [/^<ReportBucket[0-9A-F]{8}\.Arn>\/reports\/\*$/, /^<AuditDigestsBucket[0-9A-F]{8}\.Arn>\/digests\/\*$/];
    // The only Deny statements are the audit table's and the callback IP list's (checked below).
    for (const { policy, statement } of denies()) expect(['AuditTableAppendOnly', 'CallbackIpListReadOnly'], policy).toContain(statement.Sid);
    for (const { policy, statement } of statements()) {
      expect(statement.NotAction, policy).toBeUndefined();
      expect(statement.NotResource, policy).toBeUndefined();
      for (const a of asArray(statement.Action)) expect(a, `${policy} ${statement.Sid ?? ''}`).not.toContain('*');
      for (const r of asArray(statement.Resource)) {
        const text = flatten(r);
        if (text.includes('*')) expect(allowedWildcards.some((re) => re.test(text)), `${policy}: ${text}`).toBe(true);
      }
    }
  });

  it('resource policies allow no wildcard action', () => {
    for (const { resource, statement } of resourcePolicyStatements(s.json)) {
      if (statement.Effect !== 'Allow') continue;
      for (const a of asArray(statement.Action)) expect(a, resource).not.toContain('*');
    }
  });

  it('every function role reaches only the resources its access entry names', () => {
    for (const n of HANDLERS) {
      const access = ACCESS[n];
      const mine = statements().filter((x) => x.roles.includes(ids.role[n]));
      expect(mine.length, n).toBeGreaterThan(0);
      const reached = new Set<string>();
      for (const { statement } of mine) referencedIds(statement.Resource, reached);
      const allowed = new Set<string>([ids.logGroup[n]]);
      if (access.inbox) allowed.add(ids.inbox).add(ids.transportKey);
      if (access.state) allowed.add(ids.state).add(ids.personalKey);
      if (access.audit) allowed.add(ids.audit).add(ids.personalKey);
      if (access.digests) allowed.add(ids.signingKey).add(ids.personalKey);
      if (access.queueSend || access.queueConsume) allowed.add(ids.queue).add(ids.transportKey);
      if (access.queueDepth) allowed.add(ids.queue).add(ids.dlq);
      if (access.dlqSend) allowed.add(ids.dlq);
      if (access.envelopes) allowed.add(ids.personalKey);
      if (access.callbackIps === 'write') allowed.add(ids.inbox).add(ids.transportKey);
      if (access.reconcileRun) allowed.add(ids.reconcileTable).add(ids.personalKey).add(ids.reconcileQueue).add(ids.transportKey);
      for (const id of reached) {
        const type = s.json.Resources[id]!.Type;
        if (type === 'AWS::SecretsManager::Secret' || type === 'AWS::S3::Bucket') continue; // checked below
        expect(allowed.has(id), `${n} reaches ${id}`).toBe(true);
      }
      // Secrets: exactly those listed.
      const secretRefs = [...reached].filter((id) => s.json.Resources[id]!.Type === 'AWS::SecretsManager::Secret');
      expect(secretRefs.length, n).toBe(access.secrets.length);
      const buckets = [...reached].filter((id) => s.json.Resources[id]!.Type === 'AWS::S3::Bucket');
      expect(buckets.sort(), n).toEqual([...(access.reports ? [logicalId(s.stack, s.stack.node.findChild('ReportBucket'))] : []), ...(access.digests ? [ids.digestBucket] : [])].sort());
      expect(reached.has(ids.signingKey), n).toBe(access.digests === true);
    }
  });

  it('the reconcile table: on demand, TTL, the personal-data key; only the reconcile role reaches it, and its name is in that function alone', () => {
    const t = s.json.Resources[ids.reconcileTable]!.Properties;
    expect(t.BillingMode).toBe('PAY_PER_REQUEST');
    expect(t.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(t.SSESpecification.SSEEnabled).toBe(true);
    expect(JSON.stringify(t.SSESpecification.KMSMasterKeyId)).toContain(ids.personalKey);
    for (const n of HANDLERS) {
      const reached = new Set<string>();
      for (const { statement } of statements().filter((x) => x.roles.includes(ids.role[n]))) referencedIds(statement.Resource, reached);
      expect(reached.has(ids.reconcileTable), n).toBe(n === 'reconcile');
      expect(env(n).RECONCILE_TABLE !== undefined, n).toBe(n === 'reconcile');
    }
    // Its continuation queue invokes it, one chunk per message.
    const mapping = Object.values(s.json.Resources).find(
      (r) => r.Type === 'AWS::Lambda::EventSourceMapping' && JSON.stringify(r.Properties.EventSourceArn).includes(ids.reconcileQueue),
    );
    expect(mapping?.Properties.BatchSize).toBe(1);
  });

  it('the internet-facing callback role has no access to the personal-data key, state or audit', () => {
    const mine = statements().filter((x) => x.roles.includes(ids.role['wecom-callback']));
    const reached = new Set<string>();
    for (const { statement } of mine) referencedIds(statement.Resource, reached);
    expect(reached.has(ids.personalKey)).toBe(false);
    expect(reached.has(ids.state)).toBe(false);
    expect(reached.has(ids.audit)).toBe(false);
    // And nothing else grants it: no statement in any policy attached to it names "*".
    for (const { statement } of mine) expect(asArray(statement.Resource).map(flatten)).not.toContain('*');
    // The key policies name no function role directly either (delegation to IAM only).
    for (const { statement } of resourcePolicyStatements(s.json)) {
      expect(referencedIds(statement.Principal).has(ids.role['wecom-callback'])).toBe(false);
    }
  });

  it('the internet-facing callback role cannot get the WeCom API secret: it only reads the list the refresher stores', () => {
    const apiSecret = (env('wecom-callback-ips').WECOM_API_SECRET_ARN as { Ref: string }).Ref;
    expect(s.json.Resources[apiSecret]!.Type).toBe('AWS::SecretsManager::Secret');
    const mine = identityStatements(s.json).filter((x) => x.roles.includes(ids.role['wecom-callback']));
    const reached = new Set<string>();
    for (const { statement } of mine) referencedIds(statement.Resource, reached);
    expect(reached.has(apiSecret)).toBe(false);
    expect(env('wecom-callback').WECOM_API_SECRET_ARN).toBeUndefined();
    // Nor can any resource policy hand it over.
    for (const { statement } of resourcePolicyStatements(s.json)) expect(referencedIds(statement.Principal).has(ids.role['wecom-callback'])).toBe(false);
  });

  it('the callback IP list refresher: PutItem of that one inbox item, the WeCom API secret, nothing else', () => {
    const mine = statements().filter((x) => x.roles.includes(ids.role['wecom-callback-ips']));
    const reached = new Set<string>();
    for (const { statement } of mine) referencedIds(statement.Resource, reached);
    const apiSecret = (env('wecom-callback-ips').WECOM_API_SECRET_ARN as { Ref: string }).Ref;
    expect([...reached].sort()).toEqual([apiSecret, ids.inbox, ids.logGroup['wecom-callback-ips'], ids.transportKey].sort());
    const write = mine.filter(({ statement }) => referencedIds(statement.Resource).has(ids.inbox));
    expect(write.map(({ statement }) => ({ actions: asArray(statement.Action), resources: asArray(statement.Resource).map(flatten), condition: statement.Condition }))).toEqual([
      {
        actions: ['dynamodb:PutItem'],
        resources: [`<${ids.inbox}.Arn>`],
        condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [CALLBACK_IP_LIST_KEY] } },
      },
    ]);
    const key = mine.filter(({ statement }) => referencedIds(statement.Resource).has(ids.transportKey));
    expect(key).toHaveLength(1);
    expect(flatten(key[0]!.statement.Condition)).toMatch(/"kms:ViaService":\[\{"Fn::Join":\["",\["dynamodb\.",/);
    expect(flatten(key[0]!.statement.Condition)).not.toMatch(/sqs|s3/);
    const secret = mine.filter(({ statement }) => referencedIds(statement.Resource).has(apiSecret));
    for (const { statement } of secret) for (const a of asArray(statement.Action)) expect(a).toMatch(/^secretsmanager:(GetSecretValue|DescribeSecret)$/);
  });

  it('only the refresher may write the callback IP list: every other inbox writer is denied that key', () => {
    const inboxWriters = HANDLERS.filter((n) => ACCESS[n].inbox);
    expect(inboxWriters.sort()).toEqual(['inbox-sweeper', 'mailbox-events', 'wecom-callback']);
    for (const n of HANDLERS) {
      const deny = denies().filter((x) => x.roles.includes(ids.role[n]) && x.statement.Sid === 'CallbackIpListReadOnly');
      expect(deny.length, n).toBe(ACCESS[n].inbox ? 1 : 0);
      if (!deny.length) continue;
      expect(asArray(deny[0]!.statement.Action).sort(), n).toEqual([...CALLBACK_IP_LIST_DENIED_ACTIONS].sort());
      expect(asArray(deny[0]!.statement.Resource).map(flatten), n).toEqual([`<${ids.inbox}.Arn>`]);
      expect(deny[0]!.statement.Condition, n).toEqual({ 'ForAnyValue:StringEquals': { 'dynamodb:LeadingKeys': [CALLBACK_IP_LIST_KEY] } });
    }
  });

  it('the inbox sweeper: Query on the pending index and UpdateItem on the inbox, send to the work queue, nothing else', () => {
    const mine = statements().filter((x) => x.roles.includes(ids.role['inbox-sweeper']));
    const reached = new Set<string>();
    for (const { statement } of mine) referencedIds(statement.Resource, reached);
    // Its log group, the inbox, the work queue and the transport key (via DynamoDB / SQS): no
    // state, audit, DLQ, bucket, secret or personal-data key.
    expect([...reached].sort()).toEqual([ids.inbox, ids.logGroup['inbox-sweeper'], ids.queue, ids.transportKey].sort());
    const grants = (id: string) =>
      mine
        .filter(({ statement }) => referencedIds(statement.Resource).has(id))
        .map(({ statement }) => ({ actions: asArray(statement.Action).sort(), resources: asArray(statement.Resource).map(flatten).sort() }));
    const arn = `<${ids.inbox}.Arn>`;
    expect(grants(ids.inbox)).toEqual([
      { actions: ['dynamodb:UpdateItem'], resources: [arn] },
      { actions: ['dynamodb:Query'], resources: [`${arn}/index/pending`] },
    ]);
    expect(grants(ids.queue)).toEqual([{ actions: ['sqs:SendMessage'], resources: [`<${ids.queue}.Arn>`] }]);
    const key = mine.filter(({ statement }) => referencedIds(statement.Resource).has(ids.transportKey));
    expect(key).toHaveLength(1);
    expect(flatten(key[0]!.statement.Condition)).toMatch(/kms:ViaService.*dynamodb\..*sqs\./);
    expect(Object.keys(env('inbox-sweeper')).sort()).toEqual(['INBOX_TABLE', 'QUEUE_URL', 'SYNC_CONFIG']);
    // The receivers, for contrast, cannot query the inbox at all (they never list it).
    for (const n of ['wecom-callback', 'mailbox-events'] as const) {
      const actions = statements()
        .filter((x) => x.roles.includes(ids.role[n]))
        .flatMap(({ statement }) => asArray(statement.Action));
      expect(actions, n).not.toContain('dynamodb:Query');
    }
  });

  it('table and queue key use is bound to the service; direct envelope use to the app context', () => {
    for (const { statement } of statements()) {
      const keys = referencedIds(statement.Resource);
      if (!keys.has(ids.personalKey) && !keys.has(ids.transportKey)) continue;
      const actions = asArray(statement.Action);
      if (statement.Sid === 'PersonalDataKeyEnvelopes') {
        expect(statement.Condition).toEqual({ StringEquals: { 'kms:EncryptionContext:app': 'wecom-mailbox-sync' } });
      } else if (statement.Sid === 'AuditChainKey') {
        expect(statement.Condition).toEqual({ StringEquals: { 'kms:EncryptionContext:app': 'wecom-mailbox-sync', 'kms:EncryptionContext:purpose': 'audit-chain-key' } });
      } else if (actions.length === 1 && actions[0] === 'kms:Decrypt' && keys.has(ids.transportKey)) {
        // The SQS event source's consume grant (transport key only).
      } else {
        expect(Object.keys(statement.Condition?.StringEquals ?? {}), statement.Sid).toEqual(['kms:ViaService']);
      }
    }
  });

  it('audit is append-only for every function: an explicit Deny on every role, and no Allow of those actions', () => {
    const auditArns = [`<${ids.audit}.Arn>`, `<${ids.audit}.Arn>/index/byDay`];
    for (const n of HANDLERS) {
      const deny = denies().filter((x) => x.roles.includes(ids.role[n]) && x.statement.Sid === 'AuditTableAppendOnly');
      expect(deny, n).toHaveLength(1);
      expect(asArray(deny[0]!.statement.Action).sort(), n).toEqual([...AUDIT_DENIED_ACTIONS].sort());
      expect(asArray(deny[0]!.statement.Resource).map(flatten).sort(), n).toEqual(auditArns);
      expect(deny[0]!.statement.Condition, n).toBeUndefined();
    }
    for (const { statement } of statements()) {
      if (!referencedIds(statement.Resource).has(ids.audit)) continue;
      for (const a of AUDIT_DENIED_ACTIONS) expect(asArray(statement.Action)).not.toContain(a);
      expect(asArray(statement.Action).filter((a) => !['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query'].includes(a))).toEqual([]);
    }
    // Only the appenders may PutItem; the digest job reads.
    const putters = HANDLERS.filter((n) =>
      statements().some((x) => x.roles.includes(ids.role[n]) && referencedIds(x.statement.Resource).has(ids.audit) && asArray(x.statement.Action).includes('dynamodb:PutItem')),
    );
    expect(putters.sort()).toEqual(HANDLERS.filter((n) => ACCESS[n].audit === 'append').sort());
  });

  it('every audit appender may unwrap (and create) the chain key, by its own encryption context', () => {
    for (const n of HANDLERS) {
      const chain = statements().filter((x) => x.roles.includes(ids.role[n]) && x.statement.Sid === 'AuditChainKey');
      if (!ACCESS[n].audit) {
        expect(chain, n).toEqual([]);
        continue;
      }
      expect(chain, n).toHaveLength(1);
      expect(asArray(chain[0]!.statement.Action).sort(), n).toEqual(ACCESS[n].audit === 'append' ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt']);
      expect(asArray(chain[0]!.statement.Resource).map(flatten), n).toEqual([`<${ids.personalKey}.Arn>`]);
      expect(env(n).KMS_KEY_ID, n).toEqual({ 'Fn::GetAtt': [ids.personalKey, 'Arn'] });
    }
    expect(ACCESS.subscriptions.audit).toBe('append'); // it has no envelopes, but appends audit
  });

  it('the audit-digest role: read the audit trail and one state item, unwrap the chain key, sign, store digests; nothing else', () => {
    const mine = statements().filter((x) => x.roles.includes(ids.role['audit-digest']));
    const grants = Object.fromEntries(
      mine.map(({ statement }) => [statement.Sid, { actions: asArray(statement.Action).sort(), resources: asArray(statement.Resource).map(flatten).sort(), condition: statement.Condition }]),
    );
    expect(grants.AuditTableRead).toEqual({ actions: ['dynamodb:GetItem', 'dynamodb:Query'], resources: [`<${ids.audit}.Arn>`, `<${ids.audit}.Arn>/index/byDay`], condition: undefined });
    expect(grants.StateChainKeyItem).toEqual({
      actions: ['dynamodb:GetItem'],
      resources: [`<${ids.state}.Arn>`],
      condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['meta#audit-chain-key'] } },
    });
    expect(grants.AuditDigestSign).toEqual({
      actions: ['kms:Sign'],
      resources: [`<${ids.signingKey}.Arn>`],
      condition: { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' } },
    });
    expect(grants.AuditDigestPublicKey).toEqual({ actions: ['kms:GetPublicKey'], resources: [`<${ids.signingKey}.Arn>`], condition: undefined });
    expect(grants.AuditDigestWriteRead).toEqual({ actions: ['s3:GetObject', 's3:PutObject'], resources: [`<${ids.digestBucket}.Arn>/digests/*`], condition: undefined });
    expect(grants.AuditDigestList).toEqual({ actions: ['s3:ListBucket'], resources: [`<${ids.digestBucket}.Arn>`], condition: { StringLike: { 's3:prefix': 'digests/*' } } });
    // No write to any table; no one else may sign.
    for (const { statement } of mine) {
      for (const a of asArray(statement.Action)) expect(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']).not.toContain(a);
    }
    for (const n of HANDLERS.filter((h) => h !== 'audit-digest')) {
      const signs = statements().filter((x) => x.roles.includes(ids.role[n]) && asArray(x.statement.Action).includes('kms:Sign'));
      expect(signs, n).toEqual([]);
    }
    expect(Object.keys(env('audit-digest')).sort()).toEqual(
      ['AUDIT_DIGEST_BUCKET', 'AUDIT_DIGEST_INTERVAL_SECONDS', 'AUDIT_DIGEST_KEY_ID', 'AUDIT_RETENTION_DAYS', 'AUDIT_TABLE', 'KMS_KEY_ID', 'STATE_TABLE', 'SYNC_CONFIG'].sort(),
    );
    expect(env('audit-digest').AUDIT_DIGEST_INTERVAL_SECONDS).toBe('3600');
  });
});
