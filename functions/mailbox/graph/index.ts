/**
 * Microsoft 365 through Microsoft Graph: the provider descriptor (mailbox/provider.ts), and
 * the one place a Graph deployment is built — the worker, the health and subscriptions
 * functions, the CLI and the local stack all get their adapter from `graph.create`.
 *
 * Modules: config.ts (clouds, scope, credentials) · client.ts (transport, token) · wire.ts
 * (JSON ↔ MailboxAccount) · directory.ts (the adapter) · notifications.ts (the push receiver) · delta.ts (the delta read,
 * catch-up) · subscriptions.ts (the push channel) · health.ts (probes) · csv.ts (the
 * Microsoft 365 import template).
 */
import { log } from '../../core/log';
import { MailboxError } from '../directory';
import type { FeedUpkeepResult, MailboxProvider } from '../provider';
import { catchUp } from './delta';
import { graphNotifications } from './notifications';
import { GraphClient } from './client';
import { GRAPH_CLOUDS, GRAPH_SECRET_ENV, graphCapabilities, graphCredentials } from './config';
import { GraphDirectory } from './directory';
import { tokenProbe } from '../token-probe';
import { graphSubscriptionProbe } from './health';
import { ensureGraphSubscriptions } from './subscriptions';

export const graph: MailboxProvider = {
  name: 'graph',
  title: 'Microsoft 365 (Microsoft Graph)',
  capabilities: (config) => graphCapabilities(config.graph),
  secretEnv: GRAPH_SECRET_ENV,
  notifications: graphNotifications,

  create(config, secret, options = {}) {
    const creds = graphCredentials(secret);
    const settings = config.graph;
    const now = options.now ?? (() => new Date());
    const client = new GraphClient({
      ...creds,
      cloud: GRAPH_CLOUDS[settings.cloud],
      ...(settings.apiBase ? { apiBase: settings.apiBase } : {}),
      ...(settings.tokenUrl ? { tokenUrl: settings.tokenUrl } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}),
      now,
    });
    const directory = new GraphDirectory({
      ...creds,
      client,
      domain: config.mailDomain,
      ...(settings.usageLocation ? { usageLocation: settings.usageLocation } : {}),
    });
    const capabilities = graphCapabilities(settings);
    const push = capabilities.changes === 'push';

    const ensurePush = () => {
      const url = settings.notificationUrl;
      if (!url) throw new MailboxError('SYNC_CONFIG.graph.notificationUrl is not set: no subscription to changes', false, 'MissingConfig', undefined, 'invalid');
      if (!creds.clientState) throw new MailboxError('mailbox secret lacks clientState (Microsoft Graph subscriptions)', false, 'MissingSecret', undefined, 'auth');
      // The receiver serves lifecycle notifications on the same URL.
      return ensureGraphSubscriptions(directory, { notificationUrl: url, lifecycleNotificationUrl: url, clientState: creds.clientState, now });
    };
    const cursor = options.feed?.cursor;
    const enqueue = options.feed?.enqueue;
    const runCatchUp = () => (cursor && enqueue ? catchUp(client, { cursor, enqueue, now }) : undefined);

    return {
      directory,
      capabilities,
      health: (o = {}) => [
        tokenProbe('graph-token', client),
        ...(push
          ? [graphSubscriptionProbe({ listSubscriptions: () => directory.listSubscriptions(), ...(settings.notificationUrl ? { notificationUrl: settings.notificationUrl } : {}), ...o })]
          : []),
      ],
      feed: {
        kind: capabilities.changes,
        async upkeep() {
          const result: FeedUpkeepResult = { kind: capabilities.changes };
          if (push) result.subscription = await ensurePush();
          // Behind push the catch-up finds what a lost or refused notification would have said.
          const caught = await runCatchUp();
          if (caught) result.caughtUp = caught;
          else result.skipped = 'delta catch-up not wired (no cursor store or queue)';
          return result;
        },
        async onLifecycle(message) {
          if (message.hint === 'graph.lifecycle.missed') await runCatchUp();
          if (!push) log.warn('graph lifecycle notice without a push feed: ignored', { hint: message.hint });
          else if (!settings.notificationUrl) log.warn('graph lifecycle notice but no SYNC_CONFIG.graph.notificationUrl', { hint: message.hint });
          else await ensurePush();
        },
      },
    };
  },
};
