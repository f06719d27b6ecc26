/**
 * LDAP entries ↔ the port's MailboxAccount, and the value rules of each schema.
 *
 * - Ids: AD's `objectGUID` is 16 bytes whose usual string form ("GUID") writes the first three
 *   fields little-endian: bytes 3 2 1 0 - 5 4 - 7 6 - 8 9 - 10…15 (MS-DTYP GUID; the same
 *   string as `Get-ADUser`). A search by id sends the 16 bytes back in wire order. OpenLDAP's
 *   `entryUUID` is already the string. Ids are lower-case.
 * - Every read names its attributes (config.ts readAttributes), so an absent attribute is a
 *   cleared value (null), never "unknown".
 * - Multi-valued phone attributes: the first value is read, one value is written.
 * - Phones read back as E.164 through mailbox/phone.ts.
 * - Disabled: AD `userAccountControl` bit 0x2 (ACCOUNTDISABLE; every other bit kept on write);
 *   otherwise an attribute holding a value (OpenLDAP: pwdAccountLockedTime 000001010000Z).
 * - The department from the OU path: the `ou=` RDNs between the entry and the department base,
 *   top-down, joined with '/': `uid=x,ou=研发组,ou=技术部,ou=people,dc=example,dc=com` under
 *   `ou=people,dc=example,dc=com` is 技术部/研发组. DN values are unescaped per RFC 4514.
 * - A name cannot be cleared (the port's rule); AD creates need a password, which AD only
 *   accepts over an encrypted connection (unicodePwd: the quoted password in UTF-16LE).
 */
import { Attribute, Change, EqualityFilter, type Filter } from 'ldapts';
import { MailboxError, type MailboxAccount, type MailboxAccountInput } from '../directory';
import { canonicalPhone } from '../phone';
import type { LdapProfile } from './config';
import type { LdapEntry } from './client';

// ------------------------------------------------------------------ ids

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Wire byte i of an AD GUID sits at this position of the string's hex (MS-DTYP GUID layout). */
const GUID_ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

/** AD objectGUID bytes → 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx' (lower-case). */
export function guidToString(bytes: Buffer): string {
  if (bytes.length !== 16) throw new MailboxError('LDAP: objectGUID is not 16 bytes', false, 'InvalidGuid', undefined, 'unexpected');
  const hex = GUID_ORDER.map((i) => bytes[i]!.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The GUID string → the 16 bytes AD stores (undefined when it is not a GUID). */
export function guidToBytes(id: string): Buffer | undefined {
  if (!GUID.test(id)) return undefined;
  const hex = Buffer.from(id.replace(/-/g, ''), 'hex');
  const out = Buffer.alloc(16);
  GUID_ORDER.forEach((from, to) => (out[to] = hex[from]!));
  return out;
}

/** The equality filter for an account id; undefined for a value that cannot be one (then nothing matches). */
export function idFilter(p: LdapProfile, id: string): Filter | undefined {
  if (p.idKind === 'guid') {
    const bytes = guidToBytes(id);
    return bytes ? new EqualityFilter({ attribute: p.attributes.id, value: bytes }) : undefined;
  }
  return GUID.test(id) ? new EqualityFilter({ attribute: p.attributes.id, value: id.toLowerCase() }) : undefined;
}

// ------------------------------------------------------------------ reading values

/** The entry's values of `attribute`, case-insensitively (servers answer in their own case). */
export function values(entry: LdapEntry, attribute: string): Array<string | Buffer> {
  const lc = attribute.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k.toLowerCase() !== lc || k === 'dn') continue;
    return (Array.isArray(v) ? v : [v]) as Array<string | Buffer>;
  }
  return [];
}

export function first(entry: LdapEntry, attribute: string): string | undefined {
  const v = values(entry, attribute)[0];
  if (v === undefined) return undefined;
  const s = Buffer.isBuffer(v) ? v.toString('utf8') : v;
  return s === '' ? undefined : s;
}

/** The account id of an entry as the port shows it. */
export function entryId(p: LdapProfile, entry: LdapEntry): string | undefined {
  const v = values(entry, p.attributes.id)[0];
  if (v === undefined) return undefined;
  if (p.idKind === 'guid') return guidToString(Buffer.isBuffer(v) ? v : Buffer.from(v, 'binary'));
  return (Buffer.isBuffer(v) ? v.toString('utf8') : v).toLowerCase();
}

/** userAccountControl as a number (0 when absent or not a number). */
export function userAccountControl(entry: LdapEntry): number {
  const n = Number(first(entry, 'userAccountControl'));
  return Number.isInteger(n) ? n : 0;
}

/** ADS_UF_ACCOUNTDISABLE. */
export const ACCOUNTDISABLE = 0x2;
/** ADS_UF_NORMAL_ACCOUNT: what a new AD user is. */
export const NORMAL_ACCOUNT = 0x200;

export function isDisabled(p: LdapProfile, entry: LdapEntry): boolean {
  if (p.disabled.kind === 'uac') return (userAccountControl(entry) & ACCOUNTDISABLE) !== 0;
  const d = p.disabled;
  const held = values(entry, d.attribute).map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
  return d.value === undefined ? held.length > 0 : held.some((v) => v.toLowerCase() === d.value!.toLowerCase());
}

/** The Exchange recipient types that are not a person's own mailbox: shared (4), room (16), equipment (32). */
const NOT_A_PERSON = new Set([4, 16, 32]);

/** Entry → port. */
export function toAccount(p: LdapProfile, entry: LdapEntry): MailboxAccount {
  const a = p.attributes;
  const id = entryId(p, entry);
  if (!id) throw new MailboxError(`LDAP: entry without ${a.id} (is it readable by the bind account?)`, false, 'MissingId', undefined, 'unexpected');
  const acc: MailboxAccount = { id, enabled: !isDisabled(p, entry) };
  const link = first(entry, a.employeeId);
  if (link) acc.employeeId = link;
  acc.displayName = first(entry, a.displayName) ?? first(entry, p.nameFallback) ?? null;
  acc.email = first(entry, a.email)?.toLowerCase() ?? null;
  if (a.mailNickname) acc.mailNickname = first(entry, a.mailNickname) ?? null;
  acc.mobile = canonicalPhone(first(entry, a.mobile));
  acc.telephone = canonicalPhone(first(entry, a.telephone));
  acc.jobTitle = first(entry, a.jobTitle) ?? null;
  acc.department = p.department.from === 'ou-path' ? ouPath(entry.dn, p.department.base) : (first(entry, a.department) ?? null);
  const type = p.recipientType ? Number(first(entry, p.recipientType)) : NaN;
  acc.kind = NOT_A_PERSON.has(type) ? 'shared' : 'member';
  return acc;
}

// ------------------------------------------------------------------ DNs

/** RFC 4514 DN → RDNs as [attribute, value] (unescaped), leftmost first. Multi-valued RDNs keep their first AVA. */
export function parseDn(dn: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < dn.length) {
    let type = '';
    while (i < dn.length && dn[i] !== '=') type += dn[i++];
    i++; // '='
    const bytes: number[] = [];
    let firstAva = true;
    let value: string | undefined;
    for (; i < dn.length; i++) {
      const c = dn[i]!;
      if (c === '\\' && i + 1 < dn.length) {
        const hex = dn.slice(i + 1, i + 3);
        const escaped = /^[0-9a-fA-F]{2}$/.test(hex) ? [parseInt(hex, 16)] : [...Buffer.from(dn[i + 1]!, 'utf8')];
        i += /^[0-9a-fA-F]{2}$/.test(hex) ? 2 : 1;
        if (firstAva) bytes.push(...escaped);
      } else if (c === ',' || c === ';') {
        break;
      } else if (c === '+') {
        if (firstAva) value = Buffer.from(bytes).toString('utf8');
        firstAva = false;
      } else if (firstAva) bytes.push(...Buffer.from(c, 'utf8'));
    }
    i++; // ','
    out.push([type.trim(), (value ?? Buffer.from(bytes).toString('utf8')).trim()]);
  }
  return out;
}

/** Normalized for comparison: lower-case types and values, no spaces around separators. */
function dnKey(rdns: Array<[string, string]>): string {
  return rdns.map(([t, v]) => `${t.toLowerCase()}=${v.toLowerCase()}`).join(',');
}

/** The department path of the entry's OUs under `base`; null when it sits directly under it (or elsewhere). */
export function ouPath(dn: string, base: string): string | null {
  const rdns = parseDn(dn);
  const baseRdns = parseDn(base);
  const above = rdns.slice(rdns.length - baseRdns.length);
  if (baseRdns.length > rdns.length || dnKey(above) !== dnKey(baseRdns)) return null;
  const ous = rdns
    .slice(1, rdns.length - baseRdns.length)
    .filter(([t]) => t.toLowerCase() === 'ou')
    .map(([, v]) => v)
    .reverse();
  return ous.length ? ous.join('/') : null;
}

/** RFC 4514 escaping of one RDN value. */
export function escapeDnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

// ------------------------------------------------------------------ writing values

const replace = (type: string, value: string | null | undefined) =>
  new Change({ operation: 'replace', modification: new Attribute({ type, values: value === null || value === undefined || value === '' ? [] : [value] }) });

/** AD's employeeID attribute: at most 16 characters (MS-ADA1, rangeUpper 16); a WeCom userid has up to 64. */
const AD_EMPLOYEE_ID_MAX = 16;

/** Refuses, before the write, a link AD would refuse, saying how to fix the mapping (the userid itself is not named). */
function checkLinkFits(p: LdapProfile, employeeId: string | null | undefined): void {
  if (p.schema !== 'ad' || !employeeId || p.attributes.employeeId.toLowerCase() !== 'employeeid') return;
  if (employeeId.length > AD_EMPLOYEE_ID_MAX) {
    throw new MailboxError(
      `AD: employeeID holds at most ${AD_EMPLOYEE_ID_MAX} characters and this WeCom userid has ${employeeId.length}; map the link to a longer attribute (ldap.attributes.employeeId: "employeeNumber")`,
      false,
      'InvalidInput',
      undefined,
      'invalid',
    );
  }
}

/**
 * Port → modifications: only the keys present. `replace` with no value removes the attribute
 * and is a success when it is absent, so a clear is idempotent. `enabled` is the caller's (it
 * needs the entry for AD).
 */
export function toChanges(p: LdapProfile, patch: MailboxAccountInput): Change[] {
  const a = p.attributes;
  const changes: Change[] = [];
  if (patch.employeeId !== undefined) {
    checkLinkFits(p, patch.employeeId);
    changes.push(replace(a.employeeId, patch.employeeId));
  }
  if (patch.displayName !== undefined) {
    if (patch.displayName === null || !patch.displayName.trim()) throw new MailboxError('LDAP accounts cannot have an empty displayName', false, 'InvalidInput', undefined, 'invalid');
    changes.push(replace(a.displayName, patch.displayName));
  }
  if (patch.email !== undefined) changes.push(replace(a.email, patch.email?.trim().toLowerCase()));
  if (patch.mailNickname !== undefined && a.mailNickname) changes.push(replace(a.mailNickname, patch.mailNickname));
  if (patch.mobile !== undefined) changes.push(replace(a.mobile, patch.mobile));
  if (patch.telephone !== undefined) changes.push(replace(a.telephone, patch.telephone));
  if (patch.jobTitle !== undefined) changes.push(replace(a.jobTitle, patch.jobTitle));
  if (patch.department !== undefined) {
    if (p.department.from === 'ou-path') {
      throw new MailboxError('LDAP: the department is the OU path here (ldap.department.from), not written by the sync; set profile.authority.departments to mailbox or none', false, 'DepartmentFromOuPath', undefined, 'invalid');
    }
    changes.push(replace(a.department, patch.department));
  }
  return changes;
}

/** The modification that sets the disabled state of `entry` (AD: its userAccountControl with bit 0x2 set or cleared, the other bits kept). */
export function enabledChange(p: LdapProfile, entry: LdapEntry, enabled: boolean): Change {
  if (p.disabled.kind === 'uac') {
    const uac = userAccountControl(entry) || NORMAL_ACCOUNT;
    return replace('userAccountControl', String(enabled ? uac & ~ACCOUNTDISABLE : uac | ACCOUNTDISABLE));
  }
  return replace(p.disabled.attribute, enabled ? null : (p.disabled.value ?? 'TRUE'));
}

/** The address's local part: the RDN value (and AD's sAMAccountName) of a new entry. */
export function localPart(email: string): string {
  return email.trim().toLowerCase().split('@')[0] ?? '';
}

/** The DN of a new entry for `email` under `parent`. */
export function newEntryDn(p: LdapProfile, email: string, parent: string): string {
  return `${p.rdn}=${escapeDnValue(localPart(email))},${parent}`;
}

/** AD's sAMAccountName: at most 20 characters, none of "/\[]:;|=,+*?<>@. */
const SAM_ACCOUNT_NAME = /^[^"/\\[\]:;|=,+*?<>@]{1,20}$/;

/**
 * Port → the attributes of a new entry. `password`: AD only (random, never returned or logged),
 * set as unicodePwd; OpenLDAP entries get none (the company's own tooling sets passwords).
 */
export function toAddAttributes(p: LdapProfile, input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }, domain: string, password?: string): Attribute[] {
  const a = p.attributes;
  if (!input.displayName.trim()) throw new MailboxError('LDAP accounts cannot have an empty displayName', false, 'InvalidInput', undefined, 'invalid');
  const email = input.email.trim().toLowerCase();
  const local = localPart(email);
  if (!local) throw new MailboxError('LDAP: an address without a local part', false, 'InvalidInput', undefined, 'invalid');
  checkLinkFits(p, input.employeeId);
  const attrs = new Map<string, Array<string | Buffer>>();
  const set = (type: string, value: string | Buffer | null | undefined) => {
    if (value === null || value === undefined || value === '') return;
    attrs.set(type, [value]);
  };
  attrs.set('objectClass', [...p.objectClasses]);
  set(p.rdn, local);
  set(a.employeeId, input.employeeId);
  set(a.displayName, input.displayName);
  set(a.email, email);
  set(a.mobile, input.mobile);
  set(a.telephone, input.telephone);
  set(a.jobTitle, input.jobTitle);
  if (p.department.from === 'attribute') set(a.department, input.department);
  if (a.mailNickname) set(a.mailNickname, input.mailNickname);
  if (p.schema === 'ad') {
    if (!SAM_ACCOUNT_NAME.test(local)) throw new MailboxError('AD: the local part does not fit sAMAccountName (20 characters, no "/\\[]:;|=,+*?<>@)', false, 'InvalidInput', undefined, 'invalid');
    set('sAMAccountName', local);
    set('userPrincipalName', `${local}@${domain.toLowerCase()}`);
    if (!password) throw new MailboxError('AD: a new account needs an initial password', false, 'InvalidInput', undefined, 'invalid');
    set('unicodePwd', Buffer.from(`"${password}"`, 'utf16le'));
    set('userAccountControl', String(input.enabled === false ? NORMAL_ACCOUNT | ACCOUNTDISABLE : NORMAL_ACCOUNT));
    // Must change it at the first sign-in (nobody knows it: it is never returned or logged).
    set('pwdLastSet', '0');
  } else {
    // person requires cn and sn; the display name serves for both.
    if (!attrs.has('cn')) set('cn', input.displayName);
    set('sn', input.displayName);
    if (input.enabled === false && p.disabled.kind === 'attribute') set(p.disabled.attribute, p.disabled.value ?? 'TRUE');
  }
  return [...attrs].map(([type, vals]) => new Attribute({ type, values: vals as string[] }));
}


/** Which LDAP attribute carries which port field (the conformance probe maps the server's audit log back through it). */
export function wireFields(p: LdapProfile): Record<string, keyof MailboxAccountInput> {
  const a = p.attributes;
  const map: Record<string, keyof MailboxAccountInput> = {
    [a.employeeId]: 'employeeId',
    [a.displayName]: 'displayName',
    [a.email]: 'email',
    [a.mobile]: 'mobile',
    [a.telephone]: 'telephone',
    [a.jobTitle]: 'jobTitle',
    [a.department]: 'department',
  };
  if (a.mailNickname) map[a.mailNickname] = 'mailNickname';
  if (p.disabled.kind === 'attribute') map[p.disabled.attribute] = 'enabled';
  else map.userAccountControl = 'enabled';
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k.toLowerCase(), v]));
}

