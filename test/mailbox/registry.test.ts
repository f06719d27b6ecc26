/**
 * The provider registry (functions/mailbox/providers.ts), walked the way unstorage walks its
 * drivers: every configurable name has an entry, every implemented provider loads under its
 * own name and has a conformance run in this folder, a planned or unknown one is refused
 * naming what is implemented.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, MAILBOX_PROVIDER_NAMES, parseRuntimeConfig } from '../../functions/config/runtime';
import { loadMailboxProvider, mailboxProviderNames, mailboxSecretFromEnv } from '../../functions/mailbox/providers';
import { loadNotificationReceiver, receiverSecretFromEnv } from '../../functions/mailbox/receivers';

describe('mailbox provider registry', () => {
  it('covers every name the config accepts', () => {
    expect(mailboxProviderNames().sort()).toEqual([...MAILBOX_PROVIDER_NAMES].sort());
    expect(mailboxProviderNames('implemented')).toContain('graph');
  });

  it.each(mailboxProviderNames('implemented'))('%s: loads under its own name, builds from a config, and runs the conformance suite', async (name) => {
    const provider = await loadMailboxProvider(name);
    expect(provider.name).toBe(name);
    const config = parseRuntimeConfig({ provider: name, mailDomain: 'example.com' });
    const env = Object.fromEntries(Object.values(provider.secretEnv).map((v) => [v, `value-of-${v}`]));
    const secret = mailboxSecretFromEnv(provider, { ...env, MAILBOX_WEBHOOK_SECRET: 'w' });
    const connection = provider.create(config, secret);
    expect(connection.directory.provider).toBe(name);
    expect(connection.capabilities).toEqual(provider.capabilities(config));
    expect(connection.feed.kind).toBe(connection.capabilities.changes);
    expect(existsSync(join(import.meta.dirname, `${name}.test.ts`)), `test/mailbox/${name}.test.ts runs mailboxConformance`).toBe(true);
  });

  it.each(mailboxProviderNames('planned'))('%s: planned, refused naming the implemented ones', async (name) => {
    await expect(loadMailboxProvider(name)).rejects.toThrow(ConfigError);
    await expect(loadMailboxProvider(name)).rejects.toThrow(/planned, not implemented yet \(implemented: graph(, \w+)*\)/);
  });

  it.each(MAILBOX_PROVIDER_NAMES)('%s: the light receiver table (mailbox-events) agrees with the full descriptor', async (name) => {
    const receiver = await loadNotificationReceiver(name);
    if (!mailboxProviderNames('implemented').includes(name)) return void expect(receiver).toBeUndefined();
    const provider = await loadMailboxProvider(name);
    expect(receiver).toBe(provider.notifications);
    const stateEnv = provider.secretEnv.clientState;
    const env = { MAILBOX_WEBHOOK_SECRET: 'w', ...(stateEnv ? { [stateEnv]: 'echoed' } : {}) };
    expect(receiverSecretFromEnv(name, env)).toEqual({ webhookSecret: 'w', ...(stateEnv ? { clientState: 'echoed' } : {}) });
    expect(() => receiverSecretFromEnv(name, {})).toThrow(/missing configuration: MAILBOX_WEBHOOK_SECRET/);
  });

  it('an unknown name is refused', async () => {
    await expect(loadMailboxProvider('lotus-notes')).rejects.toThrow(/unknown mailbox provider 'lotus-notes'/);
  });

  it('a local secret names the missing variables, never a value', async () => {
    const provider = await loadMailboxProvider('graph');
    expect(() => mailboxSecretFromEnv(provider, { GRAPH_TENANT_ID: 'tenant-secret-value' })).toThrow(/GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_CLIENT_STATE, MAILBOX_WEBHOOK_SECRET/);
    expect(() => mailboxSecretFromEnv(provider, { GRAPH_TENANT_ID: 'tenant-secret-value' })).not.toThrow(/tenant-secret-value/);
  });
});
