/**
 * The field-level difference between what the mailbox should hold and what it holds.
 *
 * - `undefined` on the desired side is UNKNOWN: never a change (it must not erase anything).
 * - `null` is an explicit clear: a change only when the current side has a value.
 * - An unknown current value (the adapter did not report the field) is only overwritten
 *   with a value, never "cleared" again and again.
 * - Only fields WeCom owns are diffed here (authority 'wecom', see authority.ts); the
 *   mailbox-owned ones flow the other way (to-wecom.ts), 'none' nowhere.
 * - Departments compare in order (main department first); extattr compares by key.
 */
import { CONTACT_FIELDS, type Contact, type ContactField } from '../core/model';

export interface FieldDiff {
  field: ContactField;
  /** Current value (undefined when the mailbox did not report it). */
  old?: unknown;
  new: unknown;
}

export type Authority = Partial<Record<ContactField, 'wecom' | 'mailbox' | 'none'>>;

export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a as object).sort();
    const kb = Object.keys(b as object).sort();
    return sameValue(ka, kb) && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

export function diffContact(desired: Contact, current: Contact, authority: Authority = {}): FieldDiff[] {
  const changes: FieldDiff[] = [];
  const want = desired as unknown as Record<string, unknown>;
  const have = current as unknown as Record<string, unknown>;
  for (const field of CONTACT_FIELDS) {
    if ((authority[field] ?? 'wecom') !== 'wecom') continue;
    const next = want[field];
    if (next === undefined) continue;
    const prev = have[field];
    if (next === null && (prev === null || prev === undefined)) continue;
    if (Array.isArray(next) && next.length === 0 && (prev === null || prev === undefined)) continue;
    if (sameValue(next, prev)) continue;
    changes.push({ field, ...(prev !== undefined ? { old: prev } : {}), new: next });
  }
  return changes;
}
