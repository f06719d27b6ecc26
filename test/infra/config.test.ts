/** The deployment configuration: defaults, clear errors, the config-file route, SYNC_CONFIG. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, feedSchedule, loadDeploymentConfig, PROVIDERS, parseDeploymentConfig, rateSeconds, toSyncConfig } from '../../lib/config';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { CDK_JSON } from './synth';
import { loadMailboxProvider, mailboxProviderNames } from '../../functions/mailbox/providers';
import { MAILBOX_SECRET_TEMPLATES } from '../../lib/stack';

const base = { provider: 'graph', mailDomain: 'example.com' };
const errorOf = (raw: unknown): string => {
  try {
    parseDeploymentConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};
const context = (entries: Record<string, unknown>) => ({ tryGetContext: (k: string) => entries[k] });

describe('deployment config', () => {
  it('cdk.json as shipped is valid and equals the schema defaults for what it leaves out', () => {
    const cfg = parseDeploymentConfig(CDK_JSON.context.wecomMailboxSync);
    expect(cfg.provider).toBe('graph');
    expect(cfg.wecomEgress.fixedIp).toBe(false);
    expect(cfg.alarmEmail).toBeUndefined();
    expect(parseDeploymentConfig(base)).toEqual(cfg);
  });

  it('names the field and the reason for each problem', () => {
    const msg = errorOf({ ...base, mailDomain: 'not a domain', apiThrottle: { rate: 'fast' }, logRetentionDays: 8 });
    expect(msg).toMatch(/wecomMailboxSync\.mailDomain: must be a DNS domain/);
    expect(msg).toMatch(/wecomMailboxSync\.apiThrottle\.rate: .*number/);
    expect(msg).toMatch(/wecomMailboxSync\.logRetentionDays: must be one of .* 90,/);
  });

  it('rejects providers that exist but are not implemented, saying so', () => {
    for (const p of ['scim']) {
      expect(errorOf({ ...base, provider: p })).toMatch(new RegExp(`provider '${p}' is not implemented yet; only 'graph'`));
    }
    expect(errorOf({ ...base, provider: 'lotus-notes' })).toMatch(/wecomMailboxSync\.provider/);
    // Implemented, but not without where the directory is.
    expect(errorOf({ ...base, provider: 'ldap' })).toMatch(/ldap\.urls: required with provider 'ldap'/);
  });

  it('a read-only LDAP directory is the source of truth: lifecycle.source defaults to mailbox, WeCom as the source or a field flowing into it is refused', () => {
    const ldap = { urls: ['ldaps://dc1.example.com'], baseDn: 'dc=example,dc=com' };
    expect(parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap }).lifecycle.source).toBe('mailbox');
    expect(parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap: { ...ldap, writes: true } }).lifecycle.source).toBe('wecom');
    expect(() => parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap, lifecycle: { source: 'wecom' } })).toThrow(/lifecycle\.source: must be 'mailbox' with a read-only LDAP directory/);
    expect(() => parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap, profile: { authority: { mobile: 'wecom' } } })).toThrow(/profile\.authority: mobile: 'wecom' would write the read-only LDAP directory/);
    // The same rule stops the synth, not only a cold start.
    expect(errorOf({ ...base, provider: 'ldap', ldap, vpc: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0123456789abcdef0'], securityGroupIds: ['sg-0123456789abcdef0'] }, lifecycle: { source: 'wecom' } })).toMatch(
      /wecomMailboxSync\.lifecycle\.source: must be 'mailbox' with a read-only LDAP directory/,
    );
    expect(parseDeploymentConfig({ ...base, provider: 'ldap', ldap, vpc: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0123456789abcdef0'], securityGroupIds: ['sg-0123456789abcdef0'] } }).lifecycle.source).toBe('mailbox');
    // Other providers keep WeCom as the default source.
    expect(parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com' }).lifecycle.source).toBe('wecom');
  });

  it('the mailbox secret of every implemented provider holds the keys its adapter reads', async () => {
    for (const name of mailboxProviderNames('implemented')) {
      const provider = await loadMailboxProvider(name);
      const [, placeholders, generated] = MAILBOX_SECRET_TEMPLATES[name];
      const keys = new Set([...Object.keys(placeholders), generated.key]);
      for (const key of [...Object.keys(provider.secretEnv), 'webhookSecret']) expect([name, keys.has(key)]).toEqual([name, true]);
    }
  });

  it('rejects unknown keys (a typo must not silently fall back to a default)', () => {
    expect(errorOf({ ...base, offboarding: { mode: 'delete', gracedays: 3 } })).toMatch(/offboarding.*gracedays/s);
  });

  it('validates schedule expressions as EventBridge does', () => {
    expect(() => parseDeploymentConfig({ ...base, schedules: { health: 'rate(5 minutes)', reconcile: 'cron(0 18 * * ? *)' } })).not.toThrow();
    expect(errorOf({ ...base, schedules: { health: 'rate(1 hours)' } })).toMatch(/schedules\.health: .*singular/);
    expect(errorOf({ ...base, schedules: { health: 'every 5 minutes' } })).toMatch(/schedules\.health: must be an EventBridge schedule/);
  });

  it('the audit digest runs hourly by default, on a rate() of at most a day (its period is the verification tolerance)', () => {
    expect(parseDeploymentConfig(base).schedules.auditDigest).toBe('rate(1 hour)');
    expect(parseDeploymentConfig({ ...base, schedules: { auditDigest: 'rate(15 minutes)' } }).schedules.auditDigest).toBe('rate(15 minutes)');
    expect(errorOf({ ...base, schedules: { auditDigest: 'cron(0 * * * ? *)' } })).toMatch(/schedules\.auditDigest: must be a rate\(\.\.\.\) expression/);
    expect(errorOf({ ...base, schedules: { auditDigest: 'rate(2 days)' } })).toMatch(/schedules\.auditDigest: must run at least daily/);
    expect([rateSeconds('rate(1 hour)'), rateSeconds('rate(15 minutes)'), rateSeconds('rate(1 day)'), rateSeconds('cron(0 18 * * ? *)')]).toEqual([3600, 900, 86_400, undefined]);
  });

  it('bounds the worker concurrency and checks the alarm email', () => {
    expect(errorOf({ ...base, workerReservedConcurrency: 1 })).toMatch(/workerReservedConcurrency/);
    expect(errorOf({ ...base, alarmEmail: 'ops' })).toMatch(/alarmEmail: must be an email address/);
  });

  it('missing configuration says where to put it', () => {
    expect(() => loadDeploymentConfig(context({}))).toThrow(/set the cdk.json context key 'wecomMailboxSync'/);
  });

  it('reads a JSON file named by the configFile context key, and a JSON string from -c', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wms-cfg-'));
    try {
      writeFileSync(join(dir, 'prod.json'), JSON.stringify({ ...base, mailDomain: 'corp.example.cn', wecomEgress: { fixedIp: true } }));
      const cfg = loadDeploymentConfig(context({ configFile: 'prod.json', wecomMailboxSync: base }), dir);
      expect(cfg.mailDomain).toBe('corp.example.cn');
      expect(cfg.wecomEgress.fixedIp).toBe(true);
      writeFileSync(join(dir, 'bad.json'), '{ nope');
      expect(() => loadDeploymentConfig(context({ configFile: 'bad.json' }), dir)).toThrow(/bad\.json is not valid JSON/);
      expect(() => loadDeploymentConfig(context({ configFile: 'absent.json' }), dir)).toThrow(/cannot read config file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(loadDeploymentConfig(context({ wecomMailboxSync: JSON.stringify(base) })).mailDomain).toBe('example.com');
  });

  it('cross-border: sensitive fields processed outside mainland China need crossBorderApproved, whatever the mailbox’s region', () => {
    const sensitive = { ...base, syncProfile: { fields: ['name', 'mobile', 'telephone', 'position'], targetRegion: 'CN' } };
    const refused = (region?: string) => {
      try {
        parseDeploymentConfig(sensitive, 'test', { region });
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected a refusal');
    };
    // targetRegion CN says where the mailbox is; the functions would still process the fields in us-east-1.
    expect(refused('us-east-1')).toMatch(/wecomMailboxSync\.syncProfile\.fields: mobile, telephone would be processed in region us-east-1, outside mainland China: .*crossBorderApproved: true/);
    expect(refused(undefined)).toMatch(/mobile, telephone would be processed in an unknown region/);
    const approved = { ...sensitive, syncProfile: { ...sensitive.syncProfile, crossBorderApproved: true } };
    expect(parseDeploymentConfig(approved, 'test', { region: 'us-east-1' }).syncProfile.crossBorderApproved).toBe(true);
    const inChina = { ...sensitive, apiDomain: { domainName: 'wecom.example.cn', certificateArn: 'arn:aws-cn:acm:cn-north-1:123456789012:certificate/abc-1' } };
    expect(() => parseDeploymentConfig(inChina, 'test', { region: 'cn-north-1' })).not.toThrow();
    // Non-sensitive fields are the operator's own assessment, not refused here.
    expect(() => parseDeploymentConfig(base, 'test', { region: 'us-east-1' })).not.toThrow();
  });

  it('apiDomain: a DNS name and an ACM certificate ARN', () => {
    expect(errorOf({ ...base, apiDomain: { domainName: 'not a domain', certificateArn: 'arn:aws:iam::123456789012:server-certificate/x' } })).toMatch(
      /apiDomain\.domainName: must be a DNS domain[\s\S]*apiDomain\.certificateArn: must be an ACM certificate ARN/,
    );
  });

  it('callback source check: enforce by default, a list trusted for a day, refreshed hourly; modes and bounds checked', () => {
    const cfg = parseDeploymentConfig(base);
    expect(cfg.callbackSourceCheck).toEqual({ mode: 'enforce', maxAgeHours: 24 });
    expect(cfg.schedules.callbackIps).toBe('rate(1 hour)');
    expect(parseDeploymentConfig({ ...base, callbackSourceCheck: { mode: 'report' } }).callbackSourceCheck.mode).toBe('report');
    expect(errorOf({ ...base, callbackSourceCheck: { mode: 'block' } })).toMatch(/callbackSourceCheck\.mode/);
    expect(errorOf({ ...base, callbackSourceCheck: { maxAgeHours: 1 } })).toMatch(/callbackSourceCheck\.maxAgeHours/);
    expect(JSON.stringify(toSyncConfig(cfg))).not.toMatch(/callbackSourceCheck|apiDomain/); // infrastructure, not runtime
  });

  it('Microsoft 365 operated by 21Vianet: no global Graph default, the delta feed every 5 minutes unless push is declared, and the runtime parses the same block', () => {
    const global = parseDeploymentConfig(base);
    expect(global.graph).toEqual({ cloud: 'global' });
    expect(feedSchedule(global)).toBe('rate(15 minutes)');
    const china = parseDeploymentConfig({ ...base, graph: { cloud: 'china' } });
    // No apiBase default: a 21Vianet token must never be sent to graph.microsoft.com.
    expect(china.graph.apiBase).toBeUndefined();
    expect(feedSchedule(china)).toBe('rate(5 minutes)');
    expect(feedSchedule(parseDeploymentConfig({ ...base, graph: { cloud: 'china', changeNotifications: true } }))).toBe('rate(15 minutes)');
    expect(feedSchedule(parseDeploymentConfig({ ...base, graph: { cloud: 'china' }, schedules: { subscriptions: 'rate(10 minutes)' } }))).toBe('rate(10 minutes)');
    expect(errorOf({ ...base, graph: { cloud: 'mars' } })).toMatch(/graph\.cloud/);
    const runtime = parseRuntimeConfig(JSON.parse(JSON.stringify(toSyncConfig(china, 'https://x.example/mailbox/events/graph'))));
    expect(runtime.graph.cloud).toBe('china');
  });

  it('SYNC_CONFIG has the runtime shape from the brief and no infrastructure knobs', () => {
    const cfg = parseDeploymentConfig({ ...base, syncProfile: { protectedDepartments: ['财务部'] } });
    const sync = toSyncConfig(cfg, 'https://x.example/mailbox/events/graph');
    // One settings block per mailbox provider (graph, google, …), and the runtime keys.
    const providerBlocks = Object.keys(sync).filter((k) => (PROVIDERS as readonly string[]).includes(k));
    expect(providerBlocks).toContain('graph');
    expect(Object.keys(sync).filter((k) => !providerBlocks.includes(k)).sort()).toEqual(
      ['addressRule', 'deletionGuard', 'lifecycle', 'mailDomain', 'offboarding', 'onboarding', 'profile', 'provider', 'reconcile', 'wecom'].sort(),
    );
    // WeCom's per-corp limit shared by the worker containers and one more (reconcile, the CLI).
    expect(sync.wecom.callsPerMinute).toBe(Math.floor(9_000 / (cfg.workerReservedConcurrency + 1)));
    expect(sync.profile.protectedDepartments).toEqual(['财务部']);
    expect(sync.graph.notificationUrl).toBe('https://x.example/mailbox/events/graph');
    expect(JSON.stringify(sync)).not.toMatch(/alarmEmail|apiThrottle|schedules|fixedIp/);
  });
});
