/**
 * Normalization: both directories' raw records → the canonical Contact, with the same code
 * on both sides (worker, reconcile, CSV import), so a diff is a real difference and not a
 * formatting one.
 *
 * - Phones to E.164 with libphonenumber-js (default region CN): '138 0013 8000',
 *   '+86-138-0013-8000' and '0086 13800138000' are the same number.
 * - Emails trimmed and lower-cased; names trimmed, inner whitespace collapsed.
 * - Department ids → full paths from the department tree (main department first).
 * - WeCom's sensitive-data policy: a field WeCom did not give us (absent or '') is UNKNOWN
 *   (undefined), never empty: it must not erase the mailbox's value. An invalid value is a
 *   problem (refused, reported) and also stays unknown; the rest of the person still syncs.
 */
// 'max' metadata: the default ('min') checks lengths only and accepts a mainland mobile
// missing a digit (1380013800); a wrong number must be refused, not sent.
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import type { MailboxAccount } from '../mailbox/directory';
import type { WecomUser } from '../wecom/contacts';
import type { DepartmentTree } from './departments';
import type { Contact } from '../core/model';

export type PhoneResult = { ok: true; e164: string } | { ok: false; reason: string };
export type EmailResult = { ok: true; email: string } | { ok: false; reason: string };

export interface Problem {
  field: string;
  /** Never contains the offending value (it may be personal data). */
  reason: string;
}

export interface Normalized {
  contact: Contact;
  problems: Problem[];
}

/** Separators people type in phone numbers; stripped before parsing. Full-width digits are folded. */
const PHONE_NOISE = /[\s\-‐‑‒–—().·]/g;

function foldFullWidth(s: string): string {
  return s.replace(/[\uFF10-\uFF19\uFF0B]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));
}

/**
 * A phone number in E.164. A trailing extension (`-123`, `ext 123`, `转123`) is kept in RFC
 * 3966 form (`+861012345678;ext=123`) so a desk phone with an extension stays reachable.
 */
export function normalizePhone(raw: string, region: CountryCode = 'CN'): PhoneResult {
  if (typeof raw !== 'string') return { ok: false, reason: 'not a string' };
  let text = foldFullWidth(raw).trim();
  if (!text) return { ok: false, reason: 'empty' };
  let ext: string | undefined;
  const extMatch = /^(.*?)(?:\s*(?:ext\.?|x|转|#)\s*(\d{1,6}))$/i.exec(text);
  if (extMatch) {
    text = extMatch[1]!;
    ext = extMatch[2];
  }
  const compact = text.replace(PHONE_NOISE, '');
  if (!/^\+?\d{5,20}$/.test(compact)) {
    // A landline with a dash-separated extension: 010-12345678-123.
    return { ok: false, reason: 'not a phone number (unexpected characters)' };
  }
  let parsed = parsePhoneNumberFromString(compact, region);
  if (!parsed?.isValid() && !ext) {
    // '010-12345678-123': the last dash group may be an extension.
    const dashed = /^(.*\d)-(\d{1,6})$/.exec(text.trim());
    if (dashed) {
      const main = parsePhoneNumberFromString(dashed[1]!.replace(PHONE_NOISE, ''), region);
      if (main?.isValid()) {
        parsed = main;
        ext = dashed[2];
      }
    }
  }
  if (!parsed || !parsed.isValid()) return { ok: false, reason: 'not a valid phone number' };
  return { ok: true, e164: ext ? `${parsed.number};ext=${ext}` : parsed.number };
}

const EMAIL = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

export function normalizeEmail(raw: string): EmailResult {
  if (typeof raw !== 'string') return { ok: false, reason: 'not a string' };
  const email = raw.trim().toLowerCase();
  if (!email) return { ok: false, reason: 'empty' };
  if (email.length > 254 || !EMAIL.test(email)) return { ok: false, reason: 'not a valid email address' };
  return { ok: true, email };
}

export function normalizeName(raw: string): string {
  return raw.normalize('NFC').trim().replace(/\s+/g, ' ');
}

/** The address rule, e.g. '{userid}@{domain}' → 'zhangsan@example.com'. */
export function addressFromRule(rule: string, userid: string, domain: string): EmailResult {
  const address = rule.replaceAll('{userid}', userid.toLowerCase()).replaceAll('{domain}', domain.toLowerCase());
  return normalizeEmail(address);
}

export interface WecomNormalizeOptions {
  departments: DepartmentTree;
  /** e.g. '{userid}@{domain}' */
  addressRule: string;
  mailDomain: string;
  region?: CountryCode;
}

/** A WeCom value that carries information: WeCom hides policy-restricted fields as absent or ''. */
function given(v: string | undefined): v is string {
  return typeof v === 'string' && v.trim() !== '';
}

export function normalizeWecomUser(user: WecomUser, opts: WecomNormalizeOptions): Normalized {
  const problems: Problem[] = [];
  const contact: Contact = { userid: user.userid };
  const domain = opts.mailDomain.toLowerCase();

  if (user.name !== undefined) contact.name = given(user.name) ? normalizeName(user.name) : null;
  if (user.position !== undefined) contact.position = given(user.position) ? normalizeName(user.position) : null;

  // The mailbox address: WeCom's business mail when it gives one on our domain, else the rule.
  // WeCom's `email` on our domain counts as the address too; on another domain it is personal.
  const candidates = [user.biz_mail, user.email].filter(given).map(normalizeEmail);
  const onDomain = candidates.find((r): r is { ok: true; email: string } => r.ok && r.email.endsWith(`@${domain}`));
  if (onDomain) contact.email = onDomain.email;
  else {
    const fromRule = addressFromRule(opts.addressRule, user.userid, domain);
    if (fromRule.ok) contact.email = fromRule.email;
    else problems.push({ field: 'email', reason: 'the address rule gives no valid address for this userid' });
  }
  if (given(user.email)) {
    const personal = normalizeEmail(user.email);
    if (!personal.ok) problems.push({ field: 'personalEmail', reason: `email is ${personal.reason}` });
    else if (personal.email !== contact.email) contact.personalEmail = personal.email;
  }

  for (const field of ['mobile', 'telephone'] as const) {
    const raw = user[field];
    if (!given(raw)) continue;
    const phone = normalizePhone(raw, opts.region);
    if (phone.ok) contact[field] = phone.e164;
    else problems.push({ field, reason: `${field} is ${phone.reason}` });
  }

  if (given(user.address)) contact.address = user.address.trim();

  if (user.extattr?.attrs) {
    const attrs: Record<string, string> = {};
    for (const a of user.extattr.attrs) {
      const value = a.text?.value ?? a.value;
      if (a.name && typeof value === 'string' && value.trim()) attrs[normalizeName(a.name)] = value.trim();
    }
    contact.extattr = Object.keys(attrs).length ? attrs : null;
  }

  if (user.department) {
    const main = user.main_department !== undefined && user.department.includes(user.main_department) ? user.main_department : user.department[0];
    const ordered = main === undefined ? [] : [main, ...user.department.filter((d) => d !== main)];
    const paths: string[] = [];
    const unmapped: number[] = [];
    for (const id of ordered) {
      const path = opts.departments.pathOf(id);
      if (path === undefined) unmapped.push(id);
      else if (path !== '' && !paths.includes(path)) paths.push(path);
    }
    // A department that does not map makes the whole list unknown: a partial list would move
    // the person out of a group they still belong to.
    if (unmapped.length) problems.push({ field: 'departments', reason: `department ${unmapped.join(', ')} does not map to a path` });
    else contact.departments = paths;
  }

  if (user.enable !== undefined) contact.enabled = user.enable === 1;
  else if (user.status !== undefined) contact.enabled = user.status !== 2 && user.status !== 5;
  return { contact, problems };
}

/** A mailbox account as a Contact, with the same normalization (present-but-null stays null). */
export function normalizeMailboxAccount(account: MailboxAccount, region: CountryCode = 'CN'): Contact {
  const contact: Contact = { userid: account.employeeId ?? '', enabled: account.enabled };
  if (account.displayName !== undefined) contact.name = account.displayName && account.displayName.trim() ? normalizeName(account.displayName) : null;
  if (account.email !== undefined) contact.email = account.email ? account.email.trim().toLowerCase() : null;
  if (account.jobTitle !== undefined) contact.position = account.jobTitle && account.jobTitle.trim() ? normalizeName(account.jobTitle) : null;
  for (const [from, to] of [['mobile', 'mobile'], ['telephone', 'telephone']] as const) {
    const raw = account[from];
    if (raw === undefined) continue;
    if (raw === null || !raw.trim()) {
      contact[to] = null;
      continue;
    }
    const phone = normalizePhone(raw, region);
    // An unparseable value in the mailbox stays as it is, so the diff sees it and replaces it.
    contact[to] = phone.ok ? phone.e164 : raw;
  }
  if (account.department !== undefined) contact.departments = account.department && account.department.trim() ? [account.department.trim()] : null;
  return contact;
}
