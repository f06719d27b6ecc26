/**
 * LDAP / Active Directory (on-premises Exchange, or AD as the source of truth): the provider
 * descriptor (mailbox/provider.ts) and the one place an LDAP deployment is built.
 *
 * Modules: config.ts (the AD and OpenLDAP profiles, settings, secret keys) · client.ts
 * (ldapts transport, TLS, retries, errors) · wire.ts (entries ↔ MailboxAccount, GUIDs,
 * userAccountControl, DNs) · directory.ts (the adapter; writes only with `ldap.writes`) ·
 * feed.ts (the polling change feed: uSNChanged / modifyTimestamp high-water mark, deletions by
 * comparison) · health.ts (the bind probe). No push receiver: LDAP cannot notify us.
 * Operator's guide: docs/providers/ldap.md.
 */
import { log } from '../../core/log';
import type { MailboxProvider } from '../provider';
import { LdapClient } from './client';
import { LDAP_SECRET_ENV, ldapCapabilities, ldapCredentials, ldapProfile, requireConfigured } from './config';
import { LdapDirectory } from './directory';
import { clientSource, pollChanges } from './feed';
import { ldapBindProbe } from './health';

export const ldap: MailboxProvider = {
  name: 'ldap',
  title: 'LDAP / Active Directory',
  capabilities: (config) => ldapCapabilities(config.ldap),
  secretEnv: LDAP_SECRET_ENV,

  create(config, secret, options = {}) {
    const creds = ldapCredentials(secret);
    const settings = config.ldap;
    const profile = ldapProfile(settings);
    const now = options.now ?? (() => new Date());
    const client = new LdapClient({
      urls: profile.urls,
      bindDn: creds.bindDn,
      bindPassword: creds.bindPassword,
      ...(creds.caCert ? { caCert: creds.caCert } : {}),
      startTls: settings.startTls,
      allowPlaintext: settings.allowPlaintext,
      timeoutMs: settings.timeoutMs,
      connectTimeoutMs: settings.connectTimeoutMs,
      ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
    });
    const directory = new LdapDirectory({ client, profile, writes: settings.writes, domain: config.mailDomain, pageSize: settings.pageSize });
    const capabilities = ldapCapabilities(settings);
    const source = clientSource({ profile, pageSize: settings.pageSize, users: (extra) => directory.users(extra), client });
    const feedOptions = options.feed;

    return {
      directory,
      capabilities,
      health: () => [ldapBindProbe(client, profile)],
      feed: {
        kind: 'poll',
        async upkeep() {
          if (!feedOptions?.cursor || !feedOptions.enqueue) return { kind: 'poll', skipped: 'polling not wired (no cursor store or queue)' };
          requireConfigured(profile);
          return pollChanges(source, {
            profile,
            feed: settings.feed,
            cursor: feedOptions.cursor,
            enqueue: feedOptions.enqueue,
            ...(feedOptions.known ? { known: feedOptions.known } : {}),
            now,
          });
        },
        async onLifecycle(message) {
          // LDAP has no push channel, so there are no lifecycle notices to act on.
          log.warn('ldap: lifecycle notice ignored (no push channel)', { hint: message.hint });
        },
      },
    };
  },
};
