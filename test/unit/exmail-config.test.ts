/**
 * Exmail in the configuration: the `exmail` block of SYNC_CONFIG and of the deployment config
 * (one schema), the feed's default schedule, the registry entry, the secret's keys.
 */
import { describe, expect, it } from 'vitest';
import { feedSchedule, parseDeploymentConfig, toSyncConfig } from '../../lib/config';
import { ConfigError, parseRuntimeConfig } from '../../functions/config/runtime';
import { exmail } from '../../functions/mailbox/exmail/index';
import { loadMailboxProvider, mailboxSecretFromEnv } from '../../functions/mailbox/providers';

describe('Exmail configuration', () => {
  it('runtime defaults: the public API, the log read by whole Beijing days, 30 days a request', () => {
    expect(parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com' }).exmail).toEqual({
      apiBase: 'https://api.exmail.qq.com',
      logType: 0,
      logMaxRangeDays: 30,
      logOverlapSeconds: 120,
      logLookbackDays: 90,
      logUtcOffsetMinutes: 480,
      indexTtlSeconds: 300,
      pageSize: 500,
      phoneRegion: 'CN',
    });
    expect(() => parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { logMaxRangeDays: 0 } })).toThrow(/exmail\.logMaxRangeDays/);
    expect(() => parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { apibase: 'x' } })).toThrow(ConfigError);
  });

  it('deployment: accepted, polled every 5 minutes unless configured, and SYNC_CONFIG round-trips', () => {
    const cfg = parseDeploymentConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { logOverlapSeconds: 300 } });
    expect(feedSchedule(cfg)).toBe('rate(5 minutes)');
    expect(feedSchedule(parseDeploymentConfig({ provider: 'exmail', mailDomain: 'example.com', schedules: { subscriptions: 'rate(2 minutes)' } }))).toBe('rate(2 minutes)');
    const runtime = parseRuntimeConfig(JSON.parse(JSON.stringify(toSyncConfig(cfg, 'https://api.example.com/mailbox/events/graph'))));
    expect(runtime.provider).toBe('exmail');
    expect(runtime.exmail.logOverlapSeconds).toBe(300);
  });

  it('the registry loads it under its own name; it cannot push; the local secret names its variables, never a value', async () => {
    const provider = await loadMailboxProvider('exmail');
    expect(provider).toBe(exmail);
    expect(provider.notifications).toBeUndefined();
    expect(provider.capabilities(parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com' }))).toEqual({ groups: false, restore: false, changes: 'poll', delta: true });
    expect(() => mailboxSecretFromEnv(provider, { EXMAIL_CORP_ID: 'corp-value' })).toThrow(/EXMAIL_CONTACTS_SECRET, EXMAIL_LOG_SECRET, MAILBOX_WEBHOOK_SECRET/);
    expect(() => mailboxSecretFromEnv(provider, { EXMAIL_CORP_ID: 'corp-value' })).not.toThrow(/corp-value/);
    const config = parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com' });
    expect(() => exmail.create(config, { webhookSecret: 'w', corpId: 'c' })).toThrow(/mailbox secret lacks contactsSecret \(Tencent Exmail\)/);
  });
});
