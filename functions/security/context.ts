/** Canonical bytes of an EncryptionContext (sorted keys), shared by the local key provider. */
import type { EncryptionContext } from './ports';

export function canonicalContext(ctx: EncryptionContext): Buffer {
  const entries = Object.entries(ctx).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries), 'utf8');
}

/** Stable cache key for (wrapped key, context). */
export function contextKey(ctx: EncryptionContext): string {
  return canonicalContext(ctx).toString('utf8');
}
