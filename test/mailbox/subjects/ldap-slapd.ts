/**
 * LDAP (OpenLDAP profile) under the conformance suite: the adapter as the product builds it
 * (the provider descriptor from a runtime config: mailbox/ldap/index.ts, `writes: true`) against
 * a REAL slapd (test/support/slapd.ts), one server per test file and a fresh `ou=` subtree per
 * test as the adapter's baseDn. It binds as an ordinary entry with write rights (cn=sync), not
 * the rootdn. The wire is observed through slapd's own auditlog (the attributes each write
 * named, by that modifier), and a storm is an LDAP-speaking proxy that answers a share of
 * requests with busy / unavailable without forwarding them (test/support/ldap-busy-proxy.ts).
 * The adapter retries twice and does not sleep, so a storm also reaches the caller's retry.
 */
import { randomBytes } from 'node:crypto';
import { Attribute, Change, type Client } from 'ldapts';
import { parseRuntimeConfig } from '../../../functions/config/runtime';
import { ldapProfile } from '../../../functions/mailbox/ldap/config';
import type { LdapDirectory } from '../../../functions/mailbox/ldap/directory';
import { ldap } from '../../../functions/mailbox/ldap/index';
import { wireFields } from '../../../functions/mailbox/ldap/wire';
import type { MailboxConnection } from '../../../functions/mailbox/provider';
import { startBusyProxy } from '../../support/ldap-busy-proxy';
import { parseAuditLog, PEOPLE, startSlapd, SYNC_DN, SYNC_PW, type Slapd } from '../../support/slapd';
import type { MailboxUnderTest } from '../conformance';

export const LDAP_PAGE_SIZE = 3;

let server: Promise<Slapd> | undefined;
let adminClient: Promise<Client> | undefined;

/** One slapd for the test file (started on first use). */
export function sharedSlapd(): Promise<Slapd> {
  return (server ??= startSlapd());
}

export async function stopSharedSlapd(): Promise<void> {
  const s = server;
  server = undefined;
  adminClient = undefined;
  if (s) await (await s).stop();
}

export function sharedAdmin(): Promise<Client> {
  return (adminClient ??= sharedSlapd().then((s) => s.admin()));
}

/** A fresh subtree for one test: `ou=<name>,ou=people,dc=example,dc=com`. */
export async function freshBase(prefix = 't'): Promise<string> {
  const ou = `${prefix}-${randomBytes(4).toString('hex')}`;
  const base = `ou=${ou},${PEOPLE}`;
  await (await sharedAdmin()).add(base, { objectClass: ['organizationalUnit'], ou });
  return base;
}

export interface LdapConnectOverrides {
  urls?: string[];
  ldap?: Record<string, unknown>;
  secret?: Record<string, string>;
}

/** The descriptor's connection for an OpenLDAP subtree of the shared slapd. */
export async function ldapConnection(base: string, o: LdapConnectOverrides = {}): Promise<MailboxConnection & { config: ReturnType<typeof parseRuntimeConfig> }> {
  const slapd = await sharedSlapd();
  const config = parseRuntimeConfig({
    provider: 'ldap',
    mailDomain: 'example.com',
    ldap: { schema: 'openldap', urls: o.urls ?? [slapd.url], baseDn: base, writes: true, allowPlaintext: true, pageSize: LDAP_PAGE_SIZE, ...o.ldap },
  });
  const connection = ldap.create(config, { bindDn: SYNC_DN, bindPassword: SYNC_PW, webhookSecret: 'unused', ...o.secret }, { sleep: async () => undefined, maxRetries: 2 });
  return { ...connection, config };
}

export function ldapOnSlapd(): () => Promise<MailboxUnderTest> {
  return async () => {
    const slapd = await sharedSlapd();
    const admin = await sharedAdmin();
    const base = await freshBase();
    const proxy = await startBusyProxy({ host: '127.0.0.1', port: Number(new URL(slapd.url).port) });
    const { directory, config } = await ldapConnection(base, { urls: [proxy.url] });
    const fields = wireFields(ldapProfile(config.ldap));
    const entryDn = async (id: string) => (await admin.search(base, { filter: `(entryUUID=${id})`, attributes: ['1.1'] })).searchEntries[0]!.dn;
    let seen = slapd.auditLog().length;
    return {
      directory,
      probe: {
        writes() {
          const text = slapd.auditLog();
          const fresh = text.slice(seen);
          seen = text.length;
          return parseAuditLog(fresh)
            .filter((r) => (r.op === 'add' || r.op === 'modify') && r.modifier === SYNC_DN && r.dn.toLowerCase().endsWith(base.toLowerCase()))
            .map((r) => ({ op: r.op === 'add' ? ('create' as const) : ('update' as const), fields: [...new Set(r.attributes.flatMap((a) => (fields[a] ? [fields[a]!] : [])))] }));
        },
        async adminSetMobile(id, mobile) {
          await admin.modify(await entryDn(id), new Change({ operation: 'replace', modification: new Attribute({ type: 'mobile', values: [mobile] }) }));
        },
        async adminCreate(email) {
          const uid = `other-${randomBytes(3).toString('hex')}`;
          await admin.add(`uid=${uid},${base}`, { objectClass: ['inetOrgPerson'], uid, cn: 'Someone else', sn: 'else', mail: email });
        },
        async stored() {
          const { searchEntries } = await admin.search(base, { filter: '(objectClass=inetOrgPerson)', attributes: ['entryUUID', 'employeeNumber', 'pwdAccountLockedTime', 'title'] });
          const one = (v: unknown) => (Array.isArray(v) ? (v[0] as string | undefined) : (v as string | undefined));
          return searchEntries.map((e) => ({ id: one(e.entryUUID)!, employeeId: one(e.employeeNumber) ?? null, enabled: !one(e.pwdAccountLockedTime), jobTitle: one(e.title) ?? null }));
        },
        async members() {
          return [];
        },
        storm(rate) {
          proxy.setRate(rate);
        },
      },
      close: async () => {
        await (directory as LdapDirectory).close();
        await proxy.close();
      },
    };
  };
}
