/**
 * Envelope encryption cost on a warm worker, with the real KMSClient against the loopback
 * KMS: field encryptions/s and decryptions/s once the data key is cached, and how many KMS
 * calls 1,000 field encryptions cost with the default cache bounds (target: ≤ 1).
 */
import { randomBytes } from 'node:crypto';
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
  if (generate + decrypt > 1) {
    console.error('FAIL: more than 1 KMS call per 1,000 field encryptions');
    process.exitCode = 1;
  }
} finally {
  client.destroy();
  await kms.close();
}
