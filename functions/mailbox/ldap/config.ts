/**
 * LDAP / Active Directory: the two schema profiles and everything that follows from the
 * runtime settings (`SYNC_CONFIG.ldap`, functions/config/runtime.ts) — which attribute holds
 * what, how "disabled" is read and written, which attribute is the feed's high-water mark —
 * plus the secret's keys and the capabilities. One table per profile, so an attribute name is
 * written once.
 *
 * Facts relied on (sources in docs/providers/ldap.md):
 * - AD: `objectGUID` is the immutable id (16 bytes, shown with the first three fields
 *   little-endian: wire.ts); `employeeID` is free for the link; disabled is bit 0x2
 *   (ACCOUNTDISABLE) of `userAccountControl`; `uSNChanged` rises on every change a DC applies
 *   (not replicated: per DC; `highestCommittedUSN` on the rootDSE); a deleted object leaves the
 *   tree for the Deleted Objects container, so the feed finds deletions by comparing ids.
 * - OpenLDAP: `entryUUID` (RFC 4530) is the immutable id; inetOrgPerson's `employeeNumber`
 *   holds the link; `modifyTimestamp` (one-second resolution) is the feed's mark and `entryCSN`
 *   (microseconds) tells two changes within one second apart; slapo-ppolicy's
 *   `pwdAccountLockedTime: 000001010000Z` is "locked permanently, only an administrator
 *   unlocks", i.e. disabled.
 */
import type { RuntimeConfig } from '../../config/runtime';
import { MailboxError } from '../directory';
import type { MailboxCapabilities, MailboxSecret } from '../provider';

export type LdapSettings = RuntimeConfig['ldap'];
export type LdapSchemaName = LdapSettings['schema'];

/** The port fields an attribute can carry (the keys of `SYNC_CONFIG.ldap.attributes`). */
export interface LdapAttributeMap {
  /** The link to the WeCom userid. */
  employeeId: string;
  /** The immutable id. */
  id: string;
  email: string;
  displayName: string;
  mobile: string;
  telephone: string;
  jobTitle: string;
  /** The department attribute (used when department.from is 'attribute'). */
  department: string;
  /** Absent: the profile has no such attribute (OpenLDAP), the port field stays unknown. */
  mailNickname?: string;
}

export interface LdapProfileDefaults {
  title: string;
  attributes: LdapAttributeMap;
  userFilter: string;
  /** How the id attribute is stored: AD's binary GUID or a UUID string. */
  idKind: 'guid' | 'uuid';
  /** The feed's high-water mark: a per-DC sequence number, or a timestamp. */
  marker: { attribute: string; kind: 'usn' | 'time' };
  /** Tells two changes with one marker apart (OpenLDAP: two changes in one second); absent: the marker does. */
  changeKey?: string;
  /** Disabled: AD's userAccountControl bit, or an attribute holding a value. */
  disabled: { kind: 'uac' } | { kind: 'attribute'; attribute: string; value?: string };
  /** The RDN attribute of entries we create (its value: the address's local part). */
  rdn: string;
  objectClasses: string[];
  /** Exchange's recipient type (AD): shared, room and equipment mailboxes are not people. */
  recipientType?: string;
  /** Read when the display name is empty. */
  nameFallback: string;
}

export const LDAP_PROFILES: Readonly<Record<LdapSchemaName, LdapProfileDefaults>> = {
  ad: {
    title: 'Active Directory',
    attributes: {
      employeeId: 'employeeID',
      id: 'objectGUID',
      email: 'mail',
      displayName: 'displayName',
      mobile: 'mobile',
      telephone: 'telephoneNumber',
      jobTitle: 'title',
      department: 'department',
      mailNickname: 'mailNickname',
    },
    // Users only: computers are objectClass=user too, but objectCategory=computer.
    userFilter: '(&(objectCategory=person)(objectClass=user))',
    idKind: 'guid',
    marker: { attribute: 'uSNChanged', kind: 'usn' },
    disabled: { kind: 'uac' },
    rdn: 'cn',
    objectClasses: ['top', 'person', 'organizationalPerson', 'user'],
    recipientType: 'msExchRecipientTypeDetails',
    nameFallback: 'cn',
  },
  openldap: {
    title: 'OpenLDAP (inetOrgPerson)',
    attributes: {
      employeeId: 'employeeNumber',
      id: 'entryUUID',
      email: 'mail',
      displayName: 'displayName',
      mobile: 'mobile',
      telephone: 'telephoneNumber',
      jobTitle: 'title',
      department: 'departmentNumber',
    },
    userFilter: '(objectClass=inetOrgPerson)',
    idKind: 'uuid',
    marker: { attribute: 'modifyTimestamp', kind: 'time' },
    changeKey: 'entryCSN',
    disabled: { kind: 'attribute', attribute: 'pwdAccountLockedTime', value: '000001010000Z' },
    rdn: 'uid',
    objectClasses: ['top', 'person', 'organizationalPerson', 'inetOrgPerson'],
    nameFallback: 'cn',
  },
};

/** The settings resolved against the profile: what the adapter, the feed and the probe read. */
export interface LdapProfile extends Omit<LdapProfileDefaults, 'title'> {
  schema: LdapSchemaName;
  title: string;
  /** '' when not configured: every operation then refuses (`requireConfigured`). */
  baseDn: string;
  urls: string[];
  department: { from: 'attribute' | 'ou-path'; base: string };
  createIn: string;
}

export function ldapProfile(settings: LdapSettings): LdapProfile {
  const d = LDAP_PROFILES[settings.schema];
  const baseDn = settings.baseDn ?? '';
  const overrides = Object.fromEntries(Object.entries(settings.attributes).filter(([, v]) => v !== undefined)) as Partial<LdapAttributeMap>;
  return {
    ...d,
    schema: settings.schema,
    title: d.title,
    attributes: { ...d.attributes, ...overrides },
    userFilter: settings.userFilter ?? d.userFilter,
    disabled: settings.disabled && d.disabled.kind === 'attribute' ? { kind: 'attribute', ...settings.disabled } : d.disabled,
    baseDn,
    urls: settings.urls ?? [],
    department: { from: settings.department.from, base: settings.department.base ?? baseDn },
    createIn: settings.createIn ?? baseDn,
  };
}

/** Refuse to run without the two settings only a deployment can give (the registry builds the adapter without them). */
export function requireConfigured(profile: Pick<LdapProfile, 'baseDn' | 'urls'>): void {
  const missing = [...(profile.urls.length ? [] : ['ldap.urls']), ...(profile.baseDn ? [] : ['ldap.baseDn'])];
  if (missing.length) throw new MailboxError(`SYNC_CONFIG lacks ${missing.join(', ')} (LDAP)`, false, 'MissingConfig', undefined, 'invalid');
}

/** The attributes every account read asks for. */
export function readAttributes(p: LdapProfile): string[] {
  const a = p.attributes;
  return [
    a.id,
    a.employeeId,
    a.email,
    a.displayName,
    p.nameFallback,
    a.mobile,
    a.telephone,
    a.jobTitle,
    ...(p.department.from === 'attribute' ? [a.department] : []),
    ...(a.mailNickname ? [a.mailNickname] : []),
    ...(p.disabled.kind === 'uac' ? ['userAccountControl'] : [p.disabled.attribute]),
    ...(p.recipientType ? [p.recipientType] : []),
  ].filter((v, i, all) => all.indexOf(v) === i);
}

export function ldapCapabilities(settings: LdapSettings): MailboxCapabilities {
  // No push and no server-side delta: the upkeep polls a high-water mark (feed.ts). Departments
  // are an attribute (or the OU path), not groups; AD's recycle bin is not used (restore off).
  return { groups: false, restore: false, changes: 'poll', delta: true, writes: settings.writes };
}

export interface LdapCredentials {
  /** A DN (or, for AD, a UPN such as svc-sync@corp.example.com). */
  bindDn: string;
  bindPassword: string;
  /** PEM of the CA that signed the servers' certificates (ldaps:// or StartTLS); absent: the runtime's trust store. */
  caCert?: string;
}

/**
 * Local runs: the env var of each secret key (AWS: the same keys as JSON in MAILBOX_SECRET_ARN).
 * The CA is not here — it is optional, and every key here is required by the env loader —
 * locally a private CA goes in NODE_EXTRA_CA_CERTS; in AWS it is the secret's `caCert`.
 */
export const LDAP_SECRET_ENV = {
  bindDn: 'LDAP_BIND_DN',
  bindPassword: 'LDAP_BIND_PASSWORD',
} as const;

/** What the stack writes into a new secret's fields (lib/stack.ts). */
const PLACEHOLDER = 'REPLACE_ME';

/** The LDAP keys of the mailbox secret, or an error naming the missing ones (never a value). */
export function ldapCredentials(secret: MailboxSecret): LdapCredentials {
  const missing = (['bindDn', 'bindPassword'] as const).filter((k) => typeof secret[k] !== 'string' || !secret[k]);
  if (missing.length) throw new MailboxError(`mailbox secret lacks ${missing.join(', ')} (LDAP)`, false, 'MissingSecret', undefined, 'auth');
  // The stack creates the secret with placeholders: say which are still there.
  const placeholders = (['bindDn', 'bindPassword', 'caCert'] as const).filter((k) => secret[k] === PLACEHOLDER);
  if (placeholders.length) {
    throw new MailboxError(`mailbox secret: ${placeholders.join(', ')} still ${PLACEHOLDER} (LDAP; delete caCert to use the public trust store)`, false, 'MissingSecret', undefined, 'auth');
  }
  if (secret.caCert && !/-----BEGIN CERTIFICATE-----/.test(secret.caCert)) {
    throw new MailboxError('mailbox secret: caCert is not a PEM certificate (-----BEGIN CERTIFICATE-----) (LDAP)', false, 'InvalidSecret', undefined, 'auth');
  }
  return {
    bindDn: secret.bindDn!,
    bindPassword: secret.bindPassword!,
    ...(secret.caCert ? { caCert: secret.caCert } : {}),
  };
}
