/**
 * The AWS adapters of the audit digests against loopback servers, with the real SDK clients:
 * KmsDigestSigner on the loopback KMS (Sign / GetPublicKey of an ECC_NIST_P256 key) and
 * S3DigestStore on a loopback S3 (PutObject with If-None-Match, ListObjectsV2, GetObject);
 * then the deployed handler's job end to end on them and dynalite.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteItemCommand, DescribeTableCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { startKmsServer, type KmsServer } from '../../bin/local/sim/kms';
import { KmsDigestSigner } from '../../functions/audit/kms-signer';
import { LocalDigestSigner } from '../../functions/audit/local';
import { DigestExistsError } from '../../functions/audit/ports';
import type { DigestJobDeps } from '../../functions/audit/run';
import { DIGEST_PREFIX, S3DigestStore } from '../../functions/audit/s3-store';
import { verifyAudit } from '../../functions/audit/verify';
import { AuditChainProblemsError, createAuditDigestHandler } from '../../functions/handlers/audit-digest';
import { storedAuditChainKey } from '../../functions/security/audit-chain-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { DynamoAuditLog } from '../../functions/store/audit';
import { padSeq } from '../../functions/store/audit-chain';
import { startLoopbackS3, type LoopbackS3 } from '../support/s3-loopback';

let kms: KmsServer;
let kmsClient: KMSClient;
let s3: LoopbackS3;
let s3Client: S3Client;
let db: LocalDynamo;
let dir: string;

beforeAll(async () => {
  [kms, s3, db] = await Promise.all([startKmsServer(), startLoopbackS3('digest-bucket'), startDynalite()]);
  for (const table of Object.values(db.tables)) {
    // dynalite turns a new table ACTIVE on the next tick.
    while ((await db.client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus !== 'ACTIVE') await new Promise((r) => setTimeout(r, 5));
  }
  kmsClient = new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint });
  s3Client = new S3Client({ ...LOCAL_AWS, endpoint: s3.endpoint, forcePathStyle: true });
  dir = mkdtempSync(join(tmpdir(), 'audit-aws-'));
});
afterAll(async () => {
  kmsClient?.destroy();
  s3Client?.destroy();
  rmSync(dir, { recursive: true, force: true });
  await Promise.all([kms?.close(), s3?.close(), db?.close()]);
});

describe('KmsDigestSigner (loopback KMS)', () => {
  it('signs with KMS Sign (RAW, ECDSA_SHA_256) and verifies with the public key fetched once', async () => {
    const signer = new KmsDigestSigner(kmsClient, kms.signingKeyId);
    const message = Buffer.alloc(32, 7);
    const before = { ...kms.calls };
    const sig = await signer.sign(message);
    expect(sig).toMatchObject({ alg: 'ECDSA_SHA_256', keyId: kms.signingKeyId });
    expect(kms.calls.Sign - before.Sign).toBe(1);
    expect(await signer.verify(message, sig)).toBe(true);
    expect(await signer.verify(Buffer.alloc(32, 8), sig)).toBe(false);
    // A valid signature by another key, even one claiming our key id, does not verify.
    const other = await new LocalDigestSigner(join(dir, 'other.pem'), join(dir, 'other.pub.pem')).sign(message);
    expect(await signer.verify(message, { ...other, keyId: kms.signingKeyId })).toBe(false);
    expect(await signer.verify(message, { ...sig, signature: 'AAAA' })).toBe(false);
    expect(kms.calls.GetPublicKey - before.GetPublicKey).toBe(1);
  });

  it('the symmetric personal-data key cannot sign', async () => {
    await expect(new KmsDigestSigner(kmsClient, kms.keyId).sign(Buffer.alloc(32))).rejects.toMatchObject({ name: 'InvalidKeyUsageException' });
  });
});

describe('S3DigestStore (loopback S3)', () => {
  it('puts with If-None-Match: * and a SHA-256 checksum; a second put of a name fails and changes nothing', async () => {
    const store = new S3DigestStore(s3Client, s3.bucket);
    const name = '2026-03-01T10:00:00.000Z.json';
    await store.put(name, '{"a":1}');
    const put = s3.requests.filter((r) => r.method === 'PUT').at(-1)!;
    expect(put.key).toBe(`${DIGEST_PREFIX}${name}`);
    expect(put.headers['if-none-match']).toBe('*');
    // S3 demands an integrity checksum on writes to an Object Lock bucket.
    expect(put.headers['x-amz-checksum-sha256']).toBe(createHash('sha256').update('{"a":1}').digest('base64'));
    expect(put.headers['x-amz-object-lock-mode']).toBeUndefined(); // the bucket's default retention applies
    await expect(store.put(name, '{"a":2}')).rejects.toBeInstanceOf(DigestExistsError);
    expect(s3.objects.get(`${DIGEST_PREFIX}${name}`)!.toString()).toBe('{"a":1}');
  });

  it('latest and atOrBefore page through listings and widen their window when digests are old', async () => {
    const now = new Date('2026-06-10T12:00:00.000Z');
    const store = new S3DigestStore(s3Client, s3.bucket, { now: () => now });
    s3.objects.clear();
    expect(await store.latest()).toBeUndefined();
    // One digest 100 days back: beyond both narrow windows.
    await store.put('2026-03-02T00:00:00.000Z.json', 'old');
    expect(await store.latest()).toEqual({ name: '2026-03-02T00:00:00.000Z.json', body: 'old' });
    s3.maxKeys = 2;
    for (const h of ['00', '01', '02', '03', '04']) await store.put(`2026-06-10T${h}:00:00.000Z.json`, h);
    expect((await store.latest())?.name).toBe('2026-06-10T04:00:00.000Z.json');
    expect(await store.atOrBefore(new Date('2026-06-10T02:30:00.000Z'))).toEqual({ name: '2026-06-10T02:00:00.000Z.json', body: '02' });
    expect((await store.atOrBefore(new Date('2026-06-10T02:00:00.000Z')))?.name).toBe('2026-06-10T02:00:00.000Z.json');
    expect((await store.atOrBefore(new Date('2026-05-01T00:00:00.000Z')))?.name).toBe('2026-03-02T00:00:00.000Z.json');
    expect(await store.atOrBefore(new Date('2026-01-01T00:00:00.000Z'))).toBeUndefined();
    s3.maxKeys = 1000;
  });
});

describe('the audit-digest handler on KMS + S3 + dynalite', () => {
  it('stores a signed digest; a break found on the way fails the invocation with counts only; verification sees removed newest records', async () => {
    s3.objects.clear();
    const keys = new KmsKeyProvider(kmsClient, kms.keyId);
    const writerChain = storedAuditChainKey(keys, db.client, db.tables.state);
    // The job and the verifier never create the key (their roles cannot write the state table).
    const readerChain = storedAuditChainKey(keys, db.client, db.tables.state, { create: false });
    const writer = new DynamoAuditLog(db.client, db.tables.audit, { chain: writerChain });
    const reader = new DynamoAuditLog(db.client, db.tables.audit, { chain: readerChain });
    let clock = Date.now() - 3_600_000;
    const now = () => new Date(clock);
    const append = async (subject: string) => writer.append({ subject, operator: 'sync-worker', action: 'update', outcome: 'ok', at: new Date(clock++) });
    for (let i = 0; i < 3; i++) await append('user:zhangsan');
    const signer = new KmsDigestSigner(kmsClient, kms.signingKeyId);
    const store = new S3DigestStore(s3Client, s3.bucket, { now });
    const jobDeps: DigestJobDeps = { audit: reader, chain: readerChain, store, signer, retentionDays: 400, intervalSeconds: 3600, now };
    const handler = createAuditDigestHandler({ jobDeps: async () => jobDeps });

    const ok = await handler({}, {} as never);
    expect(ok).toMatchObject({ subjects: 1, advanced: 1, recordsRead: 3, problems: 0 });
    expect([...s3.objects.keys()]).toEqual([`${DIGEST_PREFIX}${ok.name}`]);

    // Between two runs: a record of another person is edited in the table (no re-link possible).
    clock += 20 * 60_000;
    await append('user:lisi');
    await append('user:lisi');
    const one = { pk: { S: 'user:lisi' }, sk: { S: padSeq(1) } };
    await db.client.send(new UpdateItemCommand({ TableName: db.tables.audit, Key: one, UpdateExpression: 'SET outcome = :o', ExpressionAttributeValues: { ':o': { S: 'error' } } }));
    clock += 60_000;
    const failed = await handler({}, {} as never).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(AuditChainProblemsError);
    expect((failed as AuditChainProblemsError).summary).toMatchObject({ subjects: 1, problems: 1, byKind: { edited: 1 } }); // lisi's head not signed
    expect((failed as Error).message).not.toMatch(/lisi|zhangsan/);
    expect(s3.objects.size).toBe(2); // the digest was stored all the same

    // Then the newest record of the first person disappears.
    await db.client.send(new DeleteItemCommand({ TableName: db.tables.audit, Key: { pk: { S: 'user:zhangsan' }, sk: { S: padSeq(3) } } }));
    const v = await verifyAudit({ audit: reader, chain: readerChain, store, verifier: signer, retentionDays: 400, now }, { all: true });
    expect(v.problems.map((p) => `${p.subject} ${p.seq} ${p.kind}`)).toEqual(['user:lisi 1 edited', 'user:zhangsan 3 removed-newest']);
  });
});
