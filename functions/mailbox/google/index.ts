/**
 * Google Workspace through the Admin SDK Directory API: the provider descriptor
 * (mailbox/provider.ts), and the one place a Google deployment is built — the worker, the
 * health and subscriptions functions, the CLI and the local stack all get their adapter from
 * `google.create`.
 *
 * Modules: config.ts (settings, scopes, credentials) · client.ts (transport, the JWT grant) ·
 * wire.ts (JSON ↔ MailboxAccount) · directory.ts (the adapter) · notifications.ts (the push
 * receiver) · channels.ts (users.watch channels) · feed.ts (the catch-up digest, and the feed
 * state that also remembers the channels) · health.ts (probes).
 *
 * What is pushed and what is polled: users.watch channels push add / update / delete /
 * undelete of any user (one channel per event, replaced before their 6 hours run out by the
 * scheduled upkeep); the upkeep also runs the catch-up listing (at most every
 * `catchUpIntervalMinutes`) for whatever a lost notification would have said. With
 * `changeNotifications: false` the catch-up alone is the feed (kind `delta`).
 */
import { log } from '../../core/log';
import { MailboxError } from '../directory';
import type { FeedUpkeepResult, MailboxProvider } from '../provider';
import { channelApi, ensureChannels } from './channels';
import { GoogleClient } from './client';
import { GOOGLE_SECRET_ENV, googleCapabilities, googleCredentials } from './config';
import { GoogleDirectory } from './directory';
import { catchUp, feedStateStore, type FeedState } from './feed';
import { tokenProbe } from '../token-probe';
import { googleChannelProbe } from './health';
import { googleNotifications } from './notifications';

export const google: MailboxProvider = {
  name: 'google',
  title: 'Google Workspace (Admin SDK Directory API)',
  capabilities: (config) => googleCapabilities(config.google),
  secretEnv: GOOGLE_SECRET_ENV,
  notifications: googleNotifications,

  create(config, secret, options = {}) {
    const creds = googleCredentials(secret);
    const settings = config.google;
    const now = options.now ?? (() => new Date());
    const client = new GoogleClient({
      clientEmail: creds.clientEmail,
      privateKey: creds.privateKey,
      adminEmail: creds.adminEmail,
      ...(settings.apiBase ? { apiBase: settings.apiBase } : {}),
      ...(settings.tokenUrl ? { tokenUrl: settings.tokenUrl } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}),
      now,
    });
    const customer = creds.customerId ?? settings.customer;
    const directory = new GoogleDirectory({ client, domain: config.mailDomain, customer, link: settings.link, ...(settings.orgUnits ? { orgUnits: settings.orgUnits } : {}) });
    const capabilities = googleCapabilities(settings);
    const push = capabilities.changes === 'push';
    const store = feedStateStore(options.feed?.cursor);
    const enqueue = options.feed?.enqueue;
    const api = channelApi(client, customer);

    async function keepChannels(state: FeedState): Promise<FeedUpkeepResult['subscription']> {
      const address = settings.notificationUrl;
      if (!address) throw new MailboxError('SYNC_CONFIG.google.notificationUrl is not set: no users.watch channel', false, 'MissingConfig', undefined, 'invalid');
      if (!creds.clientState) throw new MailboxError('mailbox secret lacks clientState (the users.watch channel token)', false, 'MissingSecret', undefined, 'auth');
      const r = await ensureChannels(api, state.channels, { address, token: creds.clientState, events: settings.watchEvents, ttlSeconds: settings.channelTtlSeconds, now });
      state.channels = r.channels;
      // Saved at once: a catch-up failing below must not forget channels that exist.
      await store.save(state);
      return r.status;
    }

    async function stopAll(state: FeedState): Promise<void> {
      for (const c of state.channels) await api.stop(c).catch((err: unknown) => log.warn('google channel stop failed', { channelId: c.id, err }));
      state.channels = [];
      await store.save(state);
    }

    async function upkeep(): Promise<FeedUpkeepResult> {
      const result: FeedUpkeepResult = { kind: capabilities.changes };
      const state = await store.load();
      if (push) result.subscription = await keepChannels(state);
      else if (state.channels.length) await stopAll(state); // push switched off: no channel left delivering
      if (!enqueue) {
        result.skipped = 'catch-up not wired (no queue)';
        return result;
      }
      const last = Date.parse(state.caughtUpAt ?? '') || 0;
      const dueMs = settings.catchUpIntervalMinutes * 60_000;
      if (state.digest && now().getTime() - last < dueMs) {
        result.skipped = `catch-up ran ${Math.round((now().getTime() - last) / 60_000)} min ago (every ${settings.catchUpIntervalMinutes} min)`;
        return result;
      }
      const r = await catchUp(client, { customer, state, enqueue, now });
      state.digest = r.digest;
      state.caughtUpAt = now().toISOString();
      await store.save(state);
      result.caughtUp = { changed: r.changed, full: r.full };
      return result;
    }

    return {
      directory,
      capabilities,
      health: (o = {}) => [
        tokenProbe('google-token', client),
        // Google cannot list channels: only the remembered ones can be checked (the state table).
        ...(push && options.feed?.cursor
          ? [googleChannelProbe({ channels: async () => (await store.load()).channels, events: settings.watchEvents, ...(settings.notificationUrl ? { address: settings.notificationUrl } : {}), ...o })]
          : []),
      ],
      feed: {
        kind: capabilities.changes,
        upkeep,
        async onLifecycle(message) {
          // Google sends no lifecycle notices; a message on the feed subject (an operator's, a
          // replay) runs the upkeep, which is idempotent.
          log.info('google feed message: running the upkeep', { hint: message.hint });
          await upkeep();
        },
      },
    };
  },
};
