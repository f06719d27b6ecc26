/**
 * The registry of mailbox providers: name → descriptor, imported lazily so a function loads
 * only the adapter its deployment uses. Everything that needs "the mailbox system" — the
 * handlers, the CLI, the local stack — asks here with `config.provider`, never by a name of
 * its own.
 *
 * The names are the config's (`MAILBOX_PROVIDER_NAMES` in config/runtime.ts, which cannot
 * import this layer); the record below must cover each of them, so a name added there without
 * an entry here does not compile. A `planned` provider is accepted by the config schema and
 * refused here, naming the implemented ones.
 */
import { ConfigError, MAILBOX_PROVIDER_NAMES, type MailboxProviderName, type RuntimeConfig } from '../config/runtime';
import type { MailboxConnectOptions, MailboxConnection, MailboxProvider, MailboxSecret } from './provider';

type Entry = { status: 'implemented'; load: () => Promise<MailboxProvider> } | { status: 'planned'; title: string };

/**
 * A deployed function carries one adapter: lib/functions.ts builds each bundle with
 * `process.env.WECOM_SYNC_BUNDLED_PROVIDER` defined as the deployment's provider, which makes
 * the other entries' imports dead code that esbuild drops (the comparison must stay inline for
 * that). Unset — tests, the local stack, the CLI — every provider loads.
 */
const notInBundle = (name: string) => async (): Promise<never> => {
  throw new ConfigError(`provider: '${name}' is not in this function's bundle (built for '${process.env.WECOM_SYNC_BUNDLED_PROVIDER}'); deploy again after changing provider`);
};

const REGISTRY: Readonly<Record<MailboxProviderName, Entry>> = {
  graph: {
    status: 'implemented',
    load: (process.env.WECOM_SYNC_BUNDLED_PROVIDER ?? 'graph') === 'graph' ? async () => (await import('./graph/index')).graph : notInBundle('graph'),
  },
  google: {
    status: 'implemented',
    load: (process.env.WECOM_SYNC_BUNDLED_PROVIDER ?? 'google') === 'google' ? async () => (await import('./google/index')).google : notInBundle('google'),
  },
  exmail: {
    status: 'implemented',
    load: (process.env.WECOM_SYNC_BUNDLED_PROVIDER ?? 'exmail') === 'exmail' ? async () => (await import('./exmail/index')).exmail : notInBundle('exmail'),
  },
  scim: { status: 'planned', title: 'SCIM 2.0' },
  ldap: {
    status: 'implemented',
    load: (process.env.WECOM_SYNC_BUNDLED_PROVIDER ?? 'ldap') === 'ldap' ? async () => (await import('./ldap/index')).ldap : notInBundle('ldap'),
  },
};

export function mailboxProviderNames(status?: Entry['status']): MailboxProviderName[] {
  return MAILBOX_PROVIDER_NAMES.filter((n) => !status || REGISTRY[n].status === status);
}

/** The descriptor of `name`; a ConfigError (`provider: …`) for an unknown or planned one. */
export async function loadMailboxProvider(name: string): Promise<MailboxProvider> {
  const entry = (REGISTRY as Record<string, Entry | undefined>)[name];
  const implemented = mailboxProviderNames('implemented').join(', ');
  if (!entry) throw new ConfigError(`provider: unknown mailbox provider '${name}' (implemented: ${implemented})`);
  if (entry.status === 'planned') throw new ConfigError(`provider: '${name}' (${entry.title}) is planned, not implemented yet (implemented: ${implemented})`);
  return entry.load();
}

/** The configured provider, built for this deployment: what every entry point needs. */
export async function connectMailbox(config: RuntimeConfig, secret: MailboxSecret, options?: MailboxConnectOptions): Promise<MailboxConnection> {
  return (await loadMailboxProvider(config.provider)).create(config, secret, options);
}

/**
 * Local runs (no Secrets Manager): the provider's secret from env vars — its own names
 * (`secretEnv`) plus MAILBOX_WEBHOOK_SECRET. Names what is missing, never a value.
 */
export function mailboxSecretFromEnv(provider: MailboxProvider, env: NodeJS.ProcessEnv = process.env): MailboxSecret {
  const names: Record<string, string> = { ...provider.secretEnv, webhookSecret: 'MAILBOX_WEBHOOK_SECRET' };
  const missing = Object.values(names).filter((n) => !env[n]);
  if (missing.length) throw new Error(`missing configuration: ${missing.join(', ')}`);
  return Object.fromEntries(Object.entries(names).map(([key, n]) => [key, env[n]!])) as MailboxSecret;
}
