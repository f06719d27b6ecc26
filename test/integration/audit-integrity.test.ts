/**
 * The audit trail's tamper evidence end to end, on dynalite with the real DynamoDB client:
 * HMAC links under the KMS-protected chain key (loopback KMS), signed digests of the chain
 * heads (local adapters: ECDSA key file, append-only files), verification, and the CLI.
 *
 * The attacker here has write access to the audit table (PutItem/UpdateItem/DeleteItem) but
 * not the chain key: they can edit a field and recompute a plain SHA-256, or a HMAC under a
 * key of their own, rewrite history, insert, delete. Every such change must be reported with
 * the right subject, seq and kind; records removed by TTL must not be.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteItemCommand, DescribeTableCommand, GetItemCommand, PutItemCommand, ScanCommand, UpdateItemCommand, type AttributeValue, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { startKmsServer, type KmsServer } from '../../bin/local/sim/kms';
import { main } from '../../bin/wecom-sync';
import { digestName, sealDigest, type AuditDigest } from '../../functions/audit/digest';
import { LocalDigestSigner, LocalDigestStore, localDigestJobDeps, localDigestPaths, localVerifyDeps } from '../../functions/audit/local';
import { DigestExistsError } from '../../functions/audit/ports';
import { runAuditDigest } from '../../functions/audit/run';
import { verifyAudit } from '../../functions/audit/verify';
import { AUDIT_CHAIN_KEY, storedAuditChainKey, type AuditChainKey } from '../../functions/security/audit-chain-key';
import { createAuditChainKey } from '../../functions/security/cipher-from-env';
import { HASH_KEY, StoredKeyMissingError, storedKeyContext } from '../../functions/security/hash-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { LocalFileKeyProvider } from '../../functions/security/local-key-provider';
import type { KeyProvider } from '../../functions/security/ports';
import { DynamoAuditLog } from '../../functions/store/audit';
import { canonicalJson, padSeq, sha256Hex, type ChainProblem } from '../../functions/store/audit-chain';

const DAY = 86_400_000;
const RETENTION = 30;
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

let kms: KmsServer;
let kmsClient: KMSClient;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  kms = await startKmsServer();
  kmsClient = new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint });
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
afterAll(async () => {
  kmsClient?.destroy();
  await kms?.close();
});

/** A fresh world: tables, a clock, the chain key under (loopback) KMS, digests in a temp dir. */
async function world(opts: { keys?: (dir: string) => KeyProvider } = {}) {
  const db: LocalDynamo = await startDynalite();
  await untilActive(db);
  const dir = mkdtempSync(join(tmpdir(), 'audit-integrity-'));
  cleanups.push(() => db.close(), () => rmSync(dir, { recursive: true, force: true }));
  let clock = T0;
  const now = () => new Date(clock);
  const keys = opts.keys ? opts.keys(dir) : new KmsKeyProvider(kmsClient, kms.keyId);
  const chain: AuditChainKey = storedAuditChainKey(keys, db.client, db.tables.state);
  const audit = new DynamoAuditLog(db.client, db.tables.audit, { chain, retentionDays: RETENTION, now });
  const queries = { byDay: 0, bySubject: 0 };
  db.client.middlewareStack.add(
    (next, context) => async (args) => {
      if ((context as { commandName?: string }).commandName === 'QueryCommand') {
        if ((args.input as QueryCommandInput).IndexName === 'byDay') queries.byDay++;
        else queries.bySubject++;
      }
      return next(args);
    },
    { step: 'initialize', name: 'countQueries' },
  );
  const base = { dataDir: join(dir, '.data'), audit, chain: storedAuditChainKey(keys, db.client, db.tables.state, { create: false }), retentionDays: RETENTION, now };
  const w = {
    db,
    dir,
    dataDir: base.dataDir,
    keys,
    audit,
    queries,
    now,
    set: (ms: number) => void (clock = ms),
    advance: (ms: number) => void (clock += ms),
    async append(subject: string, n = 1, extra: { action?: 'create' | 'update' | 'noop'; stepMs?: number } = {}) {
      for (let i = 0; i < n; i++) {
        await audit.append({ subject, operator: 'sync-worker', action: extra.action ?? 'update', outcome: 'ok', target: 'mailbox', changes: [{ field: 'mobile', new: '+8613800138000' }, { field: 'position', old: 'a', new: 'b' }] });
        clock += extra.stepMs ?? 1_000;
      }
    },
    digest: () => runAuditDigest(localDigestJobDeps({ ...base, intervalSeconds: 3600 })),
    verify: (scope: { subject: string } | { all: true }) => verifyAudit(localVerifyDeps(base), scope),
    item: async (subject: string, seq: number) =>
      (await db.client.send(new GetItemCommand({ TableName: db.tables.audit, Key: { pk: { S: subject }, sk: { S: padSeq(seq) } }, ConsistentRead: true }))).Item!,
    put: (item: Record<string, AttributeValue>) => db.client.send(new PutItemCommand({ TableName: db.tables.audit, Item: item })),
    remove: (subject: string, seq: number) => db.client.send(new DeleteItemCommand({ TableName: db.tables.audit, Key: { pk: { S: subject }, sk: { S: padSeq(seq) } } })),
    /** What DynamoDB's TTL would have deleted by now (here: all of it, at once). */
    async expire(filter: (item: Record<string, AttributeValue>) => boolean = () => true) {
      const items = (await db.client.send(new ScanCommand({ TableName: db.tables.audit }))).Items ?? [];
      for (const it of items) {
        if (Number(it.expiresAt!.N) < clock / 1000 && filter(it)) await db.client.send(new DeleteItemCommand({ TableName: db.tables.audit, Key: { pk: it.pk!, sk: it.sk! } }));
      }
    },
  };
  return w;
}

/**
 * dynalite answers CreateTable at once and turns the table ACTIVE on the next tick (even with
 * createTableMs 0); a query in between is ResourceNotFound. Wait, as a client of DynamoDB would.
 */
async function untilActive(db: LocalDynamo): Promise<void> {
  for (const table of Object.values(db.tables)) {
    for (let i = 0; i < 100; i++) {
      const t = await db.client.send(new DescribeTableCommand({ TableName: table }));
      if (t.Table?.TableStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** The record as an attacker reads it back (attribute map → plain values, table keys dropped). */
function recordOf(item: Record<string, AttributeValue>): Record<string, unknown> {
  const plain = (v: AttributeValue): unknown =>
    v.S ?? (v.N !== undefined ? Number(v.N) : v.BOOL ?? (v.NULL ? null : v.L ? v.L.map(plain) : v.M ? Object.fromEntries(Object.entries(v.M).map(([k, x]) => [k, plain(x)])) : undefined));
  const { pk: _pk, sk: _sk, day: _d, atSeq: _a, expiresAt: _e, ...rest } = item;
  return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, plain(v)]));
}

/** Re-hash an item the way an attacker without the chain key can: plain SHA-256, or HMAC under their own key. */
function rehashed(item: Record<string, AttributeValue>, how: 'sha256' | 'wrong-key'): Record<string, AttributeValue> {
  const { hash: _h, ...unsigned } = recordOf(item);
  const text = canonicalJson(unsigned);
  const hash = how === 'sha256' ? sha256Hex(text) : createHmac('sha256', randomBytes(32)).update(text).digest('hex');
  return { ...item, hash: { S: hash } };
}

const kinds = (problems: ChainProblem[]) => problems.map((p) => `${p.subject} ${p.seq ?? '-'} ${p.kind}`);

describe('HMAC links and the trail on its own', () => {
  it('the chain key: created once by an appender, stored wrapped under its own KMS purpose; readers never create it', async () => {
    const w = await world();
    const keys = new KmsKeyProvider(kmsClient, kms.keyId);
    const reader = storedAuditChainKey(keys, w.db.client, w.db.tables.state, { create: false });
    await expect(reader.mac('x')).rejects.toBeInstanceOf(StoredKeyMissingError);
    expect((await w.db.client.send(new ScanCommand({ TableName: w.db.tables.state }))).Items).toEqual([]);

    await w.append('user:k', 1);
    const meta = (await w.db.client.send(new GetItemCommand({ TableName: w.db.tables.state, Key: { pk: { S: AUDIT_CHAIN_KEY.pk }, sk: { S: 'meta' } } }))).Item!;
    expect(meta.wrappedKey!.B!.length).toBeGreaterThan(32); // ciphertext, not the key
    // Bound to its purpose: it does not unwrap as the keyed-hash key (nor the other way round).
    await expect(keys.decryptDataKey(meta.wrappedKey!.B!, storedKeyContext(HASH_KEY))).rejects.toThrow();
    // The same key for every reader, including one wired from the environment as a Lambda is.
    // (The SDK reads region and credentials from the process environment, as in Lambda.)
    for (const [k, v] of Object.entries({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' })) vi.stubEnv(k, v);
    cleanups.push(() => void vi.unstubAllEnvs());
    const fromEnv = await createAuditChainKey(w.db.client, { KMS_KEY_ID: kms.keyId, KMS_ENDPOINT: kms.endpoint, STATE_TABLE: w.db.tables.state }, { create: false });
    const { hash, ...unsigned } = recordOf(await w.item('user:k', 1));
    expect(await reader.mac(canonicalJson(unsigned))).toBe(hash);
    expect(await fromEnv.mac(canonicalJson(unsigned))).toBe(hash);
  });

  it('a clean trail verifies; the links are MACs under the chain key, not plain hashes', async () => {
    const w = await world();
    await w.append('user:clean', 3);
    const item = await w.item('user:clean', 2);
    expect(item.alg!.S).toBe('hmac-sha256');
    const { hash, ...unsigned } = recordOf(item);
    expect(hash).not.toBe(sha256Hex(canonicalJson(unsigned))); // anyone could compute that one
    expect(await w.audit.verify('user:clean')).toEqual({ ok: true, problems: [] });
    expect(await w.verify({ subject: 'user:clean' })).toMatchObject({ ok: true, problems: [], digest: null });
  });

  it('edit a field and recompute a plain SHA-256: edited, at that seq', async () => {
    const w = await world();
    await w.append('user:e1', 4);
    await w.digest();
    const two = await w.item('user:e1', 2);
    await w.put(rehashed({ ...two, operator: { S: 'cli:mallory' } }, 'sha256'));
    expect(kinds((await w.verify({ all: true })).problems)).toEqual(['user:e1 2 edited']);
  });

  it('edit and re-link with a HMAC under a wrong key, even the newest record the digest saw: edited', async () => {
    const w = await world();
    await w.append('user:e2', 3);
    await w.digest();
    const three = await w.item('user:e2', 3);
    await w.put(rehashed({ ...three, outcome: { S: 'error' } }, 'wrong-key'));
    const v = await w.verify({ subject: 'user:e2' });
    expect(kinds(v.problems)).toEqual(['user:e2 3 edited']);
    expect(v.problems[0]!.detail).not.toMatch(/13800138000|mallory|error/);
  });

  it('rewrite a create as a noop and re-hash it: edited', async () => {
    const w = await world();
    await w.append('user:create', 1, { action: 'create' });
    await w.append('user:create', 2);
    const one = await w.item('user:create', 1);
    await w.put(rehashed({ ...one, action: { S: 'noop' } }, 'sha256'));
    expect(kinds((await w.verify({ subject: 'user:create' })).problems)).toEqual(['user:create 1 edited']);
  });

  it('insert a record after the newest (wrong-key HMAC), or under a key of its own: inserted', async () => {
    const w = await world();
    await w.append('user:ins', 2);
    await w.digest();
    const two = recordOf(await w.item('user:ins', 2));
    const forged = { ...(await w.item('user:ins', 2)), sk: { S: padSeq(3) }, seq: { N: '3' }, prevHash: { S: String(two.hash) }, action: { S: 'delete' } };
    await w.put(rehashed(forged, 'wrong-key'));
    // And one squeezed between seq 1 and 2 under a key that is not a padded seq.
    await w.put(rehashed({ ...(await w.item('user:ins', 1)), sk: { S: `${padSeq(1)}x` }, action: { S: 'disable' } }, 'sha256'));
    expect(kinds((await w.verify({ subject: 'user:ins' })).problems)).toEqual(['user:ins 1 inserted', 'user:ins 3 inserted']);
  });

  it('remove a record inside the chain: removed; move an authentic one onto its key: moved', async () => {
    const w = await world();
    await w.append('user:gap', 5);
    await w.remove('user:gap', 3);
    expect(kinds((await w.verify({ subject: 'user:gap' })).problems)).toEqual(['user:gap 3 removed']);
    // Renumbering by moving seq 4's item (unchanged, authentic) to seq 3's key.
    await w.put({ ...(await w.item('user:gap', 4)), sk: { S: padSeq(3) } });
    await w.remove('user:gap', 4);
    expect(kinds((await w.verify({ subject: 'user:gap' })).problems)).toEqual(['user:gap 3 removed', 'user:gap 4 moved']);
  });

  it('a record without the chain MAC (a plain SHA-256 record, alg dropped): unauthenticated', async () => {
    const w = await world();
    await w.append('user:legacy', 2);
    const { alg: _alg, ...one } = await w.item('user:legacy', 1);
    await w.put(rehashed(one, 'sha256'));
    expect(kinds((await w.verify({ subject: 'user:legacy' })).problems)).toEqual(['user:legacy 1 unauthenticated']);
  });
});

describe('signed digests of the chain heads', () => {
  it('remove the newest records after a digest: removed-newest, naming what the digest saw', async () => {
    const w = await world();
    await w.append('user:newest', 5);
    const d = await w.digest();
    await w.remove('user:newest', 5);
    await w.remove('user:newest', 4);
    // The trail alone looks fine: that is what the digest is for.
    expect((await w.audit.verify('user:newest')).ok).toBe(true);
    const v = await w.verify({ all: true });
    expect(kinds(v.problems)).toEqual(['user:newest 4 removed-newest']);
    expect(v.problems[0]!.detail).toBe(`records after seq 3 removed: the digest of ${d.createdAt} saw seq 5`);
    expect(v.digest).toEqual({ name: d.name, createdAt: d.createdAt });
  });

  it('delete a whole trail: trail-deleted', async () => {
    const w = await world();
    await w.append('user:gone', 3);
    await w.append('user:stays', 1);
    await w.digest();
    for (const seq of [1, 2, 3]) await w.remove('user:gone', seq);
    const v = await w.verify({ all: true });
    expect(v.subjects).toBe(2);
    expect(kinds(v.problems)).toEqual(['user:gone 3 trail-deleted']);
  });

  it('holds subjects, seqs, hashes and times only; files 0600 in a 0700 directory; key 0600', async () => {
    const w = await world();
    await w.append('user:zhangsan', 2);
    const d = await w.digest();
    const paths = localDigestPaths(w.dataDir);
    const text = readFileSync(join(paths.dir, d.name), 'utf8');
    const doc = JSON.parse(text) as { digest: AuditDigest; signature: { alg: string } };
    expect(doc.digest).toMatchObject({ version: 1, createdAt: d.createdAt, retentionDays: RETENTION, intervalSeconds: 3600, previous: null });
    expect(Object.keys(doc.digest.heads)).toEqual(['user:zhangsan']);
    expect(Object.keys(doc.digest.heads['user:zhangsan']!).sort()).toEqual(['at', 'hash', 'seq']);
    expect(doc.signature.alg).toBe('ECDSA_SHA_256');
    // The full value (a bare "138" can occur inside a hex hash by chance).
    expect(text).not.toMatch(/13800138000|\*\*\*\*|mobile|position|sync-worker/);
    expect(statSync(join(paths.dir, d.name)).mode & 0o777).toBe(0o600);
    expect(statSync(paths.dir).mode & 0o777).toBe(0o700);
    expect(statSync(paths.signingKey).mode & 0o777).toBe(0o600);
    // The next digest chains to this document's bytes.
    w.advance(3_600_000);
    const d2 = await w.digest();
    const doc2 = JSON.parse(readFileSync(join(paths.dir, d2.name), 'utf8')) as { digest: AuditDigest };
    expect(doc2.digest.previous).toBe(sha256Hex(text));
  });

  it('is append-only: a second write of the same name fails and leaves the first intact', async () => {
    const w = await world();
    await w.append('user:a', 1);
    const d = await w.digest();
    const store = new LocalDigestStore(localDigestPaths(w.dataDir).dir);
    const before = readFileSync(join(localDigestPaths(w.dataDir).dir, d.name), 'utf8');
    await expect(store.put(d.name, '{}')).rejects.toBeInstanceOf(DigestExistsError);
    // The job itself, run twice at the same instant, refuses too.
    await expect(w.digest()).rejects.toBeInstanceOf(DigestExistsError);
    expect(readFileSync(join(localDigestPaths(w.dataDir).dir, d.name), 'utf8')).toBe(before);
  });

  it('checks signatures: a digest edited by hand, or signed with another key, is digest-invalid and the previous valid one is used', async () => {
    const w = await world();
    await w.append('user:d', 3);
    await w.digest();
    w.advance(3_600_000);
    await w.append('user:d', 2);
    const d2 = await w.digest();
    // The attacker removes seq 4..5 and lowers the head in the newest digest to match.
    await w.remove('user:d', 5);
    await w.remove('user:d', 4);
    const file = join(localDigestPaths(w.dataDir).dir, d2.name);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { digest: AuditDigest };
    doc.digest.heads['user:d']!.seq = 3;
    writeFileSync(file, canonicalJson(doc));
    // … and adds a newer digest signed with a key of their own.
    w.advance(60_000);
    const forgedAt = w.now().toISOString();
    const own = new LocalDigestSigner(join(w.dir, 'evil.pem'), join(w.dir, 'evil.pub.pem'));
    const forged: AuditDigest = { ...doc.digest, createdAt: forgedAt, previous: null };
    await new LocalDigestStore(localDigestPaths(w.dataDir).dir).put(digestName(forgedAt), await sealDigest(forged, own));

    const v = await w.verify({ all: true });
    expect(kinds(v.problems)).toEqual([`${d2.name} - digest-invalid`, `${digestName(forgedAt)} - digest-invalid`].sort());
    expect(v.problems.map((p) => p.detail).sort()).toEqual([`audit digest ${d2.name}: signature does not verify`, `audit digest ${digestName(forgedAt)}: signature does not verify`].sort());
    // The first digest (head 3) is what remains trustworthy: seq 4..5 were after it.
    expect(v.digest?.createdAt).toBe(new Date(T0 + 3_000).toISOString());
  });

  it('the job never signs a tampered head: it reports the record and keeps the head before it', async () => {
    const w = await world();
    await w.append('user:job', 2);
    await w.append('user:fine', 1);
    await w.digest();
    w.advance(3_600_000);
    await w.append('user:job', 3);
    await w.append('user:fine', 1);
    await w.put(rehashed({ ...(await w.item('user:job', 4)), reason: { S: 'nothing happened' } }, 'wrong-key'));
    w.advance(3_600_000);
    const d = await w.digest();
    expect(kinds(d.problems)).toEqual(['user:job 4 edited']);
    const doc = JSON.parse(readFileSync(join(localDigestPaths(w.dataDir).dir, d.name), 'utf8')) as { digest: AuditDigest };
    expect(doc.digest.heads['user:job']!.seq).toBe(3); // not 5: 4 does not verify
    expect(doc.digest.heads['user:fine']!.seq).toBe(2); // others still advance
  });

  it('is incremental: a second run reads only the records since the previous digest', async () => {
    const w = await world();
    w.set(T0 + 20 * DAY + DAY / 2);
    for (let i = 0; i < 20; i++) await w.append(`user:p${i}`, 2);
    w.advance(3_600_000); // beyond the overlap: the next run must not read these again
    w.queries.byDay = 0;
    const first = await w.digest();
    expect(first.previous).toBeNull();
    expect(w.queries.byDay).toBe(RETENTION + 1); // the whole retention window, one query per day
    expect(first.recordsRead).toBe(40);

    w.advance(3_600_000);
    await w.append('user:p3', 1);
    await w.append('user:new', 1);
    w.queries.byDay = 0;
    w.queries.bySubject = 0;
    const second = await w.digest();
    expect(second.previous).toBe(first.name);
    expect(w.queries.byDay).toBe(1); // only today, since the previous digest (less the overlap)
    expect(w.queries.bySubject).toBe(0);
    expect(second.recordsRead).toBe(2);
    expect(second).toMatchObject({ subjects: 21, advanced: 2, problems: [] });
  });

  it('a record whose `at` is older than the window is found by a direct lookup, not reported', async () => {
    const w = await world();
    await w.append('user:late', 2);
    await w.digest();
    w.advance(3 * 3_600_000);
    // An append stamped two hours back (e.g. a long run passing its start time), then a normal one.
    await w.audit.append({ subject: 'user:late', operator: 'reconcile', action: 'noop', outcome: 'ok', at: new Date(w.now().getTime() - 2 * 3_600_000) });
    await w.append('user:late', 1);
    w.advance(60_000);
    const d = await w.digest();
    expect(d.problems).toEqual([]);
    const doc = JSON.parse(readFileSync(join(localDigestPaths(w.dataDir).dir, d.name), 'utf8')) as { digest: AuditDigest };
    expect(doc.digest.heads['user:late']!.seq).toBe(4);
    expect((await w.verify({ all: true })).ok).toBe(true);
  });
});

describe('retention: records removed by TTL are not a break', () => {
  it('expired prefixes, out-of-order TTL deletes and expired trails pass; a removed recent prefix does not', async () => {
    const w = await world();
    // user:old: all expired by the end. user:mixed: two expired, one recent. user:lag: TTL deleted
    // seq 2 before seq 1. user:fresh: recent, its prefix removed by an attacker.
    w.set(T0);
    await w.append('user:old', 3, { stepMs: DAY });
    w.set(T0 + DAY);
    await w.append('user:mixed', 2, { stepMs: DAY });
    w.set(T0 + 2 * DAY);
    await w.append('user:lag', 3, { stepMs: 3_600_000 });
    w.set(T0 + 3 * DAY);
    await w.digest(); // saw user:mixed at seq 2, user:lag at 3
    for (let day = 4; day <= 39; day += 5) {
      w.set(T0 + day * DAY);
      if (day === 24) await w.append('user:mixed', 1);
      if (day === 24) await w.append('user:lag', 1);
      if (day === 34) await w.append('user:fresh', 3, { stepMs: 3_600_000 });
      await w.digest();
    }
    w.set(T0 + 40 * DAY);
    await w.digest();
    // TTL: everything written before day 10 has expired; DynamoDB deletes it in no particular order.
    await w.expire((it) => !(it.pk!.S === 'user:lag' && it.sk!.S === padSeq(1)));
    const left = ((await w.db.client.send(new ScanCommand({ TableName: w.db.tables.audit }))).Items ?? []).map((i) => `${i.pk!.S}#${Number(i.sk!.S)}`).sort();
    expect(left).toEqual(['user:fresh#1', 'user:fresh#2', 'user:fresh#3', 'user:lag#1', 'user:lag#4', 'user:mixed#3']);

    const v = await w.verify({ all: true });
    expect(v.problems).toEqual([]);
    expect(v.witness).not.toBeNull(); // the digest from day 3 proved user:mixed's seq 1..2 had expired

    await w.remove('user:fresh', 1);
    await w.remove('user:fresh', 2);
    expect(kinds((await w.verify({ all: true })).problems)).toEqual(['user:fresh 1 removed']);
  }, 60_000);
});

describe('wecom-sync audit (the CLI against a local data directory)', () => {
  let server: Server;
  beforeAll(async () => {
    server = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('audit digest → 0; audit verify --all → 0, then 2 with each break listed; audit --subject → 2', async () => {
    let keyFile = '';
    const w = await world({ keys: (dir) => new LocalFileKeyProvider((keyFile = join(dir, '.data', 'master.key'))) });
    w.set(Date.now() - 60_000); // the CLI runs on the real clock: our records are just behind it
    mkdirSync(w.dataDir, { recursive: true });
    writeFileSync(join(w.dataDir, 'creds.json'), JSON.stringify({ corpId: 'c', contactsSecret: 's', appSecret: 'a', tenantId: 't', clientId: 'i', clientSecret: 'x' }));
    writeFileSync(
      join(w.dataDir, 'local-stack.json'),
      JSON.stringify({
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        dynamoEndpoint: w.db.endpoint,
        tables: w.db.tables,
        keyFile,
        wecomApiBase: 'http://127.0.0.1:9',
        credentialsFile: join(w.dataDir, 'creds.json'),
      }),
    );
    await w.append('user:cli', 3);
    await w.append('user:other', 1);
    const run = async (...argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(argv, { io: { out: (l) => void out.push(l), err: (l) => void err.push(l), tty: false }, cwd: w.dir });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };

    let r = await run('audit', 'digest', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ subjects: 2, problems: [] });
    expect(readdirSync(localDigestPaths(w.dataDir).dir)).toHaveLength(1);

    r = await run('audit', 'verify', '--all');
    expect(r.code).toBe(0);
    expect(r.out).toContain('audit trail: verified');

    await w.remove('user:cli', 3);
    await w.put(rehashed({ ...(await w.item('user:other', 1)), operator: { S: 'cli:mallory' } }, 'sha256'));
    r = await run('audit', 'verify', '--all', '--json');
    expect(r.code).toBe(2);
    expect(kinds(JSON.parse(r.out).problems)).toEqual(['user:cli 3 removed-newest', 'user:other 1 edited']);
    r = await run('audit', 'verify', '--all');
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/user:cli\s+3\s+removed-newest/);
    expect(r.out).toContain('AUDIT TRAIL BROKEN: 2 problem(s)');

    r = await run('audit', 'verify', '--subject', 'user:other');
    expect(r.code).toBe(2);
    r = await run('audit', '--subject', 'user:cli', '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).chain).toMatchObject({ ok: false, problems: [{ subject: 'user:cli', seq: 3, kind: 'removed-newest' }] });
    expect(r.out).not.toContain('+86138000');
  }, 30_000);
});
