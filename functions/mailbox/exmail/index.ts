/**
 * Tencent Exmail (腾讯企业邮箱): the provider descriptor (mailbox/provider.ts), and the one place
 * an Exmail deployment is built — the worker, the health and feed functions, the CLI and the
 * local stack all get their adapter from `exmail.create`.
 *
 * Modules: config.ts (capabilities, secret keys) · client.ts (transport, tokens, errcodes, on
 * core/tencent.ts) · wire.ts (member JSON ↔ MailboxAccount) · departments.ts (paths ↔ ids) ·
 * directory.ts (the adapter) · feed.ts (the operation-log poll) · health.ts (probes).
 *
 * Exmail pushes nothing (no `notifications`): the feed is the scheduled poll of the operation
 * log, `feed.upkeep()` on `schedules.subscriptions` (5 minutes by default for this provider).
 */
import { log } from '../../core/log';
import type { MailboxProvider } from '../provider';
import { ExmailClient, type ExmailClientOptions } from './client';
import { EXMAIL_CAPABILITIES, EXMAIL_SECRET_ENV, exmailCredentials } from './config';
import { ExmailDepartments } from './departments';
import { ExmailDirectory } from './directory';
import { pollOperationLog } from './feed';
import { tokenProbe } from '../token-probe';

export const exmail: MailboxProvider = {
  name: 'exmail',
  title: 'Tencent Exmail (腾讯企业邮箱)',
  capabilities: () => ({ ...EXMAIL_CAPABILITIES }),
  secretEnv: EXMAIL_SECRET_ENV,

  create(config, secret, options = {}) {
    const creds = exmailCredentials(secret);
    const settings = config.exmail;
    const now = options.now ?? (() => new Date());
    const transport: Omit<ExmailClientOptions, 'secret' | 'app'> = {
      apiBase: settings.apiBase,
      corpId: creds.corpId,
      now,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}),
      ...(settings.callsPerMinute ? { callsPerMinute: settings.callsPerMinute } : {}),
    };
    const client = new ExmailClient({ ...transport, secret: creds.contactsSecret, app: 'contacts' });
    const logClient = creds.logSecret ? new ExmailClient({ ...transport, secret: creds.logSecret, app: 'log' }) : undefined;
    const directory = new ExmailDirectory({
      client,
      departments: new ExmailDepartments(client),
      domain: config.mailDomain,
      phoneRegion: settings.phoneRegion,
      pageSize: settings.pageSize,
      indexTtlMs: settings.indexTtlSeconds * 1000,
    });
    const capabilities = { ...EXMAIL_CAPABILITIES };
    const cursor = options.feed?.cursor;
    const enqueue = options.feed?.enqueue;

    return {
      directory,
      capabilities,
      // A token request per secret, past the cache: does it work right now (an administrator
      // may reset it in the console)? Without a log secret the probe fails on purpose:
      // offboarding done in Exmail then reaches the sync only through the nightly reconcile.
      health: () => [
        tokenProbe('exmail-token', client, 'no contacts secret'),
        tokenProbe('exmail-log-token', logClient, 'no logSecret in the mailbox secret: changes made in Exmail reach the sync only through the reconcile'),
      ],
      feed: {
        kind: capabilities.changes,
        async upkeep() {
          if (!logClient) return { kind: capabilities.changes, skipped: 'no logSecret in the mailbox secret: the operation log cannot be read' };
          if (!cursor || !enqueue) return { kind: capabilities.changes, skipped: 'log poll not wired (no cursor store or queue)' };
          const r = await pollOperationLog(logClient, { ...settings, cursor, enqueue, now });
          return { kind: capabilities.changes, caughtUp: { changed: r.changed, full: r.full } };
        },
        async onLifecycle(message) {
          // Exmail has no push channel, so no lifecycle notices: nothing to renew.
          log.warn('exmail: lifecycle notice without a push channel: ignored', { hint: message.hint });
        },
      },
    };
  },
};
