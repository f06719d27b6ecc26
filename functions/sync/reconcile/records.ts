/**
 * What a reconcile run stores per person between its phases: small, and without personal
 * data in clear. Non-sensitive fields (name, address, title, department paths) are kept as
 * the state table keeps them; a sensitive one (core/model.ts: mobile, telephone, personal
 * e-mail, address, extattr) only as its keyed hash — equal values, equal hashes, so the
 * comparison is the same — and the mask a report shows (`+86138****8000`, `a***@x.com`,
 * `(set)`).
 */
import { maskEmail, maskPhone } from '../../core/redact';
import { isSensitiveField, SENSITIVE_FIELDS, type Contact, type SensitiveField } from '../../core/model';
import type { FieldCipher } from '../../security/ports';

/** A sensitive value as a run stores it. */
export interface Sealed {
  h: string;
  m: string;
}

/** A contact without its userid (the record's key), sensitive fields sealed. */
export type StoredContact = Omit<Contact, SensitiveField | 'userid' | 'enabled'> & Partial<Record<SensitiveField, Sealed | null>>;

/** A WeCom member as listed: gone (deleted between list_id and user/get), out of scope, or its desired contact. */
export interface WecomRecord {
  gone?: 1;
  out?: 1;
  /** Member enabled in WeCom. */
  en?: boolean;
  /** The contact as the worker would write it. */
  c?: StoredContact;
  /** Department ids the member carries that the tree has no path for. */
  ud?: number[];
  /** Unique fields another member shares: reported as duplicates, never as field drift. */
  sh?: Array<'mobile' | 'email'>;
  /** In a protected department: the account is kept out of the global address list. */
  hide?: 1;
}

/** A linked mailbox account (it carries an employeeId). */
export interface AccountRecord {
  id: string;
  /** The employeeId as the account carries it. */
  eid: string;
  en: boolean;
  c: StoredContact;
  /** Listed in the global address list, where the directory reports it (Google's includeInGlobalAddressList). */
  gal?: boolean;
}

/** An unlinked account in scope that the userid rule gives `userid` (mailbox source). */
export interface BirthRecord {
  id: string;
}

/** One member's mobile or e-mail, by keyed hash. */
export interface HashRecord {
  u: string;
  m: string;
}

/** The value a sensitive field is hashed from: its string, or extattr's entries in key order. */
function plain(value: unknown): string {
  if (typeof value === 'string') return value;
  const entries = Object.entries(value as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(entries);
}

export function maskOf(field: string, value: unknown): string {
  if (field === 'mobile' || field === 'telephone') return maskPhone(String(value));
  if (field === 'email' || field === 'personalEmail') return maskEmail(String(value));
  return '(set)';
}

export async function storeContact(cipher: FieldCipher, c: Contact): Promise<StoredContact> {
  const { userid: _u, enabled: _e, ...rest } = c;
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    if (!isSensitiveField(field) || value === null) out[field] = value;
    else out[field] = { h: await cipher.hash(field, plain(value)), m: maskOf(field, value) } satisfies Sealed;
  }
  return out as StoredContact;
}

/**
 * The stored contact as diffContact compares it: a sealed value becomes a token unique to its
 * hash (two equal values, one token), and `masks` tells how to show that token.
 */
export function comparable(userid: string, c: StoredContact, masks: Map<string, string>): Contact {
  const out: Record<string, unknown> = { userid };
  for (const [field, value] of Object.entries(c)) {
    if ((SENSITIVE_FIELDS as readonly string[]).includes(field) && value && typeof value === 'object') {
      const token = `\u0000${field}:${(value as Sealed).h}`;
      masks.set(token, (value as Sealed).m);
      out[field] = token;
    } else out[field] = value;
  }
  return out as unknown as Contact;
}
