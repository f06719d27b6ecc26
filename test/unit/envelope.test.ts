import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { startKmsServer, type KmsServer } from '../../bin/local/sim/kms';
import { EnvelopeCipher, kmsContext, type HashKeySource } from '../../functions/security/envelope';
import { HASH_KEY_PK, HASH_KEY_SK, StoredHashKey } from '../../functions/security/hash-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { LocalFileKeyProvider } from '../../functions/security/local-key-provider';
import type { DataKey, EncryptionContext, FieldLocation, KeyProvider } from '../../functions/security/ports';

const fixedHashKey = (key = randomBytes(32)): HashKeySource => ({ get: async () => key });
const at = (subject: string, field = 'mobile', table = 'state'): FieldLocation => ({ table, subject, field });

/** Wraps a provider to count calls (for the local-provider cache-bound tests). */
function counting(inner: KeyProvider) {
  const calls = { generate: 0, decrypt: 0 };
  const provider: KeyProvider = {
    generateDataKey: (ctx: EncryptionContext): Promise<DataKey> => {
      calls.generate++;
      return inner.generateDataKey(ctx);
    },
    decryptDataKey: (edk: Uint8Array, ctx: EncryptionContext) => {
      calls.decrypt++;
      return inner.decryptDataKey(edk, ctx);
    },
  };
  return { provider, calls };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'envelope-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('EnvelopeCipher with the local key file', () => {
  it('round-trips values, versions the format and never stores the clear value', async () => {
    const cipher = new EnvelopeCipher({ keys: new LocalFileKeyProvider(join(dir, 'a', 'master.key')), hashKey: fixedHashKey() });
    for (const value of ['+8613800138000', 'zhang.san@qq.com', '北京市海淀区中关村大街1号', '', '{"工号":"A001"}']) {
      const sealed = await cipher.seal(value, at('user:zhangsan'));
      expect(sealed.ct).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
      if (value) expect(sealed.ct).not.toContain(value);
      expect(await cipher.open(sealed, at('user:zhangsan'))).toBe(value);
      expect(await cipher.open(sealed.ct, at('user:zhangsan'))).toBe(value);
    }
    // Same value twice → different ciphertexts (fresh IV), same keyed hash.
    const a = await cipher.seal('+8613800138000', at('user:x'));
    const b = await cipher.seal('+8613800138000', at('user:x'));
    expect(a.ct).not.toBe(b.ct);
    expect(a.h).toBe(b.h);
  });

  it('binds a ciphertext to its table, subject and field', async () => {
    const cipher = new EnvelopeCipher({ keys: new LocalFileKeyProvider(join(dir, 'b', 'master.key')), hashKey: fixedHashKey() });
    const sealed = await cipher.seal('+8613800138000', at('user:alice', 'mobile', 'state'));
    await expect(cipher.open(sealed, at('user:bob', 'mobile', 'state'))).rejects.toThrow(/does not open at state\/user:bob\/mobile/);
    await expect(cipher.open(sealed, at('user:alice', 'telephone', 'state'))).rejects.toThrow(/does not open/);
    // Another table: the data key itself is wrapped under { app, table } and does not unwrap.
    await expect(cipher.open(sealed, at('user:alice', 'mobile', 'other'))).rejects.toThrow(/could not be unwrapped/);
    // A fresh cipher (empty caches) fails on the other table as well.
    const fresh = new EnvelopeCipher({ keys: new LocalFileKeyProvider(join(dir, 'b', 'master.key')), hashKey: fixedHashKey() });
    await expect(fresh.open(sealed, at('user:alice', 'mobile', 'other'))).rejects.toThrow(/could not be unwrapped/);
    expect(await fresh.open(sealed, at('user:alice', 'mobile', 'state'))).toBe('+8613800138000');
  });

  it('rejects tampered ciphertext and unknown versions with a clear error that never echoes a clear value', async () => {
    const cipher = new EnvelopeCipher({ keys: new LocalFileKeyProvider(join(dir, 'c', 'master.key')), hashKey: fixedHashKey() });
    const sealed = await cipher.seal('secret-address', at('user:a', 'address'));
    const parts = sealed.ct.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    const tampered = [parts[0], parts[1], parts[2], body.toString('base64url')].join('.');
    await expect(cipher.open(tampered, at('user:a', 'address'))).rejects.toThrow(/tampered/);
    await expect(cipher.open(sealed.ct.replace(/^v1\./, 'v2.'), at('user:a', 'address'))).rejects.toThrow(
      "unsupported sealed value version 'v2' at state/user:a/address: this build reads v1",
    );
    const err = await cipher.open('+8613800138000', at('user:a', 'mobile')).catch((e: Error) => e);
    expect(String(err)).toMatch(/unsupported sealed value version \(none\)/);
    expect(String(err)).not.toContain('13800138000');
    await expect(cipher.open('v1.abc.def', at('user:a', 'mobile'))).rejects.toThrow(/malformed/);
  });

  it('creates the master key file with mode 0600, reuses it, and refuses a world-readable one', async () => {
    const path = join(dir, 'd', 'nested', 'master.key');
    const keys = new LocalFileKeyProvider(path);
    const dk = await keys.generateDataKey({ app: 'x', table: 't' });
    const info = await stat(path);
    expect(info.mode & 0o777).toBe(0o600);
    expect(info.size).toBe(32);
    // A second provider on the same file unwraps; a wrong context does not.
    const again = new LocalFileKeyProvider(path);
    expect(Buffer.from(await again.decryptDataKey(dk.encrypted, { table: 't', app: 'x' }))).toEqual(Buffer.from(dk.plaintext));
    await expect(again.decryptDataKey(dk.encrypted, { app: 'x', table: 'u' })).rejects.toThrow(/context mismatch/);
    // Another master key cannot unwrap it.
    await expect(new LocalFileKeyProvider(join(dir, 'd', 'other.key')).decryptDataKey(dk.encrypted, { app: 'x', table: 't' })).rejects.toThrow();
    const loose = join(dir, 'd', 'loose.key');
    await writeFile(loose, randomBytes(32));
    await chmod(loose, 0o644);
    await expect(new LocalFileKeyProvider(loose).generateDataKey({})).rejects.toThrow(/chmod 600/);
  });

  it('rotates the data key after maxKeyUses encryptions and after maxKeyAgeMs', async () => {
    const { provider, calls } = counting(new LocalFileKeyProvider(join(dir, 'e', 'master.key')));
    let now = 1_000_000;
    const cipher = new EnvelopeCipher({ keys: provider, hashKey: fixedHashKey(), maxKeyUses: 3, maxKeyAgeMs: 60_000, now: () => now });
    const edkOf = (ct: string) => ct.split('.')[1];
    const sealed = [];
    for (let i = 0; i < 7; i++) sealed.push(await cipher.seal(`v${i}`, at('user:a', `f${i}`)));
    expect(calls.generate).toBe(3); // uses 1-3, 4-6, 7
    expect(new Set(sealed.map((s) => edkOf(s.ct))).size).toBe(3);
    expect(edkOf(sealed[0]!.ct)).toBe(edkOf(sealed[2]!.ct));
    expect(edkOf(sealed[2]!.ct)).not.toBe(edkOf(sealed[3]!.ct));

    now += 59_999;
    await cipher.seal('x', at('user:a', 'g'));
    expect(calls.generate).toBe(3); // the 7th key had 1 use and is not yet too old
    now += 1;
    await cipher.seal('y', at('user:a', 'g'));
    expect(calls.generate).toBe(4); // too old now
    // Keys are per table (the KMS context names the table).
    await cipher.seal('z', at('user:a', 'g', 'otherTable'));
    expect(calls.generate).toBe(5);
  });

  it('shares one data key among concurrent encryptions and bounds the decrypt cache (LRU + age)', async () => {
    const { provider, calls } = counting(new LocalFileKeyProvider(join(dir, 'f', 'master.key')));
    let now = 0;
    const writer = new EnvelopeCipher({ keys: provider, hashKey: fixedHashKey(), maxKeyUses: 2 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => writer.seal(`v${i}`, at('user:a', `f${i}`))));
    expect(calls.generate).toBe(25); // each key exactly maxKeyUses times, no stampede of extra keys

    const sealed = [];
    for (let i = 0; i < 3; i++) {
      const w = new EnvelopeCipher({ keys: provider, hashKey: fixedHashKey() });
      sealed.push(await w.seal(`value${i}`, at('user:b', 'mobile')));
    }
    calls.decrypt = 0;
    const reader = new EnvelopeCipher({ keys: provider, hashKey: fixedHashKey(), decryptCacheSize: 2, decryptCacheAgeMs: 1_000, now: () => now });
    await Promise.all([reader.open(sealed[0]!, at('user:b')), reader.open(sealed[0]!, at('user:b'))]);
    expect(calls.decrypt).toBe(1); // concurrent opens of one edk share a request
    await reader.open(sealed[1]!, at('user:b'));
    await reader.open(sealed[0]!, at('user:b')); // hit; key 0 becomes most recent
    expect(calls.decrypt).toBe(2);
    await reader.open(sealed[2]!, at('user:b')); // evicts key 1 (least recent)
    expect(calls.decrypt).toBe(3);
    await reader.open(sealed[0]!, at('user:b'));
    expect(calls.decrypt).toBe(3);
    await reader.open(sealed[1]!, at('user:b'));
    expect(calls.decrypt).toBe(4);
    now += 1_000; // aged out
    await reader.open(sealed[1]!, at('user:b'));
    expect(calls.decrypt).toBe(5);
  });

  it('keyed hash: equal for equal values, different per field and per key, never a plain SHA-256', async () => {
    const key = randomBytes(32);
    const cipher = new EnvelopeCipher({ keys: new LocalFileKeyProvider(join(dir, 'g', 'master.key')), hashKey: fixedHashKey(key) });
    const h1 = await cipher.hash('mobile', '+8613800138000');
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    expect(await cipher.hash('mobile', '+8613800138000')).toBe(h1);
    expect(await cipher.hash('telephone', '+8613800138000')).not.toBe(h1);
    expect(await cipher.hash('mobile', '+8613800138001')).not.toBe(h1);
    expect(h1).not.toBe(createHash('sha256').update('+8613800138000').digest('hex'));
    expect(h1).not.toBe(createHash('sha256').update('mobile\u0000+8613800138000').digest('hex'));
    const other = new EnvelopeCipher({ keys: new LocalFileKeyProvider(join(dir, 'g', 'master.key')), hashKey: fixedHashKey() });
    expect(await other.hash('mobile', '+8613800138000')).not.toBe(h1);
    expect((await cipher.seal('+8613800138000', at('user:q'))).h).toBe(h1);
  });
});

describe('EnvelopeCipher keeps its keys as KeyObjects without changing a byte of the format', () => {
  it('the keyed hash is HMAC-SHA-256 of "field\\0value" under the raw key bytes, and follows a changed key', async () => {
    let key = randomBytes(32);
    const cipher = new EnvelopeCipher({ keys: new LocalFileKeyProvider(join(dir, 'h', 'master.key')), hashKey: { get: async () => key } });
    const expected = (k: Buffer) => createHmac('sha256', k).update('mobile\u0000+8613800138000', 'utf8').digest('hex');
    expect(await cipher.hash('mobile', '+8613800138000')).toBe(expected(key));
    expect(await cipher.hash('mobile', '+8613800138000')).toBe(expected(key)); // from the imported key
    key = randomBytes(32); // a source that hands out another key is followed, not cached over
    expect(await cipher.hash('mobile', '+8613800138000')).toBe(expected(key));
  });

  it('a value sealed with raw-key AES-256-GCM (as before) opens, and what it seals opens with the raw key', async () => {
    const keys = new LocalFileKeyProvider(join(dir, 'i', 'master.key'));
    const where = at('user:old', 'mobile');
    const aad = Buffer.from(JSON.stringify(['v1', where.table, where.subject, where.field]), 'utf8');
    const dk = await keys.generateDataKey(kmsContext('state'));
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', Buffer.from(dk.plaintext), iv);
    c.setAAD(aad);
    const body = Buffer.concat([c.update('+8613800138000', 'utf8'), c.final(), c.getAuthTag()]);
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
    const legacy = `v1.${b64(dk.encrypted)}.${b64(iv)}.${b64(body)}`;
    const cipher = new EnvelopeCipher({ keys, hashKey: fixedHashKey() });
    expect(await cipher.open(legacy, where)).toBe('+8613800138000');

    // And the other way: unwrap the data key of a new ciphertext and open it with node:crypto on raw bytes.
    const sealed = await cipher.seal('+8613800138001', where);
    const [, edk, ivText, ctText] = sealed.ct.split('.');
    const raw = Buffer.from(await keys.decryptDataKey(Buffer.from(edk!, 'base64url'), kmsContext('state')));
    const ct = Buffer.from(ctText!, 'base64url');
    const d = createDecipheriv('aes-256-gcm', raw, Buffer.from(ivText!, 'base64url'));
    d.setAAD(aad);
    d.setAuthTag(ct.subarray(ct.length - 16));
    expect(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString('utf8')).toBe('+8613800138001');
  });
});

describe('EnvelopeCipher on the KMS path (real KMSClient → loopback KMS)', () => {
  let kms: KmsServer;
  let client: KMSClient;
  let dynamo: LocalDynamo;
  beforeAll(async () => {
    [kms, dynamo] = await Promise.all([startKmsServer(), startDynalite()]);
    client = new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint });
  });
  afterAll(async () => {
    client?.destroy();
    await Promise.all([kms?.close(), dynamo?.close()]);
  });

  it('1,000 field encryptions cost at most 1 GenerateDataKey; a fresh reader needs 1 Decrypt per distinct data key', async () => {
    const keys = new KmsKeyProvider(client, kms.keyId);
    const before = { ...kms.calls };
    const writer = new EnvelopeCipher({ keys, hashKey: fixedHashKey() });
    const sealed = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => writer.seal(`+86138${String(i).padStart(8, '0')}`, at(`user:u${i}`))),
    );
    expect(kms.calls.GenerateDataKey - before.GenerateDataKey).toBe(1);
    expect(kms.calls.Decrypt - before.Decrypt).toBe(0);
    const distinctEdks = new Set(sealed.map((s) => s.ct.split('.')[1])).size;
    expect(distinctEdks).toBe(1);

    const reader = new EnvelopeCipher({ keys, hashKey: fixedHashKey() });
    const opened = await Promise.all(sealed.map((s, i) => reader.open(s, at(`user:u${i}`))));
    expect(opened[999]).toBe('+8613800000999');
    expect(kms.calls.Decrypt - before.Decrypt).toBeLessThanOrEqual(distinctEdks);
    expect(kms.calls.GenerateDataKey - before.GenerateDataKey).toBe(1);
  });

  it('sends the table as KMS encryption context: another table is refused by KMS (InvalidCiphertextException)', async () => {
    const keys = new KmsKeyProvider(client, kms.keyId);
    const dk = await keys.generateDataKey(kmsContext('state'));
    expect(dk.plaintext.length).toBe(32);
    expect(Buffer.from(await keys.decryptDataKey(dk.encrypted, kmsContext('state')))).toEqual(Buffer.from(dk.plaintext));
    const err = await keys.decryptDataKey(dk.encrypted, kmsContext('audit')).catch((e: Error) => e);
    expect((err as Error).name).toBe('InvalidCiphertextException');
    const blob = Buffer.from(dk.encrypted);
    blob[blob.length - 1] = blob[blob.length - 1]! ^ 1;
    await expect(keys.decryptDataKey(blob, kmsContext('state'))).rejects.toMatchObject({ name: 'InvalidCiphertextException' });

    const cipher = new EnvelopeCipher({ keys, hashKey: fixedHashKey() });
    const sealed = await cipher.seal('+8613800138000', at('user:a'));
    const fresh = new EnvelopeCipher({ keys, hashKey: fixedHashKey() });
    await expect(fresh.open(sealed, at('user:a', 'mobile', 'audit'))).rejects.toThrow(/InvalidCiphertextException/);
  });

  it('StoredHashKey: concurrent cold starts agree on one key, stored only wrapped, reused by later containers', async () => {
    const keys = new KmsKeyProvider(client, kms.keyId);
    const table = dynamo.tables.state;
    const a = new StoredHashKey(keys, dynamo.client, table);
    const b = new StoredHashKey(keys, dynamo.client, table);
    const [ka, kb] = await Promise.all([a.get(), b.get()]);
    expect(Buffer.from(ka)).toEqual(Buffer.from(kb));
    expect(ka.length).toBe(32);
    const item = await dynamo.client.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: HASH_KEY_PK }, sk: { S: HASH_KEY_SK } }, ConsistentRead: true }),
    );
    const wrapped = Buffer.from(item.Item!.wrappedKey!.B!);
    expect(wrapped.includes(Buffer.from(ka))).toBe(false);

    const decryptsBefore = kms.calls.Decrypt;
    const later = new StoredHashKey(keys, dynamo.client, table);
    expect(Buffer.from(await later.get())).toEqual(Buffer.from(ka));
    await later.get();
    expect(kms.calls.Decrypt - decryptsBefore).toBe(1); // cached after the cold start

    const c1 = new EnvelopeCipher({ keys, hashKey: a });
    const c2 = new EnvelopeCipher({ keys, hashKey: later });
    expect(await c1.hash('mobile', '+8613800138000')).toBe(await c2.hash('mobile', '+8613800138000'));
  });
});

describe('createFieldCipher (wiring from env)', () => {
  const saved: Record<string, string | undefined> = {};
  const fake = { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' };
  beforeAll(() => {
    // The KMS client built from env takes region and credentials from the default chain.
    for (const [k, v] of Object.entries(fake)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('uses KMS when KMS_KEY_ID is set, the local key file otherwise; a hash key wrapped by one does not open with the other', async () => {
    const { createFieldCipher } = await import('../../functions/security/cipher-from-env');
    const [kms, db, db2] = await Promise.all([startKmsServer(), startDynalite(), startDynalite()]);
    try {
      const where = at('user:w', 'mobile', db.tables.state);
      const viaKms = await createFieldCipher(db.client, { KMS_KEY_ID: kms.keyId, KMS_ENDPOINT: kms.endpoint, STATE_TABLE: db.tables.state });
      const sealed = await viaKms.seal('+8613800138000', where);
      expect(await viaKms.open(sealed, where)).toBe('+8613800138000');
      expect(kms.calls.GenerateDataKey).toBe(2); // the hash key + one data key

      const keyFile = join(dir, 'h', 'master.key');
      const local = await createFieldCipher(db2.client, { STATE_TABLE: db2.tables.state, LOCAL_MASTER_KEY_FILE: keyFile });
      const sealedLocally = await local.seal('+8613800138000', where);
      expect(await local.open(sealedLocally, where)).toBe('+8613800138000');
      expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
      expect(kms.calls.GenerateDataKey).toBe(2); // the local path never called KMS

      // Pointing the local key file at a table whose hash key KMS wrapped fails, loudly.
      const mixed = await createFieldCipher(db.client, { STATE_TABLE: db.tables.state, LOCAL_MASTER_KEY_FILE: keyFile });
      await expect(mixed.hash('mobile', 'x')).rejects.toThrow(/unknown format|does not unwrap/);
      await expect(createFieldCipher(db.client, {})).rejects.toThrow(/STATE_TABLE/);
    } finally {
      await Promise.all([kms.close(), db.close(), db2.close()]);
    }
  });
});
