/**
 * The canonical contact model: what one person or department looks like once both sides
 * have been normalized. Every comparison, diff, report and audit record speaks this model.
 *
 * Convention that matters everywhere: a field that is `undefined` is UNKNOWN (WeCom did not
 * give it to us, e.g. because of its 2022 sensitive-data policy), never "empty". Unknown
 * fields are never written to the other side and never erase a value there. An explicit
 * clear is `null`.
 */

/** The fields a sync profile can let out of WeCom. */
export const CONTACT_FIELDS = [
  'name',
  'email',
  'mobile',
  'telephone',
  'personalEmail',
  'position',
  'departments',
  'address',
  'extattr',
] as const;
export type ContactField = (typeof CONTACT_FIELDS)[number];

/** Fields that are personal data in the sense of PIPL: stored only as ciphertext + keyed hash. */
export const SENSITIVE_FIELDS = ['mobile', 'telephone', 'personalEmail', 'address', 'extattr'] as const;
export type SensitiveField = (typeof SENSITIVE_FIELDS)[number];

export function isSensitiveField(field: string): field is SensitiveField {
  return (SENSITIVE_FIELDS as readonly string[]).includes(field);
}

export interface Contact {
  /** WeCom userid: the one identity key. */
  userid: string;
  name?: string | null;
  /** The mailbox address (primary SMTP / UPN); comes from the address rule when WeCom gives none. */
  email?: string | null;
  /** E.164, e.g. +8613800138000. */
  mobile?: string | null;
  /** E.164 where parseable. */
  telephone?: string | null;
  personalEmail?: string | null;
  position?: string | null;
  /** Full department paths, e.g. ['技术部/研发组'], main department first. */
  departments?: string[] | null;
  address?: string | null;
  /** WeCom extattr flattened to name → value. */
  extattr?: Record<string, string> | null;
  /** WeCom `enable` / mailbox `accountEnabled`. */
  enabled?: boolean;
}

export interface Department {
  id: number;
  name: string;
  parentId: number;
  /** Full path from the root's children down, '/'-joined, e.g. '技术部/研发组'. */
  path?: string;
}

/** Subjects are the unit of work, of FIFO ordering and of state. */
export type Subject = `user:${string}` | `party:${string}` | `mailbox:${string}:${string}`;

export function userSubject(userid: string): Subject {
  return `user:${userid}`;
}
export function partySubject(id: number | string): Subject {
  return `party:${id}`;
}
export function mailboxSubject(provider: string, accountId: string): Subject {
  return `mailbox:${provider}:${accountId}`;
}
