/**
 * LDAP's health check, run by the scheduled health function and `wecom-sync status`
 * (sync/health.ts runs it with a timeout and redacts what it throws):
 * - `ldap-bind`: a fresh connection (not the adapter's shared one) to the first server that
 *   answers, TLS verified against the configured CA, a bind with the secret's credentials and
 *   a read of the rootDSE. It fails when the route to the company network is down (VPN, Direct
 *   Connect), the certificate no longer verifies, or the bind password was changed or expired.
 *   The detail names the server URL (infrastructure, not personal data), never the bind DN.
 */
import type { MailboxHealthProbe } from '../provider';
import type { LdapClient } from './client';
import { requireConfigured, type LdapProfile } from './config';

export function ldapBindProbe(client: Pick<LdapClient, 'probe'>, profile: Pick<LdapProfile, 'baseDn' | 'urls'>): MailboxHealthProbe {
  return {
    name: 'ldap-bind',
    run: async () => {
      requireConfigured(profile);
      const { url, secure } = await client.probe();
      return { ok: true, detail: `bind ok on ${url}${secure ? ' (TLS verified)' : ' (plaintext: allowPlaintext is on)'}` };
    },
  };
}
