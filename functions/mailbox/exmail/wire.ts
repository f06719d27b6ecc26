/**
 * Exmail member JSON ↔ the port's MailboxAccount.
 *
 * Wire facts relied on (user/create, user/update, user/get, user/list; doc #10010–#10015 as
 * copied by the clients named in client.ts):
 * - `userid` IS the address ("企业邮帐号名，邮箱格式"): the account's id here, lower-cased. The
 *   update call has no field to rename it (no `new_userid`), so an address change is refused
 *   (`invalid`); the link survives an administrator's rename in the console because it is not
 *   the address.
 * - `extid` ("编号", the employee number) holds the WeCom userid: the link. The published
 *   examples are digits ("01", "123456789") and one SDK types it int; that Exmail accepts any
 *   string there is NOT confirmed. A tenant that refuses letters answers an errcode on create,
 *   which reaches the operator as `invalid`.
 * - `name` 1–64 bytes, required on create; `position` 0–64 bytes; `department` a list of ids
 *   (≤ 20, required on create; 1 = the root); `mobile`, `tel`; `enable` 1/0 on update and in
 *   reads (user/list gives it as the string "1"); `password` required on create, `cpwd_login`
 *   1 = change it at the next sign-in; `slaves` (aliases, ≤ 5) are left alone.
 * - Phones: the examples store mainland numbers without a country code ("15913215421"). We
 *   write a number of `phoneRegion` (CN) in that national form and any other in E.164; on
 *   read, a number without '+' is parsed in `phoneRegion` (a national number there is
 *   unambiguous), and kept as stored when it does not parse (an extension like "60000").
 *   Whether Exmail accepts '+'-numbers of other countries is not confirmed.
 * - Clearing: an empty string clears `position`, `mobile`, `tel` (assumed; the docs say nothing).
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { MailboxError, type MailboxAccount, type MailboxAccountInput } from '../directory';
import { canonicalPhone } from '../phone';

/** An Exmail member as user/get and user/list return it. */
export interface ExmailUserWire {
  userid: string;
  name?: string;
  department?: Array<number | string>;
  position?: string;
  mobile?: string;
  tel?: string;
  extid?: string | number;
  gender?: string | number;
  enable?: number | string;
  slaves?: string[];
  cpwd_login?: number | string;
}

/** Which Exmail field carries each port field (the conformance probe reads the wire back through it). */
export const WIRE_FIELD: Readonly<Record<string, keyof MailboxAccountInput>> = {
  extid: 'employeeId',
  enable: 'enabled',
  name: 'displayName',
  department: 'department',
  mobile: 'mobile',
  tel: 'telephone',
  position: 'jobTitle',
};

/** The root department: an account only there has no department path. */
export const ROOT_DEPARTMENT = 1;

export function normalizeId(userid: string): string {
  return userid.trim().toLowerCase();
}

/** The link of a member: its extid as a string, undefined when empty. */
export function linkOf(u: Pick<ExmailUserWire, 'extid'>): string | undefined {
  if (u.extid === undefined || u.extid === null) return undefined;
  const s = String(u.extid).trim();
  return s ? s : undefined;
}

export function enabledOf(u: Pick<ExmailUserWire, 'enable'>): boolean {
  return !(u.enable === 0 || u.enable === '0');
}

/** The ids of the member's departments, as numbers, the main one first. */
export function departmentIds(u: Pick<ExmailUserWire, 'department'>): number[] {
  return (u.department ?? []).map(Number).filter((n) => Number.isInteger(n));
}

/** Wire → port. `department` is the path of the main department (null: root only or none), resolved by the caller. */
export function toAccount(u: ExmailUserWire, department: string | null | undefined, region: string): MailboxAccount {
  const id = normalizeId(u.userid);
  const acc: MailboxAccount = { id, enabled: enabledOf(u), email: id, mailNickname: id.split('@')[0] ?? null, kind: 'member' };
  const link = linkOf(u);
  if (link) acc.employeeId = link;
  if ('name' in u) acc.displayName = u.name || null;
  if ('mobile' in u) acc.mobile = fromWirePhone(u.mobile, region);
  if ('tel' in u) acc.telephone = fromWirePhone(u.tel, region);
  if ('position' in u) acc.jobTitle = u.position || null;
  if (department !== undefined) acc.department = department;
  return acc;
}

/**
 * Port → the user/create or user/update body, without `department` (ids: the directory
 * resolves the path) and without the address (`userid`: the directory's). Only the keys present.
 */
export function toWire(input: MailboxAccountInput, region: string): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (input.employeeId !== undefined) body.extid = input.employeeId;
  if (input.enabled !== undefined) body.enable = input.enabled ? 1 : 0;
  if (input.displayName !== undefined) {
    if (input.displayName === null || !input.displayName.trim()) throw new MailboxError('Exmail members cannot have an empty name', false, 'InvalidInput', undefined, 'invalid');
    body.name = input.displayName;
  }
  if (input.mobile !== undefined) body.mobile = input.mobile === null ? '' : toWirePhone(input.mobile, region);
  if (input.telephone !== undefined) body.tel = input.telephone === null ? '' : toWirePhone(input.telephone, region);
  if (input.jobTitle !== undefined) body.position = input.jobTitle ?? '';
  return body;
}

/** E.164 → what Exmail stores: a number of `region` in its national form (no spaces), any other as E.164. */
export function toWirePhone(value: string, region: string): string {
  const parsed = parsePhoneNumberFromString(value.trim());
  if (!parsed?.isValid()) return value.trim();
  return parsed.country === region ? parsed.format('NATIONAL').replace(/[\s()-]/g, '') : parsed.number;
}

/** What Exmail stores → E.164 where it parses (national numbers in `region`), else as stored; empty = null. */
export function fromWirePhone(value: string | null | undefined, region: string): string | null {
  if (!value || !value.trim()) return null;
  const trimmed = value.trim();
  if (trimmed.startsWith('+')) return canonicalPhone(trimmed);
  const parsed = parsePhoneNumberFromString(trimmed, region as CountryCode);
  return parsed?.isValid() ? parsed.number : trimmed;
}

/** The account's address: the local part of `email` on the tenant's domain, lower-case. */
export function userIdFor(email: string, domain: string): string {
  return `${email.trim().toLowerCase().split('@')[0]}@${domain.toLowerCase()}`;
}

