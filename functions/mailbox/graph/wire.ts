/**
 * Graph user JSON ↔ the port's MailboxAccount, and the few value rules Entra imposes.
 *
 * - A key absent from the wire object stays undefined (unknown: delta pages carry only some
 *   keys), a null stays null.
 * - `employeeId` is the link to the WeCom userid.
 * - The port's `telephone` is Graph's `businessPhones` (a list that takes one number);
 *   clearing it is the empty list, not null.
 * - `displayName` cannot be cleared: Entra requires one.
 * - `mailNickname` allows ASCII letters, digits and a few marks, ≤ 64 characters; the CJK of
 *   names and department paths does not fit, hence the hashed group nicknames.
 */
import { createHash, randomInt } from 'node:crypto';
import { MailboxError, type MailboxAccount, type MailboxAccountInput } from '../directory';
import { canonicalPhone } from '../phone';

/** The user properties every read asks for. */
export const USER_SELECT = [
  'id',
  'employeeId',
  'accountEnabled',
  'displayName',
  'mailNickname',
  'userPrincipalName',
  'mail',
  'mobilePhone',
  'businessPhones',
  'jobTitle',
  'department',
  'userType',
].join(',');

/** Graph user as read with USER_SELECT (all optional: delta pages carry only some keys). */
export interface GraphUserWire {
  id: string;
  employeeId?: string | null;
  accountEnabled?: boolean | null;
  displayName?: string | null;
  mailNickname?: string | null;
  userPrincipalName?: string | null;
  mail?: string | null;
  mobilePhone?: string | null;
  businessPhones?: string[] | null;
  jobTitle?: string | null;
  department?: string | null;
  /** 'Member' or 'Guest' (B2B invitees: never people to create in WeCom). */
  userType?: string | null;
  /** Only on deleted items. */
  deletedDateTime?: string | null;
  '@removed'?: { reason: string };
}

/** Which Graph property carries each port field (the conformance probe reads the wire back through it). */
export const WIRE_FIELD: Readonly<Record<string, keyof MailboxAccountInput>> = {
  employeeId: 'employeeId',
  accountEnabled: 'enabled',
  displayName: 'displayName',
  mail: 'email',
  userPrincipalName: 'email',
  mailNickname: 'mailNickname',
  mobilePhone: 'mobile',
  businessPhones: 'telephone',
  jobTitle: 'jobTitle',
  department: 'department',
};

/** Port → the PATCH / POST body: only the keys present. */
export function toWire(input: MailboxAccountInput): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (input.employeeId !== undefined) body.employeeId = input.employeeId;
  if (input.enabled !== undefined) body.accountEnabled = input.enabled;
  if (input.displayName !== undefined) {
    if (input.displayName === null) throw new MailboxError('Graph users cannot have an empty displayName', false, 'InvalidInput', undefined, 'invalid');
    body.displayName = input.displayName;
  }
  if (input.mailNickname !== undefined && input.mailNickname !== null) body.mailNickname = input.mailNickname;
  if (input.mobile !== undefined) body.mobilePhone = input.mobile;
  if (input.telephone !== undefined) body.businessPhones = input.telephone === null ? [] : [input.telephone];
  if (input.jobTitle !== undefined) body.jobTitle = input.jobTitle;
  if (input.department !== undefined) body.department = input.department;
  return body;
}

/** Wire → port. */
export function toAccount(u: GraphUserWire): MailboxAccount {
  const acc: MailboxAccount = { id: u.id, enabled: u.accountEnabled !== false };
  if (u.employeeId) acc.employeeId = u.employeeId;
  if ('displayName' in u) acc.displayName = u.displayName ?? null;
  if ('mail' in u || 'userPrincipalName' in u) {
    const addr = u.mail ?? u.userPrincipalName ?? null;
    acc.email = addr ? addr.toLowerCase() : null;
  }
  if ('mailNickname' in u) acc.mailNickname = u.mailNickname ?? null;
  if ('mobilePhone' in u) acc.mobile = canonicalPhone(u.mobilePhone);
  if ('businessPhones' in u) acc.telephone = canonicalPhone(u.businessPhones?.[0]);
  if ('jobTitle' in u) acc.jobTitle = u.jobTitle ?? null;
  if ('department' in u) acc.department = u.department ?? null;
  // Shared and resource mailboxes are Member users too (disabled sign-in): they read as
  // members here and the mailbox-source rules skip them as disabled accounts.
  if (u.userType === 'Member') acc.kind = 'member';
  else if (u.userType === 'Guest') acc.kind = 'guest';
  return acc;
}

/** A soft-deleted user as the port shows it: deleted, and so not enabled. */
export function toDeletedAccount(u: GraphUserWire): MailboxAccount {
  return { ...toAccount(u), enabled: false, deleted: true };
}

/** The sign-in name: the address's local part on the tenant's domain. */
export function userPrincipalName(email: string, domain: string): string {
  return `${email.trim().toLowerCase().split('@')[0]}@${domain.toLowerCase()}`;
}

/** OData string literal escaping: a single quote is doubled. */
export function escapeODataString(value: string): string {
  return value.replace(/'/g, "''");
}

/**
 * A department path's group key: 'wms-' + 24 hex of SHA-256(path). Not displayName: that is
 * not unique in Entra (an admin's same-named group would be silently adopted); a hashed
 * nickname is ours, stable, ASCII and within 64 characters.
 */
export function groupNickname(path: string): string {
  return 'wms-' + createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 24);
}

export function mailNicknameFrom(local: string): string {
  const cleaned = local.replace(/[^A-Za-z0-9._-]/g, '').replace(/^\.+|\.+$/g, '').slice(0, 64);
  return cleaned || 'user' + randomInt(1e9).toString(36);
}

