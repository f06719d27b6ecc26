/**
 * The stack synthesized for an AWS China region (cn-north-1, partition aws-cn), as a deploy
 * there would: the ICP-filed custom domain, the fixed egress IP, an alarm email and a mobile in
 * the profile (allowed: the data is processed in mainland China). Plus the region rules of
 * lib/config.ts at synth: China without a custom domain, a certificate from another region,
 * sensitive fields processed abroad. Bundling is skipped (stack.test.ts bundles the handlers).
 */
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { Fact, FactName } from 'aws-cdk-lib/region-info';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDLERS, RUNTIME } from '../../lib/functions';
import { CDK_JSON, asArray, flatten, identityStatements, logicalId, synth, type Synthesized } from './synth';

const ACCOUNT = '123456789012';
const CERT = `arn:aws-cn:acm:cn-north-1:${ACCOUNT}:certificate/0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f`;
const base = CDK_JSON.context.wecomMailboxSync as Record<string, unknown>;
const profile = base.syncProfile as Record<string, unknown>;
const chinaConfig = {
  ...base,
  apiDomain: { domainName: 'wecom.example.cn', certificateArn: CERT },
  wecomEgress: { fixedIp: true },
  alarmEmail: 'ops@example.cn',
  syncProfile: { ...profile, fields: ['name', 'email', 'mobile', 'position', 'departments'], targetRegion: 'CN' },
};

let s: Synthesized;
beforeAll(() => {
  s = synth({ bundling: false, env: { account: ACCOUNT, region: 'cn-north-1' }, config: chinaConfig });
}, 60_000);
afterAll(() => s?.cleanup());

/** Every string in the template with the path of keys that leads to it. */
function strings(value: unknown, path: string[] = [], out: Array<{ path: string[]; text: string }> = []) {
  if (typeof value === 'string') out.push({ path, text: value });
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, [...path, String(i)], out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) strings(v, [...path, k], out);
  return out;
}

describe('synthesized for cn-north-1 (aws-cn)', () => {
  it('passes cdk-nag with no unacknowledged finding', () => {
    expect(s.validationReport.pluginReports.filter((r) => r.conclusion === 'failure')).toEqual([]);
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
  });

  it('every ARN is in the aws-cn partition; none is written for the aws partition', () => {
    const text = JSON.stringify(s.json);
    expect(text).not.toContain('arn:aws:');
    const arns = strings(s.json).filter((x) => x.text.startsWith('arn:'));
    expect(arns.length).toBeGreaterThan(3); // the key policies' root principal, the certificate, the API permissions
    for (const { text: arn } of arns) expect(arn).toMatch(/^arn:aws-cn:/);
    // No partition or region is left to a deploy-time lookup that could differ.
    expect(text).not.toContain('"AWS::Partition"');
  });

  it('no hard-coded amazonaws.com where China differs: only service principals (the same in every partition)', () => {
    const hosts = strings(s.json).filter((x) => /amazonaws\.com(?!\.cn)/.test(x.text));
    expect(hosts.length).toBeGreaterThan(0);
    for (const { path, text } of hosts) {
      const inPrincipal = path.includes('Principal') && (path.at(-1) === 'Service' || path.at(-2) === 'Service' || path.at(-1) === 'Principal');
      expect(inPrincipal, `${path.join('.')}: ${text}`).toBe(true);
      expect(text).toMatch(/^[a-z0-9.-]+\.amazonaws\.com$/);
    }
  });

  it('key use through DynamoDB / SQS / S3 names the service endpoint with the partition’s own domain (AWS::URLSuffix → amazonaws.com.cn)', () => {
    const via = identityStatements(s.json).filter(({ statement }) => JSON.stringify(statement.Condition ?? {}).includes('kms:ViaService'));
    expect(via.length).toBeGreaterThan(5);
    for (const { statement } of via) {
      for (const v of asArray((statement.Condition!.StringEquals as Record<string, unknown>)['kms:ViaService'])) {
        expect(flatten(v)).toMatch(/^(dynamodb|sqs|s3)\.<AWS::Region>\.<AWS::URLSuffix>$/);
      }
    }
  });

  it('functions run nodejs24.x on arm64, which aws-cdk-lib region-info lists for both China regions (no warning)', () => {
    for (const n of HANDLERS) {
      const p = s.json.Resources[logicalId(s.stack, s.stack.functions[n].fn)]!.Properties;
      expect(p.Runtime, n).toBe('nodejs24.x');
      expect(p.Architectures, n).toEqual(['arm64']);
    }
    for (const region of ['cn-north-1', 'cn-northwest-1']) {
      expect(Fact.find(region, FactName.LATEST_NODE_RUNTIME), region).toBe(RUNTIME.name);
      // AWS publishes an arm64 Lambda layer there: arm64 Lambda exists in the region.
      expect(Fact.find(region, FactName.cloudwatchLambdaInsightsVersion('1.0.498.0', 'arm64')), region).toMatch(/^arn:aws-cn:lambda:cn-/);
    }
    Annotations.fromStack(s.stack).hasNoWarning('*', Match.anyValue());
  });

  it('serves the API on the ICP-filed custom domain only: DomainName (regional, TLS 1.2), ApiMapping, default endpoint off', () => {
    const apiId = logicalId(s.stack, s.stack.api);
    expect(s.json.Resources[apiId]!.Properties.DisableExecuteApiEndpoint).toBe(true);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'wecom.example.cn',
      DomainNameConfigurations: [{ CertificateArn: CERT, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' }],
    });
    const domainId = logicalId(s.stack, s.stack.apiDomain!.domain);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::ApiMapping', { ApiId: { Ref: apiId }, DomainName: { Ref: domainId } });
    expect(s.json.Outputs!.ApiDomainTarget!.Value).toEqual({ 'Fn::GetAtt': [domainId, 'RegionalDomainName'] });
  });

  it('every URL to register is on the custom domain, https: WeCom callback, Graph notifications (also in SYNC_CONFIG), webhook', () => {
    expect(s.json.Outputs!.CallbackUrl!.Value).toBe('https://wecom.example.cn/wecom/callback');
    expect(s.json.Outputs!.GraphNotificationUrl!.Value).toBe('https://wecom.example.cn/mailbox/events/graph');
    expect(s.json.Outputs!.MailboxWebhookUrl!.Value).toBe('https://wecom.example.cn/mailbox/events/webhook');
    const env = s.json.Resources[logicalId(s.stack, s.stack.functions.subscriptions.fn)]!.Properties.Environment.Variables;
    expect(JSON.parse(flatten(env.SYNC_CONFIG)).graph.notificationUrl).toBe('https://wecom.example.cn/mailbox/events/graph');
  });

  it('the rest works as elsewhere: NAT gateway + Elastic IP, alarm email, PITR and TTL, Object Lock, the ECDSA P-256 signing key', () => {
    s.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    expect(s.json.Outputs?.WecomEgressIp).toBeDefined();
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.cn' });
    s.template.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    s.template.hasResourceProperties('AWS::S3::Bucket', { ObjectLockEnabled: true });
    const tables = Object.values(s.json.Resources).filter((r) => r.Type === 'AWS::DynamoDB::Table');
    expect(tables).toHaveLength(4); // inbox, state, audit, reconcile
    for (const t of tables) expect(t.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
  });
});

describe('region rules at synth', () => {
  const attempt = (region: string | undefined, config: Record<string, unknown>) => () =>
    synth({ bundling: false, ...(region ? { env: { region } } : {}), config }).cleanup();
  const { apiDomain: _omit, ...withoutDomain } = chinaConfig;

  it('refuses a China region without the custom domain, saying why (ICP) and what to set', () => {
    expect(attempt('cn-northwest-1', withoutDomain)).toThrow(/wecomMailboxSync\.apiDomain: required in cn-northwest-1: .*ICP/);
  });

  it('allowChinaWithoutCustomDomain downgrades the refusal to a loud synth warning (reconcile-only until the filing is done)', () => {
    const t = synth({ bundling: false, env: { region: 'cn-north-1' }, config: { ...withoutDomain, allowChinaWithoutCustomDomain: true } });
    try {
      expect(() => Annotations.fromStack(t.stack).hasNoWarning('*', Match.anyValue())).toThrow(); // the matcher used above sees warnings
      Annotations.fromStack(t.stack).hasWarning('*', Match.stringLikeRegexp('cn-north-1 without apiDomain: WeCom callbacks and Graph notifications cannot reach this API'));
      expect(t.json.Outputs!.CallbackUrl!.Value).toEqual(expect.objectContaining({ 'Fn::Join': expect.anything() })); // the execute-api endpoint
    } finally {
      t.cleanup();
    }
  });

  it('refuses a certificate from another region or partition', () => {
    const foreign = { ...chinaConfig, apiDomain: { domainName: 'wecom.example.cn', certificateArn: `arn:aws:acm:us-east-1:${ACCOUNT}:certificate/abc` } };
    expect(attempt('cn-north-1', foreign)).toThrow(/apiDomain\.certificateArn: must be a certificate in the deploy region cn-north-1 \(partition aws-cn\), not us-east-1 \(aws\)/);
  });

  it('refuses sensitive fields processed outside mainland China without crossBorderApproved, naming the fields and the region', () => {
    const global = { ...chinaConfig, apiDomain: undefined };
    expect(attempt('eu-west-1', global)).toThrow(/syncProfile\.fields: mobile would be processed in region eu-west-1, outside mainland China/);
    expect(attempt('ap-east-1', global)).toThrow(/mobile would be processed in region ap-east-1/); // Hong Kong is not mainland China
    expect(attempt(undefined, global)).toThrow(/mobile would be processed in an unknown region/);
    const approved = { ...global, syncProfile: { ...chinaConfig.syncProfile, crossBorderApproved: true } };
    expect(attempt('eu-west-1', approved)).not.toThrow();
  });
});
