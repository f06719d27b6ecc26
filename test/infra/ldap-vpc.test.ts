/**
 * provider ldap: the directory is on the company network, so the functions that call it —
 * sync-worker, reconcile, subscriptions (the polling feed), grace-deleter, health — run in the
 * operator's VPC (imported by id: subnets and security groups from config, nothing created in
 * it), with the ENI permissions Lambda needs; the receivers (wecom-callback, mailbox-events)
 * stay outside. With wecomEgress.fixedIp the WeCom callers join that VPC instead of an egress
 * VPC of the stack's own. The config refuses ldap without urls, baseDn or vpc, with messages
 * that say what to give. Bundling is skipped (stack.test.ts bundles the same handlers);
 * cdk-nag runs on the full tree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsSolutionsChecks } from 'cdk-nag';
import { feedSchedule, parseDeploymentConfig, toSyncConfig } from '../../lib/config';
import { CALLS_MAILBOX, CALLS_WECOM, HANDLERS } from '../../lib/functions';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { CDK_JSON, asArray, flatten, identityStatements, logicalId, synth, type Synthesized } from './synth';

const VPC = { vpcId: 'vpc-0a1b2c3d4e5f60718', subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'], securityGroupIds: ['sg-0ccccccccccccccc3'] };
const LDAP = { schema: 'ad', urls: ['ldaps://dc1.corp.example.com', 'ldaps://dc2.corp.example.com'], baseDn: 'OU=People,DC=corp,DC=example,DC=com' };
const base = () => ({ ...(CDK_JSON.context.wecomMailboxSync as Record<string, unknown>), provider: 'ldap', ldap: LDAP, vpc: VPC });

const vpcConfig = (s: Synthesized, name: (typeof HANDLERS)[number]) => s.json.Resources[logicalId(s.stack, s.stack.functions[name].fn)]!.Properties.VpcConfig;

describe('provider ldap: the directory callers in the operator’s VPC', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ bundling: false, config: base() });
  }, 60_000);
  afterAll(() => s?.cleanup());

  it('exactly the functions that call the directory run in the configured subnets and security group; the receivers do not', () => {
    expect([...CALLS_MAILBOX].sort()).toEqual(['grace-deleter', 'health', 'reconcile', 'subscriptions', 'sync-worker']);
    for (const n of HANDLERS) {
      const v = vpcConfig(s, n);
      if (CALLS_MAILBOX.includes(n)) expect(v, n).toEqual({ SubnetIds: VPC.subnetIds, SecurityGroupIds: VPC.securityGroupIds });
      else expect(v, n).toBeUndefined();
    }
    expect(vpcConfig(s, 'wecom-callback')).toBeUndefined();
    expect(vpcConfig(s, 'mailbox-events')).toBeUndefined();
  });

  it('creates nothing in the network: no VPC, subnet, security group, NAT or Elastic IP of its own', () => {
    for (const type of ['AWS::EC2::VPC', 'AWS::EC2::Subnet', 'AWS::EC2::SecurityGroup', 'AWS::EC2::SecurityGroupEgress', 'AWS::EC2::NatGateway', 'AWS::EC2::EIP']) {
      s.template.resourceCountIs(type, 0);
    }
    expect(s.json.Outputs?.WecomEgressIp).toBeUndefined();
  });

  it('the VPC functions get the ENI statement Lambda needs, and only they; cdk-nag has nothing unacknowledged', () => {
    const eni = identityStatements(s.json).filter(({ statement }) => statement.Sid === 'VpcNetworkInterfaces');
    expect(eni.flatMap((e) => e.roles).sort()).toEqual(CALLS_MAILBOX.map((n) => logicalId(s.stack, s.stack.functions[n].role)).sort());
    for (const { statement } of eni) for (const a of asArray(statement.Action)) expect(a).toMatch(/^ec2:(Create|Describe|Delete|Assign|Unassign)\w+$/);
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
    expect(flatten(identityStatements(s.json).map(({ statement }) => statement.Action))).not.toMatch(/ec2:\*/);
  });

  it('SYNC_CONFIG carries the ldap settings; the feed polls every 5 minutes; the mailbox secret asks for the bind account and the CA', () => {
    const env = s.json.Resources[logicalId(s.stack, s.stack.functions.subscriptions.fn)]!.Properties.Environment.Variables;
    expect(JSON.stringify(env.SYNC_CONFIG)).toContain('ldaps://dc1.corp.example.com');
    const rule = Object.values(s.json.Resources).find((r) => r.Type === 'AWS::Events::Rule' && String(r.Properties?.Description).startsWith('mailbox change feed'));
    expect(rule?.Properties.ScheduleExpression).toBe('rate(5 minutes)');
    const secret = Object.values(s.json.Resources).find((r) => r.Type === 'AWS::SecretsManager::Secret' && String(r.Properties?.Description).includes('LDAP'));
    expect(JSON.parse(secret!.Properties.GenerateSecretString.SecretStringTemplate)).toEqual({ bindDn: 'REPLACE_ME', bindPassword: 'REPLACE_ME', caCert: 'REPLACE_ME' });
    expect(secret!.Properties.GenerateSecretString.GenerateStringKey).toBe('webhookSecret');
  });
});

describe('provider ldap with wecomEgress.fixedIp: the WeCom callers join the operator’s VPC', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ bundling: false, config: { ...base(), wecomEgress: { fixedIp: true } } });
  }, 60_000);
  afterAll(() => s?.cleanup());

  it('directory and WeCom callers in the configured subnets, no egress VPC of the stack’s own, receivers outside', () => {
    for (const n of HANDLERS) {
      const v = vpcConfig(s, n);
      if (CALLS_MAILBOX.includes(n) || CALLS_WECOM.includes(n)) expect(v, n).toEqual({ SubnetIds: VPC.subnetIds, SecurityGroupIds: VPC.securityGroupIds });
      else expect(v, n).toBeUndefined();
    }
    s.template.resourceCountIs('AWS::EC2::VPC', 0);
    s.template.resourceCountIs('AWS::EC2::EIP', 0);
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
  });
});

describe('provider ldap: the deployment config', () => {
  const raw = (over: Record<string, unknown>) => ({ provider: 'ldap', mailDomain: 'example.com', ldap: LDAP, vpc: VPC, ...over });

  it('needs urls, baseDn and vpc, and says what to give', () => {
    expect(() => parseDeploymentConfig(raw({ ldap: { schema: 'ad' }, vpc: undefined }))).toThrow(
      /ldap\.urls: required with provider 'ldap'[\s\S]*ldap\.baseDn: required[\s\S]*vpc: required with provider 'ldap': the functions that read the directory run in a VPC/,
    );
  });

  it('refuses malformed network ids and URLs, and AD writes over plain ldap://', () => {
    expect(() => parseDeploymentConfig(raw({ vpc: { ...VPC, subnetIds: ['subnet-xyz'] } }))).toThrow(/vpc\.subnetIds\.0: must be a subnet id/);
    expect(() => parseDeploymentConfig(raw({ vpc: { ...VPC, securityGroupIds: [] } }))).toThrow(/vpc\.securityGroupIds: at least one security group/);
    expect(() => parseDeploymentConfig(raw({ vpc: { ...VPC, vpcId: 'vpc1' } }))).toThrow(/vpc\.vpcId: must be a VPC id/);
    expect(() => parseDeploymentConfig(raw({ ldap: { ...LDAP, urls: ['https://dc1'] } }))).toThrow(/ldap\.urls\.0: must be ldap:\/\/host/);
    expect(() => parseDeploymentConfig(raw({ ldap: { ...LDAP, urls: ['ldap://dc1.corp.example.com'], writes: true } }))).toThrow(/AD sets the initial password .* only over an encrypted connection/);
    expect(() => parseDeploymentConfig(raw({ ldap: { ...LDAP, urls: ['ldap://dc1.corp.example.com'], writes: true, startTls: true } }))).not.toThrow();
  });

  it('its SYNC_CONFIG parses at cold start as the same ldap settings, defaults filled', () => {
    const cfg = parseDeploymentConfig(raw({}));
    expect(feedSchedule(cfg)).toBe('rate(5 minutes)');
    const runtime = parseRuntimeConfig(JSON.parse(JSON.stringify(toSyncConfig(cfg, 'https://api.example.com/mailbox/events/graph'))));
    expect(runtime.provider).toBe('ldap');
    expect(runtime.ldap).toMatchObject({ schema: 'ad', urls: LDAP.urls, baseDn: LDAP.baseDn, writes: false, feed: { overlapSeconds: 60, deletionSweepMinutes: 60 } });
  });
});
