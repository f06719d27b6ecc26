/**
 * Redaction for everything that leaves the process as text: log lines, error messages,
 * reports. Personal data and secrets are masked, not removed, so an operator can still
 * tell two values apart roughly (+86138****8000, a***@example.com).
 */

/*
 * One pass, leftmost match wins, so overlapping patterns cannot mangle each other: ISO
 * dates and UUIDs (identifiers, not personal data) are matched first and kept as they are,
 * so `2026-12-01` or a Graph user id is not mistaken for a phone number or a secret.
 */
const DATE = String.raw`\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?`;
const UUID = String.raw`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`;
const EMAIL = String.raw`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`;
/** Authorization header values. */
const BEARER = String.raw`\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+`;
/** name=value / "name":"value" where the name says secret (URLs with access_token=…, JSON bodies). */
const KV_SECRET = String.raw`\b(?:access_token|corpsecret|client_secret|secret|token|password|passwd|signature|msg_signature|echostr|encodingaeskey|aeskey|api_key|key)(?:=|"?\s*:\s*"?)[^\s&"',;]+`;
/** Long opaque strings: tokens, keys, ciphertexts. */
const SECRETISH = String.raw`[A-Za-z0-9+/_=-]{32,}`;
/** A run of digits with optional +, spaces, dashes, parentheses: a phone number candidate. */
const PHONE = String.raw`\+?\(?\d[\d\s()-]{5,}\d`;

const TEXT = new RegExp(
  [DATE, UUID, EMAIL, BEARER, KV_SECRET, SECRETISH, PHONE].map((p) => `(${p})`).join('|'),
  'gi',
);

/**
 * Error codes and route names are long runs too ('Request_BadRequest/ObjectConflict'): a run
 * made only of words — CamelCase or lower-case segments joined by '_', '/' or '.' — is an
 * identifier, kept. A random token of that length almost never has that shape (digits, '+',
 * '=' or a random mix of cases give it away), so this does not let secrets through.
 */
const WORD_SEGMENT = /^(?:[A-Z]?[a-z]{2,16}|[A-Z]{2,6})(?:[A-Z][a-z]{2,16})*$/;
function identifierLike(run: string): boolean {
  return /^[A-Za-z_./]+$/.test(run) && run.split(/[_./]+/).every((seg) => seg === '' || WORD_SEGMENT.test(seg));
}

/**
 * Mask a phone number: country code (+86 only: other codes vary in length), then at most
 * the first 3 and the last 4 digits stay, always with at least 4 digits hidden:
 * +8613800138000 → +86138****8000, 138 0013 8000 → 138****8000, 8888-6666 → 88****66.
 */
export function maskPhone(value: string): string {
  let digits = value.replace(/\D/g, '');
  let prefix = value.trim().startsWith('+') ? '+' : '';
  if (prefix && digits.startsWith('86') && digits.length > 11) {
    prefix = '+86';
    digits = digits.slice(2);
  }
  if (digits.length < 7) return '****';
  const keepEnd = digits.length >= 10 ? 4 : 2;
  const keepStart = Math.max(0, Math.min(3, digits.length - keepEnd - 4));
  return prefix + digits.slice(0, keepStart) + '****' + digits.slice(-keepEnd);
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
  return text.replace(TEXT, (m, date, uuid, email, bearer, kv, secretish, phone) => {
    if (date || uuid) return m;
    if (email) return maskEmail(m);
    if (bearer) return m.replace(/\s+.*$/s, ' ****');
    if (kv) return m.replace(/^([A-Za-z_]+(?:=|"?\s*:\s*"?)).*$/s, '$1****');
    if (secretish) return identifierLike(m) ? m : maskOpaque(m);
    if (phone) {
      const digits = m.replace(/\D/g, '').length;
      // A bare digit run is masked from mobile length up (11), so ids and epoch seconds stay
      // readable; with a + or separators, from 7 digits (landlines).
      const formatted = /[+\s()-]/.test(m);
      return digits >= (formatted ? 7 : 11) ? maskPhone(m) : m;
    }
    return m;
  });
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
