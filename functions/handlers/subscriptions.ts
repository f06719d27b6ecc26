/**
 * Scheduled Lambda (EventBridge): keeps the Graph change-notification subscription on users
 * alive (create / renew / recreate). Thin: wiring from env + ensureGraphSubscriptions.
 * Fails loudly (throws) when Graph refuses, so the schedule's error metric and alarm fire.
 */
import middy from '@middy/core';
import { GraphDirectory } from '../mailbox/graph';
import { ensureGraphSubscriptions, type EnsureSubscriptionResult } from '../mailbox/subscriptions';
import { mailboxSecretFromEnv, type MailboxSecret } from './mailbox-events';

export interface SubscriptionsDeps {
  graph: Parameters<typeof ensureGraphSubscriptions>[0];
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState: string;
  now?: () => Date;
  lifetimeMinutes?: number;
  renewBeforeMinutes?: number;
}

export function createSubscriptionsHandler(deps: SubscriptionsDeps | (() => Promise<SubscriptionsDeps>)) {
  let wired: Promise<SubscriptionsDeps> | undefined;
  return middy(async (): Promise<EnsureSubscriptionResult> => {
    wired ??= typeof deps === 'function' ? deps() : Promise.resolve(deps);
    wired.catch(() => (wired = undefined));
    const d = await wired;
    return ensureGraphSubscriptions(d.graph, {
      notificationUrl: d.notificationUrl,
      ...(d.lifecycleNotificationUrl ? { lifecycleNotificationUrl: d.lifecycleNotificationUrl } : {}),
      clientState: d.clientState,
      ...(d.now ? { now: d.now } : {}),
      ...(d.lifetimeMinutes ? { lifetimeMinutes: d.lifetimeMinutes } : {}),
      ...(d.renewBeforeMinutes ? { renewBeforeMinutes: d.renewBeforeMinutes } : {}),
    });
  });
}

interface GraphRuntimeSettings {
  mailDomain?: string;
  graph?: { apiBase?: string; tokenUrl?: string; notificationUrl?: string; usageLocation?: string };
}

/** The few SYNC_CONFIG keys this function needs, read without loading the full config schema. */
function settings(): GraphRuntimeSettings {
  try {
    return JSON.parse(process.env.SYNC_CONFIG ?? '{}') as GraphRuntimeSettings;
  } catch {
    throw new Error('SYNC_CONFIG is not valid JSON');
  }
}

async function awsDeps(): Promise<SubscriptionsDeps> {
  const { loadSecretJson } = await import('../config/secrets');
  const secret = await loadSecretJson<MailboxSecret>('MAILBOX_SECRET_ARN', mailboxSecretFromEnv);
  const cfg = settings();
  const notificationUrl = cfg.graph?.notificationUrl;
  if (!notificationUrl) throw new Error('missing configuration: SYNC_CONFIG.graph.notificationUrl');
  if (!cfg.mailDomain) throw new Error('missing configuration: SYNC_CONFIG.mailDomain');
  const graph = new GraphDirectory({
    tenantId: secret.tenantId,
    clientId: secret.clientId,
    clientSecret: secret.clientSecret,
    domain: cfg.mailDomain,
    ...(cfg.graph?.apiBase ? { apiBase: cfg.graph.apiBase } : {}),
    ...(cfg.graph?.tokenUrl ? { tokenUrl: cfg.graph.tokenUrl } : {}),
  });
  // The receiver serves lifecycle notifications on the same URL.
  return { graph, notificationUrl, lifecycleNotificationUrl: notificationUrl, clientState: secret.clientState };
}

export const handler = createSubscriptionsHandler(awsDeps);
