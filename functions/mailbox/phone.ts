/**
 * Phones as the port reads them back. An administrator types '+86 138 0013 8000' in a
 * mailbox system's console; the sync wrote '+8613800138000'. Reading both as E.164 keeps the
 * diff from flapping (a write every run, an audit record every run). A number without a
 * leading '+' has no country to parse against, so it is kept as stored: guessing one would
 * turn a landline into someone else's number.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

export function canonicalPhone(value: string | null | undefined): string | null {
  if (!value || !value.trim()) return null;
  const trimmed = value.trim();
  const parsed = trimmed.startsWith('+') ? parsePhoneNumberFromString(trimmed) : undefined;
  return parsed?.isValid() ? parsed.number : trimmed;
}
