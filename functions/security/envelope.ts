/**
 * Envelope encryption of sensitive fields (mobile, telephone, personal email, address,
 * extattr …), one field at a time.
 *
 *   stored = 'v1.' + b64url(encrypted data key) + '.' + b64url(iv) + '.' + b64url(ciphertext ‖ tag)
 *
 * - AES-256-GCM under a 256-bit data key from the KeyProvider (KMS GenerateDataKey).
 * - Binding: data keys are cached and reused across many fields and rows, so the KMS
 *   EncryptionContext can only name what they share — { app, table }. The row and field are
 *   bound per value as GCM additional authenticated data (table, subject, field): a
 *   ciphertext copied to another row, field or table fails to open.
 * - Cost: a warm worker must not call KMS per field. Data keys are reused for at most
 *   `maxKeyUses` encryptions and `maxKeyAgeMs`; unwrapped data keys are kept in a bounded
 *   LRU (size and age), so reading a record sealed by the same key costs no KMS call.
 *   Concurrent callers share one in-flight KMS request.
 * - Equality without decrypting: `hash()` is an HMAC-SHA-256 under a separate KMS-protected
 *   hash key (see hash-key.ts), domain-separated per field. Never a plain hash: mobile
 *   numbers have so little entropy that a plain SHA-256 is reversed by enumeration.
 * - Keys are held as KeyObjects, imported once when a key is generated, unwrapped or first
 *   seen: on Node 24 a cipher or HMAC created from raw key bytes imports them again on every
 *   call (~15 µs), which was most of the cost of a field (test/bench/envelope.bench.ts).
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { EncryptionContext, FieldCipher, FieldLocation, KeyProvider, SealedValue } from './ports';

export const SEALED_VERSION = 'v1';
export const KMS_APP = 'wecom-mailbox-sync';

/** Where the keyed-hash key comes from (StoredHashKey in hash-key.ts). */
export interface HashKeySource {
  get(): Promise<Uint8Array>;
}

export interface EnvelopeCipherOptions {
  keys: KeyProvider;
  hashKey: HashKeySource;
  /** A data key is used for encryption for at most this long (default 5 minutes). */
  maxKeyAgeMs?: number;
  /** … and for at most this many encryptions (default 10,000). */
  maxKeyUses?: number;
  /** Unwrapped data keys kept for decryption (LRU, default 256 entries). */
  decryptCacheSize?: number;
  /** … each for at most this long (default: maxKeyAgeMs). */
  decryptCacheAgeMs?: number;
  /** Clock (ms since epoch), injectable for tests. */
  now?: () => number;
}

interface ActiveKey {
  key: KeyObject;
  edk: string;
  createdAt: number;
  uses: number;
}

interface CachedKey {
  key: KeyObject;
  at: number;
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');

export class EnvelopeCipher implements FieldCipher {
  private readonly keys: KeyProvider;
  private readonly hashKey: HashKeySource;
  private readonly maxKeyAgeMs: number;
  private readonly maxKeyUses: number;
  private readonly decryptCacheSize: number;
  private readonly decryptCacheAgeMs: number;
  private readonly now: () => number;
  /** Per table: the data key currently used for encryption. */
  private readonly active = new Map<string, ActiveKey>();
  private readonly generating = new Map<string, Promise<void>>();
  /** `${table}\0${edk}` → unwrapped key; Map insertion order is the LRU order. */
  private readonly unwrapped = new Map<string, CachedKey>();
  private readonly unwrapping = new Map<string, Promise<KeyObject>>();
  /** The keyed-hash key as last returned by the source, and its KeyObject. */
  private hmacKey?: { raw: Uint8Array; key: KeyObject };

  constructor(opts: EnvelopeCipherOptions) {
    this.keys = opts.keys;
    this.hashKey = opts.hashKey;
    this.maxKeyAgeMs = opts.maxKeyAgeMs ?? 5 * 60_000;
    this.maxKeyUses = opts.maxKeyUses ?? 10_000;
    this.decryptCacheSize = opts.decryptCacheSize ?? 256;
    this.decryptCacheAgeMs = opts.decryptCacheAgeMs ?? this.maxKeyAgeMs;
    this.now = opts.now ?? Date.now;
    if (!(this.maxKeyUses >= 1) || !(this.maxKeyAgeMs > 0) || !(this.decryptCacheSize >= 1)) {
      throw new Error('EnvelopeCipher: maxKeyUses, maxKeyAgeMs and decryptCacheSize must be positive');
    }
  }

  /** Encrypt a (normalized) value for one field of one row; also returns its keyed hash. */
  async seal(value: string, where: FieldLocation): Promise<SealedValue> {
    const [dk, h] = await Promise.all([this.encryptionKey(where.table), this.hash(where.field, value)]);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dk.key, iv);
    cipher.setAAD(aad(where));
    const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return { ct: `${SEALED_VERSION}.${dk.edk}.${b64url(iv)}.${b64url(ct)}`, h };
  }

  async open(sealed: SealedValue | string, where: FieldLocation): Promise<string> {
    const text = typeof sealed === 'string' ? sealed : sealed?.ct;
    if (typeof text !== 'string') throw new Error(`sealed value at ${describe(where)} is missing`);
    const parts = text.split('.');
    if (parts[0] !== SEALED_VERSION) {
      // Echo the prefix only when it looks like a version: a clear value must not reach an error message.
      const shown = /^v\d{1,4}$/.test(parts[0] ?? '') ? `'${parts[0]}'` : '(none)';
      throw new Error(`unsupported sealed value version ${shown} at ${describe(where)}: this build reads ${SEALED_VERSION}`);
    }
    const [, edk, ivText, ctText] = parts;
    if (parts.length !== 4 || !edk || !ivText || !ctText) throw new Error(`malformed sealed value at ${describe(where)}`);
    const iv = Buffer.from(ivText, 'base64url');
    const body = Buffer.from(ctText, 'base64url');
    if (iv.length !== 12 || body.length < 16) throw new Error(`malformed sealed value at ${describe(where)}`);
    const key = await this.decryptionKey(edk, where);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(aad(where));
      decipher.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(`sealed value does not open at ${describe(where)}: it belongs to another row or field, or was tampered with`);
    }
  }

  async hash(field: string, normalizedValue: string): Promise<string> {
    const raw = await this.hashKey.get();
    // Sources hand out one cached array (StoredDataKey); import it again only if that changes.
    let k = this.hmacKey;
    if (k?.raw !== raw) this.hmacKey = k = { raw, key: createSecretKey(raw) };
    return createHmac('sha256', k.key).update(`${field}\u0000${normalizedValue}`, 'utf8').digest('hex');
  }

  // ------------------------------------------------------------------ data keys

  private async encryptionKey(table: string): Promise<ActiveKey> {
    for (;;) {
      const cur = this.active.get(table);
      if (cur && cur.uses < this.maxKeyUses && this.now() - cur.createdAt < this.maxKeyAgeMs) {
        cur.uses++;
        return cur;
      }
      let pending = this.generating.get(table);
      if (!pending) {
        pending = this.keys
          .generateDataKey(kmsContext(table))
          .then((dk) => {
            const entry: ActiveKey = { key: createSecretKey(dk.plaintext), edk: b64url(dk.encrypted), createdAt: this.now(), uses: 0 };
            this.active.set(table, entry);
            // Our own ciphertexts open without a KMS round trip while the key is fresh.
            this.remember(`${table}\u0000${entry.edk}`, entry.key);
          })
          .finally(() => this.generating.delete(table));
        this.generating.set(table, pending);
      }
      await pending; // then loop: claim a use of the new key (or generate again if others used it up)
    }
  }

  private async decryptionKey(edk: string, where: FieldLocation): Promise<KeyObject> {
    const id = `${where.table}\u0000${edk}`;
    const hit = this.unwrapped.get(id);
    if (hit && this.now() - hit.at < this.decryptCacheAgeMs) {
      this.unwrapped.delete(id); // refresh LRU position
      this.unwrapped.set(id, hit);
      return hit.key;
    }
    if (hit) this.unwrapped.delete(id);
    let pending = this.unwrapping.get(id);
    if (!pending) {
      pending = this.keys
        .decryptDataKey(Buffer.from(edk, 'base64url'), kmsContext(where.table))
        .then(
          (plain) => {
            if (plain.length !== 32) throw new Error('data key is not 256 bits');
            const key = createSecretKey(plain);
            this.remember(id, key);
            return key;
          },
          (err: unknown) => {
            const name = err instanceof Error ? err.name : 'Error';
            throw new Error(`data key of the sealed value at ${describe(where)} could not be unwrapped (${name}): it belongs to another table or was tampered with`, { cause: err });
          },
        )
        .finally(() => this.unwrapping.delete(id));
      this.unwrapping.set(id, pending);
    }
    return pending;
  }

  private remember(id: string, key: KeyObject): void {
    this.unwrapped.delete(id);
    this.unwrapped.set(id, { key, at: this.now() });
    while (this.unwrapped.size > this.decryptCacheSize) {
      const oldest = this.unwrapped.keys().next().value as string;
      this.unwrapped.delete(oldest);
    }
  }
}

/** The KMS context names only what a cached data key's uses share: the app and the table. */
export function kmsContext(table: string): EncryptionContext {
  return { app: KMS_APP, table };
}

/** Per-value binding: version, table, subject, field — JSON so no separator can be forged. */
function aad(where: FieldLocation): Buffer {
  return Buffer.from(JSON.stringify([SEALED_VERSION, where.table, where.subject, where.field]), 'utf8');
}

function describe(where: FieldLocation): string {
  return `${where.table}/${where.subject}/${where.field}`;
}
