/**
 * Redaction for everything that leaves the process as text: log lines, error messages,
 * reports. Personal data and secrets are masked, not removed, so an operator can still
 * tell two values apart roughly (+86138****8000, a***@example.com).
 */

const PHONE = /\+?\d[\d\s-]{6,}\d/g;
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
/** Long opaque strings: tokens, keys, ciphertexts. */
const SECRETISH = /[A-Za-z0-9+/_=-]{32,}/g;

/** Mask a phone number keeping country code, first 3 and last 4 digits: +86138****8000. */
export function maskPhone(value: string): string {
  const digits = value.replace(/[^\d+]/g, '');
  if (digits.length < 8) return '****';
  const keepStart = digits.startsWith('+86') ? 6 : Math.min(5, digits.length - 4);
  return digits.slice(0, keepStart) + '****' + digits.slice(-4);
}

/** Mask an email: first letter of the local part and the domain. */
export function maskEmail(value: string): string {
  const at = value.lastIndexOf('@');
  if (at < 1) return '***';
  return value[0] + '***' + value.slice(at);
}

/** Mask any other sensitive string completely but keep its length class. */
export function maskOpaque(value: string): string {
  return value.length <= 4 ? '****' : `****(${value.length})`;
}

/** Redact personal data and secrets out of free text. */
export function redactText(text: string): string {
  return text
    .replace(EMAIL, (m) => maskEmail(m))
    .replace(SECRETISH, (m) => maskOpaque(m))
    .replace(PHONE, (m) => (m.replace(/\D/g, '').length >= 7 ? maskPhone(m) : m));
}

/** Deep-redact a value for structured logs. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[depth]';
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: redactText(value.message) };
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = /secret|token|password|key|authorization|encodingaeskey|echostr|encrypt/i.test(k) ? '[redacted]' : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}
