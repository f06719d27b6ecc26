/**
 * KeyProvider for the local stack: a 32-byte master key in a file (under .data/), created
 * with mode 0600 on first use. Data keys are wrapped with AES-256-GCM and the canonical
 * encryption context as additional authenticated data, so — like KMS — a wrapped key only
 * unwraps under the context it was generated for. Not for production: the master key sits
 * on disk next to the data.
 *
 * wrapped = 0x01 | iv(12) | tag(16) | ciphertext(32)
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { canonicalContext } from './context';
import type { DataKey, EncryptionContext, KeyProvider } from './ports';

const WRAP_VERSION = 1;

export class LocalFileKeyProvider implements KeyProvider {
  /** Imported once as a KeyObject: a raw Buffer key is imported again by every cipher call. */
  private master?: Promise<KeyObject>;

  constructor(private readonly path: string) {}

  async generateDataKey(context: EncryptionContext): Promise<DataKey> {
    const master = await this.masterKey();
    const plaintext = randomBytes(32);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', master, iv);
    cipher.setAAD(canonicalContext(context));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { plaintext, encrypted: Buffer.concat([Buffer.of(WRAP_VERSION), iv, cipher.getAuthTag(), ct]) };
  }

  async decryptDataKey(encrypted: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    const master = await this.masterKey();
    const blob = Buffer.from(encrypted);
    if (blob.length !== 1 + 12 + 16 + 32 || blob[0] !== WRAP_VERSION) {
      throw new Error('local key provider: wrapped data key has an unknown format');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', master, blob.subarray(1, 13));
      decipher.setAAD(canonicalContext(context));
      decipher.setAuthTag(blob.subarray(13, 29));
      return Buffer.concat([decipher.update(blob.subarray(29)), decipher.final()]);
    } catch {
      throw new Error('local key provider: data key does not unwrap (wrong master key, tampered, or encryption context mismatch)');
    }
  }

  private masterKey(): Promise<KeyObject> {
    this.master ??= this.loadOrCreate()
      .then((raw) => createSecretKey(raw))
      .catch((err: unknown) => {
        this.master = undefined; // let the next call retry
        throw err;
      });
    return this.master;
  }

  private async loadOrCreate(): Promise<Buffer> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    try {
      // 'wx' creates atomically: two processes starting together cannot both write a key.
      const handle = await open(this.path, 'wx', 0o600);
      const key = randomBytes(32);
      try {
        await handle.writeFile(key);
      } finally {
        await handle.close();
      }
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const info = await stat(this.path);
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      throw new Error(`local master key file ${this.path} is readable by group/others; chmod 600 it`);
    }
    let key = await readFile(this.path);
    // Another process may have created the file a moment ago and not written it yet.
    for (let i = 0; key.length === 0 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 25));
      key = await readFile(this.path);
    }
    if (key.length !== 32) throw new Error(`local master key file ${this.path} must hold exactly 32 bytes`);
    return key;
  }
}
