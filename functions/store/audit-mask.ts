/**
 * Masking of audited field changes: what the audit log (and a run's write-ahead intent)
 * stores instead of personal data. Sensitive values keep just enough to tell two apart
 * (+86138****8000, a***@example.com); others pass as they are, except a value that looks
 * like a phone number under a field nobody marked sensitive (defence in depth).
 *
 * Idempotent: masking a masked value leaves it as it is, so an intent's masked changes can
 * be audited later through the same audit log without being mangled.
 */
import type { AuditChange } from './ports';
import { isSensitiveField } from '../core/model';
import { maskEmail, maskOpaque, maskPhone } from '../core/redact';

const PHONE_FIELDS = new Set(['mobile', 'telephone']);
/** A whole value that looks like a phone number. */
const PHONE_LIKE = /^\+?[\d\s()-]{7,}$/;
/** What maskPhone / maskEmail / maskOpaque produce. */
const ALREADY_MASKED = /^(?:\+?\d*\*{4}\d*|\*{4}(?:\(\d+\))?|.\*{3}@.*|\*{3})$/;

export function maskChange(change: AuditChange): AuditChange {
  const sensitive = change.sensitive === true || isSensitiveField(change.field);
  const mask = (value: unknown): unknown => {
    if (value === undefined || value === null) return value; // unknown / cleared is not personal data
    if (typeof value === 'string' && ALREADY_MASKED.test(value)) return value;
    if (!sensitive) {
      if (typeof value === 'string' && PHONE_LIKE.test(value) && value.replace(/\D/g, '').length >= 7) return maskPhone(value);
      return JSON.parse(JSON.stringify(value)) as unknown; // what DynamoDB stores: no undefined members, Dates as strings
    }
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (PHONE_FIELDS.has(change.field)) return maskPhone(text);
    if (/email/i.test(change.field) || (typeof value === 'string' && value.includes('@'))) return maskEmail(text);
    return maskOpaque(text);
  };
  const out: AuditChange = { field: change.field };
  const old = mask(change.old);
  const next = mask(change.new);
  if (old !== undefined) out.old = old;
  if (next !== undefined) out.new = next;
  if (sensitive) out.sensitive = true;
  return out;
}
