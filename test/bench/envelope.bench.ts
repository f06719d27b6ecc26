/**
 * Envelope encryption cost on a warm worker, with the real KMSClient against the loopback
 * KMS: field encryptions/s and decryptions/s once the data key is cached, and how many KMS
 * calls 1,000 field encryptions cost with the default cache bounds (target: ≤ 1). Then the
 * primitives of one field with the key as raw bytes (as before) and as a KeyObject (as now),
 * interleaved in the same run, so the ratio holds even on a busy machine.
 */
import { createCipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { cpus } from 'node:os';
import { KMSClient } from '@aws-sdk/client-kms';
import { LOCAL_AWS } from '../../bin/local/dynalite';
import { startKmsServer } from '../../bin/local/sim/kms';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import type { SealedValue } from '../../functions/security/ports';

const kms = await startKmsServer();
const client = new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint });
const keys = new KmsKeyProvider(client, kms.keyId);
const hashKey = randomBytes(32);
const cipher = new EnvelopeCipher({ keys, hashKey: { get: async () => hashKey } });
const where = (i: number) => ({ table: 'state', subject: `user:u${i}`, field: 'mobile' });
const mobile = (i: number) => `+86138${String(i % 1e8).padStart(8, '0')}`;

/** One field's seal (AES-256-GCM with AAD) and keyed hash, given the keys either way. */
function sealPrimitive(dataKey: Buffer | KeyObject, hmacKey: Uint8Array | KeyObject, value: string): number {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', dataKey, iv);
  c.setAAD(Buffer.from('["v1","state","user:u1","mobile"]'));
  const ct = Buffer.concat([c.update(value, 'utf8'), c.final(), c.getAuthTag()]);
  return ct.length + createHmac('sha256', hmacKey).update(`mobile\u0000${value}`, 'utf8').digest('hex').length;
}

function hashPrimitive(hmacKey: Uint8Array | KeyObject, value: string): string {
  return createHmac('sha256', hmacKey).update(`mobile\u0000${value}`, 'utf8').digest('hex');
}

/** µs per call, median of interleaved batches. */
function perCall(impls: Record<string, () => unknown>, rounds = 120, batch = 200): Record<string, number> {
  const per: Record<string, number[]> = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [k, f] of Object.entries(impls)) {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) f();
      if (r >= 20) per[k]!.push(((performance.now() - t0) * 1000) / batch);
    }
  }
  return Object.fromEntries(Object.entries(per).map(([k, xs]) => [k, xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!]));
}

const cpu0 = { busy: cpus().reduce((s, c) => s + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0), self: process.cpuUsage(), at: performance.now() };

try {
  // KMS calls per 1,000 field encryptions from a cold cipher (includes the one cold-start key).
  const before = { ...kms.calls };
  const first: SealedValue[] = [];
  for (let i = 0; i < 1_000; i++) first.push(await cipher.seal(mobile(i), where(i)));
  const generate = kms.calls.GenerateDataKey - before.GenerateDataKey;
  const decrypt = kms.calls.Decrypt - before.Decrypt;

  // Warm encryptions.
  const N = 50_000;
  let t = performance.now();
  const sealed: SealedValue[] = new Array<SealedValue>(N);
  for (let i = 0; i < N; i++) sealed[i] = await cipher.seal(mobile(i), where(i));
  const encMs = performance.now() - t;

  // Decryptions in a fresh cipher (cold: one Decrypt per distinct data key, then warm).
  const reader = new EnvelopeCipher({ keys, hashKey: { get: async () => hashKey } });
  const decBefore = kms.calls.Decrypt;
  t = performance.now();
  for (let i = 0; i < N; i++) {
    const v = await reader.open(sealed[i]!, where(i));
    if (v !== mobile(i)) throw new Error(`round trip failed at ${i}`);
  }
  const decMs = performance.now() - t;
  const distinctKeys = new Set(sealed.map((s) => s.ct.split('.')[1])).size;

  // Keyed hash alone (equality checks without decrypting).
  t = performance.now();
  for (let i = 0; i < N; i++) await cipher.hash('mobile', mobile(i));
  const hashMs = performance.now() - t;

  const rate = (n: number, ms: number) => Math.round((n / ms) * 1000).toLocaleString('en-US');
  console.log(`KMS calls per 1,000 field encryptions (cold cipher, default bounds): GenerateDataKey=${generate} Decrypt=${decrypt}  (target ≤ 1)`);
  console.log(`field encryptions/s (warm, seal = AES-256-GCM + HMAC): ${rate(N, encMs)}  (${N} in ${encMs.toFixed(0)} ms)`);
  console.log(`field decryptions/s (fresh reader, incl. its cold KMS Decrypt): ${rate(N, decMs)}  (${N} in ${decMs.toFixed(0)} ms; KMS Decrypt calls=${kms.calls.Decrypt - decBefore} for ${distinctKeys} distinct data key(s))`);
  console.log(`keyed hashes/s: ${rate(N, hashMs)}`);
  console.log(`KMS totals: ${JSON.stringify(kms.calls)}`);

  const rawData = randomBytes(32);
  const objData = createSecretKey(rawData);
  const objHash = createSecretKey(hashKey);
  const p = perCall({
    'seal, raw keys': () => sealPrimitive(rawData, hashKey, '+8613800138000'),
    'seal, KeyObjects': () => sealPrimitive(objData, objHash, '+8613800138000'),
    'hash, raw key': () => hashPrimitive(hashKey, '+8613800138000'),
    'hash, KeyObject': () => hashPrimitive(objHash, '+8613800138000'),
  });
  console.log(
    `one field's primitives, µs per call (interleaved): seal ${p['seal, raw keys']!.toFixed(1)} with raw keys vs ${p['seal, KeyObjects']!.toFixed(1)} with KeyObjects (${(p['seal, raw keys']! / p['seal, KeyObjects']!).toFixed(1)}×);` +
      ` keyed hash ${p['hash, raw key']!.toFixed(1)} vs ${p['hash, KeyObject']!.toFixed(1)} (${(p['hash, raw key']! / p['hash, KeyObject']!).toFixed(1)}×)`,
  );
  const wall = (performance.now() - cpu0.at) / 1000;
  const self = process.cpuUsage(cpu0.self);
  const selfS = (self.user + self.system) / 1e6;
  const busyS = (cpus().reduce((s, c) => s + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0) - cpu0.busy) / 1000;
  // The loopback KMS runs in this process too, so "this process" includes it.
  console.log(`CPU: this process ${selfS.toFixed(1)} s, the rest of the machine ${Math.max(0, busyS - selfS).toFixed(1)} s over ${wall.toFixed(1)} s wall (${((100 * Math.max(0, busyS - selfS)) / (wall * cpus().length)).toFixed(0)} % of ${cpus().length} cores)`);
  if (generate + decrypt > 1) {
    console.error('FAIL: more than 1 KMS call per 1,000 field encryptions');
    process.exitCode = 1;
  }
} finally {
  client.destroy();
  await kms.close();
}
