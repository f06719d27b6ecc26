/**
 * The push receivers alone, by provider name: what the mailbox-events function loads. It must
 * answer Graph's validation handshake within 10 s, cold start included, so it carries no
 * adapter code (the full descriptors are in providers.ts, whose entries point back here; the
 * registry test checks the two agree).
 */
import type { MailboxProviderName } from '../config/runtime';
import type { NotificationReceiver } from './provider';

interface ReceiverEntry {
  load: () => Promise<NotificationReceiver>;
  /** Local runs: the env var of the secret the system echoes in each notification (the descriptor's `secretEnv.clientState`). */
  clientStateEnv: string;
}

/** `null`: the provider has no push receiver (it cannot push, or it is not implemented yet). */
const RECEIVERS: Readonly<Record<MailboxProviderName, ReceiverEntry | null>> = {
  // Inline comparisons, as in providers.ts: a bundle built for one provider drops the other's receiver.
  graph:
    (process.env.WECOM_SYNC_BUNDLED_PROVIDER ?? 'graph') === 'graph'
      ? { load: async () => (await import('./graph/notifications')).graphNotifications, clientStateEnv: 'GRAPH_CLIENT_STATE' }
      : null,
  google:
    (process.env.WECOM_SYNC_BUNDLED_PROVIDER ?? 'google') === 'google'
      ? { load: async () => (await import('./google/notifications')).googleNotifications, clientStateEnv: 'GOOGLE_CHANNEL_TOKEN' }
      : null,
  exmail: null,
  scim: null,
  ldap: null,
};

/** The push receiver of `name`; undefined when it has none. */
export async function loadNotificationReceiver(name: string): Promise<NotificationReceiver | undefined> {
  return (RECEIVERS as Record<string, ReceiverEntry | null | undefined>)[name]?.load();
}

/** Local runs: the receiver's part of the mailbox secret from env vars; names what is missing, never a value. */
export function receiverSecretFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): { webhookSecret: string; clientState?: string } {
  if (!env.MAILBOX_WEBHOOK_SECRET) throw new Error('missing configuration: MAILBOX_WEBHOOK_SECRET');
  const stateEnv = (RECEIVERS as Record<string, ReceiverEntry | null | undefined>)[name]?.clientStateEnv;
  const clientState = stateEnv ? env[stateEnv] : undefined;
  return { webhookSecret: env.MAILBOX_WEBHOOK_SECRET, ...(clientState ? { clientState } : {}) };
}
