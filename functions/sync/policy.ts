/**
 * Least data: what of a normalized contact may leave WeCom under the sync profile.
 *
 * - Only `profile.fields` leave at all; anything else becomes unknown (never sent, never
 *   erased: it is not ours to manage).
 * - Members at or under a protected department get the reduced profile: the protected
 *   fields are withheld.
 * - A target abroad gets no sensitive field unless cross-border transfer is approved.
 *
 * A withheld field that is in the profile becomes `null` (clear), not unknown: a person who
 * moves into finance, or a profile that newly forbids a field, must not leave the value in
 * the mailbox. (On create a null is simply not sent: see mapping.ts.)
 */
import { targetIsAbroad, type SyncProfile } from '../config/runtime';
import { isUnder } from './departments';
import { CONTACT_FIELDS, SENSITIVE_FIELDS, type Contact, type ContactField } from '../core/model';

export interface Withheld {
  field: ContactField;
  reason: string;
}

export interface PolicyResult {
  contact: Contact;
  withheld: Withheld[];
  /** Outside profile.scopeDepartments: the person is not synced at all. */
  outOfScope?: boolean;
}

/** Is the person inside the sync scope? Unknown departments under a scope → not in scope (least data). */
export function inScope(contact: Contact, profile: SyncProfile): boolean {
  if (!profile.scopeDepartments) return true;
  const paths = contact.departments;
  if (!paths) return false;
  return paths.some((p) => profile.scopeDepartments!.some((s) => isUnder(p, s)));
}

export function protectedPath(contact: Contact, profile: SyncProfile): string | undefined {
  for (const p of contact.departments ?? []) for (const prot of profile.protectedDepartments) if (isUnder(p, prot)) return prot;
  return undefined;
}

export function applyProfile(input: Contact, profile: SyncProfile): PolicyResult {
  const contact: Contact = { ...input };
  const record = contact as unknown as Record<string, unknown>;
  const withheld: Withheld[] = [];
  const allowed = new Set<ContactField>(profile.fields);

  for (const field of CONTACT_FIELDS) if (!allowed.has(field)) delete record[field];

  const withhold = (fields: readonly ContactField[], reason: string) => {
    for (const field of fields) {
      if (!allowed.has(field)) continue;
      if (record[field] !== undefined && record[field] !== null && !withheld.some((w) => w.field === field)) withheld.push({ field, reason });
      record[field] = null;
    }
  };

  const prot = protectedPath(input, profile);
  if (prot !== undefined) withhold(profile.protectedFields, `protected department (${prot})`);
  if (targetIsAbroad(profile) && !profile.crossBorderApproved) withhold(SENSITIVE_FIELDS, 'cross-border transfer not approved');

  return { contact, withheld, ...(inScope(input, profile) ? {} : { outOfScope: true }) };
}
