/**
 * Directory API user JSON ↔ the port's MailboxAccount, and the value rules Google imposes.
 *
 * Where each port field lives (Directory API reference, "REST Resource: users"):
 * - link (WeCom userid): an `externalIds` entry of our type — `{type: 'organization', value}`
 *   by default, or `{type: 'custom', customType}` (config `google.link`) where the tenant's
 *   HR system already uses `organization`. Searchable (`query=externalId:…`), but the search
 *   matches any type and is not case-sensitive: results are checked again here, exactly.
 * - enabled ↔ `suspended` (and `archived` reads as not enabled); deleted ↔ `deletionTime`.
 * - displayName ↔ `name.displayName` (≤ 256). `name.givenName` and `name.familyName` are
 *   required on insert (≤ 60 each): split from the display name (CJK: surname first, the
 *   common two-character surnames known; Latin: the last word is the family name).
 * - email ↔ `primaryEmail` (lower-cased; its local part is the port's mailNickname).
 * - mobile / telephone ↔ `phones[{type: 'mobile'}]` / `phones[{type: 'work'}]`, read back as E.164.
 * - jobTitle / department ↔ `organizations[primary].title` / `.department`.
 * - showInAddressList ↔ `includeInGlobalAddressList`.
 * Arrays (externalIds, phones, organizations) cannot be patched item by item: a write carries
 * the whole array, so the adapter reads the user first and keeps the entries it does not own
 * (an admin's home phone, an HR system's external id). An empty array is sent as `null`
 * (users.update: "fields set to null will be cleared"; users.patch cannot clear repeated fields).
 */
import { MailboxError, type MailboxAccount, type MailboxAccountInput } from '../directory';
import { canonicalPhone } from '../phone';
import type { GoogleSettings } from './config';

export type LinkSpec = GoogleSettings['link'];

export interface GoogleExternalId {
  type: string;
  customType?: string;
  value: string;
}

export interface GooglePhone {
  value: string;
  type: string;
  primary?: boolean;
  customType?: string;
}

export interface GoogleOrganization {
  primary?: boolean;
  title?: string;
  department?: string;
  name?: string;
  type?: string;
  [k: string]: unknown;
}

/** A user as the Directory API returns it (every key optional but the id). */
export interface GoogleUserWire {
  kind?: string;
  id: string;
  etag?: string;
  primaryEmail?: string;
  name?: { givenName?: string; familyName?: string; fullName?: string; displayName?: string } | null;
  suspended?: boolean;
  archived?: boolean;
  externalIds?: GoogleExternalId[] | null;
  phones?: GooglePhone[] | null;
  organizations?: GoogleOrganization[] | null;
  orgUnitPath?: string;
  includeInGlobalAddressList?: boolean;
  isGuestUser?: boolean;
  /** Only on deleted users (`showDeleted=true`). */
  deletionTime?: string;
}

/** Google's limits: name parts ≤ 60, the display name ≤ 256 characters. */
const NAME_PART_MAX = 60;
const DISPLAY_NAME_MAX = 256;

const isOurs = (e: GoogleExternalId, link: LinkSpec) => e.type === link.type && (link.type !== 'custom' || e.customType === link.customType);

/** The WeCom userid an account is linked to, if any (the first entry of our type). */
export function linkOf(u: Pick<GoogleUserWire, 'externalIds'>, link: LinkSpec): string | undefined {
  const v = u.externalIds?.find((e) => isOurs(e, link))?.value;
  return typeof v === 'string' && v ? v : undefined;
}

/** Does this user carry exactly this link (any of its entries of our type)? */
export function hasLink(u: Pick<GoogleUserWire, 'externalIds'>, link: LinkSpec, userid: string): boolean {
  return (u.externalIds ?? []).some((e) => isOurs(e, link) && e.value === userid);
}

function primaryOrg(u: Pick<GoogleUserWire, 'organizations'>): GoogleOrganization | undefined {
  return u.organizations?.find((o) => o.primary) ?? u.organizations?.[0];
}

function phoneOf(u: Pick<GoogleUserWire, 'phones'>, type: string): string | undefined {
  const all = (u.phones ?? []).filter((p) => p.type === type);
  return (all.find((p) => p.primary) ?? all[0])?.value;
}

/** Wire → port, from a full user resource (get, list, insert: `projection=full`, no `fields=`). */
export function toAccount(u: GoogleUserWire, link: LinkSpec): MailboxAccount {
  const acc: MailboxAccount = { id: u.id, enabled: u.suspended !== true && u.archived !== true };
  const employeeId = linkOf(u, link);
  if (employeeId) acc.employeeId = employeeId;
  if ('name' in u) {
    const n = u.name ?? {};
    acc.displayName = n.displayName || n.fullName || [n.givenName, n.familyName].filter(Boolean).join(' ') || null;
  }
  if ('primaryEmail' in u) {
    acc.email = u.primaryEmail ? u.primaryEmail.toLowerCase() : null;
    acc.mailNickname = u.primaryEmail ? u.primaryEmail.split('@')[0]!.toLowerCase() : null;
  }
  // Google leaves an empty array out of a user resource: on these full reads, absent = none.
  acc.mobile = canonicalPhone(phoneOf(u, 'mobile'));
  acc.telephone = canonicalPhone(phoneOf(u, 'work'));
  const org = primaryOrg(u);
  acc.jobTitle = org?.title || null;
  acc.department = org?.department || null;
  if (typeof u.includeInGlobalAddressList === 'boolean') acc.showInAddressList = u.includeInGlobalAddressList;
  // Google has no shared mailboxes among users (those are groups); guests are flagged.
  acc.kind = u.isGuestUser ? 'guest' : 'member';
  return acc;
}

/** A deleted user as the port shows it: deleted, and so not enabled. */
export function toDeletedAccount(u: GoogleUserWire, link: LinkSpec): MailboxAccount {
  return { ...toAccount(u, link), enabled: false, deleted: true };
}

/** The primary address: the local part on the tenant's domain, lower case. */
export function primaryEmail(email: string, domain: string): string {
  return `${email.trim().toLowerCase().split('@')[0]}@${domain.toLowerCase()}`;
}

/** Common two-character Chinese surnames (复姓): the rest of a name without a space is the given name. */
const COMPOUND_SURNAMES = new Set([
  '欧阳', '司马', '上官', '诸葛', '东方', '皇甫', '尉迟', '公孙', '慕容', '长孙', '宇文', '司徒', '令狐', '夏侯',
  '独孤', '南宫', '西门', '端木', '轩辕', '申屠', '澹台', '太史', '公冶', '宗政', '濮阳', '呼延', '单于', '闻人', '赫连',
]);
const CJK = /[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]/;
const clip = (s: string, n: number) => [...s].slice(0, n).join('');

/**
 * givenName / familyName from one display name (Google requires both on insert). CJK
 * names: surname first; Latin names: the last word is the family name; a single word fills both.
 */
export function splitName(displayName: string): { givenName: string; familyName: string } {
  const t = displayName.trim();
  const words = t.split(/\s+/).filter(Boolean);
  let familyName: string;
  let givenName: string;
  if (words.length > 1) {
    if (CJK.test(words[0]!)) [familyName, givenName] = [words[0]!, words.slice(1).join(' ')];
    else [familyName, givenName] = [words[words.length - 1]!, words.slice(0, -1).join(' ')];
  } else if (CJK.test(t)) {
    const chars = [...t];
    const surnameLength = chars.length >= 3 && COMPOUND_SURNAMES.has(chars.slice(0, 2).join('')) ? 2 : 1;
    familyName = chars.slice(0, surnameLength).join('');
    givenName = chars.slice(surnameLength).join('') || t;
  } else {
    familyName = t;
    givenName = t;
  }
  return { givenName: clip(givenName, NAME_PART_MAX), familyName: clip(familyName, NAME_PART_MAX) };
}

function nameBody(displayName: string | null): Record<string, string> {
  if (displayName === null || !displayName.trim()) throw new MailboxError('Google users cannot have an empty name', false, 'InvalidInput', undefined, 'invalid');
  return { ...splitName(displayName), displayName: clip(displayName.trim(), DISPLAY_NAME_MAX) };
}

/** Does a write of these keys need the user as it is (to carry the whole of an array)? */
export function needsCurrent(patch: MailboxAccountInput): boolean {
  return patch.employeeId !== undefined || patch.mobile !== undefined || patch.telephone !== undefined || patch.jobTitle !== undefined || patch.department !== undefined;
}

const orNull = <T>(a: T[]): T[] | null => (a.length ? a : null);

function phonesBody(current: GooglePhone[], input: MailboxAccountInput): GooglePhone[] | null {
  const set: Array<[string, string | null | undefined]> = [
    ['mobile', input.mobile],
    ['work', input.telephone],
  ];
  let phones = [...current];
  for (const [type, value] of set) {
    if (value === undefined) continue;
    const had = phones.find((p) => p.type === type && p.primary) ?? phones.find((p) => p.type === type);
    phones = phones.filter((p) => p.type !== type);
    if (value !== null) phones.push({ value, type, ...(had?.primary ? { primary: true } : {}) });
  }
  return orNull(phones);
}

function organizationsBody(current: GoogleOrganization[], input: MailboxAccountInput): GoogleOrganization[] | null {
  const orgs = current.map((o) => ({ ...o }));
  let idx = orgs.findIndex((o) => o.primary);
  if (idx < 0 && orgs.length) idx = 0;
  const wanted = (input.jobTitle !== undefined && input.jobTitle !== null) || (input.department !== undefined && input.department !== null);
  if (idx < 0) {
    if (!wanted) return orNull(orgs);
    orgs.push({ primary: true, type: 'work' });
    idx = orgs.length - 1;
  }
  const org = orgs[idx]!;
  if (input.jobTitle !== undefined) {
    if (input.jobTitle === null) delete org.title;
    else org.title = input.jobTitle;
  }
  if (input.department !== undefined) {
    if (input.department === null) delete org.department;
    else org.department = input.department;
  }
  // An entry left with nothing but its flags is ours and empty: dropped.
  if (!Object.keys(org).some((k) => !['primary', 'type', 'customType'].includes(k))) orgs.splice(idx, 1);
  return orNull(orgs);
}

function externalIdsBody(current: GoogleExternalId[], link: LinkSpec, employeeId: string): GoogleExternalId[] {
  const ours: GoogleExternalId = { type: link.type, ...(link.type === 'custom' ? { customType: link.customType! } : {}), value: employeeId };
  return [...current.filter((e) => !isOurs(e, link)), ours];
}

/**
 * The body of a write for the keys present (absent = not on the wire). `current` is the user as
 * read before the write; required when `needsCurrent(input)` (arrays are written whole).
 */
export function userBody(input: MailboxAccountInput, o: { link: LinkSpec; domain: string; current?: GoogleUserWire }): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const cur = o.current;
  if (needsCurrent(input) && !cur) throw new Error('userBody: the current user is required for array fields');
  if (input.employeeId !== undefined) body.externalIds = externalIdsBody(cur?.externalIds ?? [], o.link, input.employeeId);
  if (input.enabled !== undefined) body.suspended = !input.enabled;
  if (input.displayName !== undefined) body.name = nameBody(input.displayName);
  if (input.email !== undefined && input.email !== null) body.primaryEmail = primaryEmail(input.email, o.domain);
  if (input.mobile !== undefined || input.telephone !== undefined) body.phones = phonesBody(cur?.phones ?? [], input);
  if (input.jobTitle !== undefined || input.department !== undefined) body.organizations = organizationsBody(cur?.organizations ?? [], input);
  if (input.showInAddressList !== undefined) body.includeInGlobalAddressList = input.showInAddressList;
  return body;
}

/** Which port fields a write put on the wire compared with the user before it (the conformance probe's view). */
export function writtenPortFields(body: Record<string, unknown>, before: GoogleUserWire | undefined, link: LinkSpec): Array<keyof MailboxAccountInput> {
  const out = new Set<keyof MailboxAccountInput>();
  const b = body as Partial<GoogleUserWire>;
  const prev: GoogleUserWire = before ?? { id: '' };
  if ('externalIds' in b && linkOf(b, link) !== linkOf(prev, link)) out.add('employeeId');
  if ('suspended' in b) out.add('enabled');
  if ('name' in b) out.add('displayName');
  if ('primaryEmail' in b) out.add('email');
  if ('includeInGlobalAddressList' in b) out.add('showInAddressList');
  if ('phones' in b) {
    if (phoneOf(b, 'mobile') !== phoneOf(prev, 'mobile')) out.add('mobile');
    if (phoneOf(b, 'work') !== phoneOf(prev, 'work')) out.add('telephone');
  }
  if ('organizations' in b) {
    const [n, p] = [primaryOrg(b), primaryOrg(prev)];
    if ((n?.title ?? undefined) !== (p?.title ?? undefined)) out.add('jobTitle');
    if ((n?.department ?? undefined) !== (p?.department ?? undefined)) out.add('department');
  }
  return [...out];
}


/** A search clause value in single quotes: a backslash escapes a quote or a backslash ("Search for users"). */
export function quoteQueryValue(value: string): string {
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}
