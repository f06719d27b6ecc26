import { CreateTableCommand, DeleteItemCommand, DeleteTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { waitActive } from '../../bin/local/table-ready';
import { startKmsServer, type KmsServer } from '../../bin/local/sim/kms';
import { EnvelopeCipher } from '../../functions/security/envelope';
import { storedAuditChainKey, type AuditChainKey } from '../../functions/security/audit-chain-key';
import { StoredHashKey } from '../../functions/security/hash-key';
import { KmsKeyProvider } from '../../functions/security/kms-key-provider';
import { DynamoAuditLog, GENESIS_HASH, padSeq } from '../../functions/store/audit';
import { DynamoInbox, hasPendingIndex, PENDING_SHARDS, pendingKeyOf } from '../../functions/store/inbox';
import { VersionConflictError, type InboxEntry, type StateRecord } from '../../functions/store/ports';
import { DynamoStateStore } from '../../functions/store/state';
import type { Subject } from '../../functions/core/model';
import { tableDefinitions, type TableNames } from '../../functions/store/tables';

/**
 * dynalite by default. For a conformance run against AWS's own DynamoDB Local, start it and
 * set DYNAMO_CONFORMANCE_ENDPOINT (see the note in the report / README): the same tests then
 * run on fresh, uniquely named tables there.
 */
async function startBackend(): Promise<LocalDynamo> {
  const endpoint = process.env.DYNAMO_CONFORMANCE_ENDPOINT;
  if (!endpoint) return startDynalite();
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  const suffix = Date.now().toString(36);
  const tables: TableNames = { inbox: `inbox-${suffix}`, state: `state-${suffix}`, audit: `audit-${suffix}` };
  for (const def of tableDefinitions(tables)) {
    await client.send(new CreateTableCommand(def));
    await waitActive(client, def.TableName!);
  }
  return {
    endpoint,
    client,
    tables,
    close: async () => {
      for (const name of Object.values(tables)) await client.send(new DeleteTableCommand({ TableName: name }));
      client.destroy();
    },
  };
}

const MOBILE = '+8613800138000';
const PERSONAL_EMAIL = 'zhang.san.home@qq.com';

let db: LocalDynamo;
let kms: KmsServer;
let kmsClient: KMSClient;
let state: DynamoStateStore;
let audit: DynamoAuditLog;
let cipher: EnvelopeCipher;
let chain: AuditChainKey;

beforeAll(async () => {
  [db, kms] = await Promise.all([startBackend(), startKmsServer()]);
  kmsClient = new KMSClient({ ...LOCAL_AWS, endpoint: kms.endpoint });
  const keys = new KmsKeyProvider(kmsClient, kms.keyId);
  cipher = new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, db.client, db.tables.state) });
  state = new DynamoStateStore(db.client, db.tables.state);
  chain = storedAuditChainKey(keys, db.client, db.tables.state);
  audit = new DynamoAuditLog(db.client, db.tables.audit, { chain });
});
afterAll(async () => {
  kmsClient?.destroy();
  await Promise.all([db?.close(), kms?.close()]);
});

function record(subject: Subject, extra: Partial<StateRecord> = {}): StateRecord {
  return {
    subject,
    wecomId: subject.split(':')[1]!,
    status: 'active',
    fields: { name: '张三', email: `${subject.split(':')[1]}@example.com`, departments: ['技术部/研发组'] },
    sensitive: {},
    lastSyncedAt: '2026-11-01T00:00:00.000Z',
    version: 0,
    ...extra,
  };
}

describe('DynamoStateStore', () => {
  it('stores and reads a record; version 0 means "must not exist"', async () => {
    const put = await state.put(record('user:alice', { provider: 'graph', targetId: 'g-alice' }));
    expect(put.version).toBe(1);
    const got = await state.get('user:alice');
    expect(got).toEqual(put);
    expect(await state.get('user:nobody')).toBeUndefined();
    await expect(state.put(record('user:alice'))).rejects.toBeInstanceOf(VersionConflictError);
  });

  it('two concurrent writers: one wins, the loser gets VersionConflictError, re-reads and retries', async () => {
    const base = await state.put(record('user:race'));
    const writerA = { ...base, fields: { ...base.fields, position: 'A' } };
    const writerB = { ...base, fields: { ...base.fields, position: 'B' } };
    const results = await Promise.allSettled([state.put(writerA), state.put(writerB)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(VersionConflictError);
    expect((lost[0]!.reason as VersionConflictError).subject).toBe('user:race');

    const fresh = (await state.get('user:race'))!;
    expect(fresh.version).toBe(2);
    const retried = await state.put({ ...fresh, fields: { ...fresh.fields, position: 'retried' } });
    expect(retried.version).toBe(3);
    expect((await state.get('user:race'))!.fields.position).toBe('retried');
    // A stale version is still refused after the retry.
    await expect(state.put({ ...fresh, fields: {} })).rejects.toBeInstanceOf(VersionConflictError);
  });

  it('findByTargetId follows the mapping, including a move to another account', async () => {
    const bob = await state.put(record('user:bob', { provider: 'graph', targetId: 'g-bob-1' }));
    expect((await state.findByTargetId('graph', 'g-bob-1'))?.subject).toBe('user:bob');
    expect(await state.findByTargetId('google', 'g-bob-1')).toBeUndefined();
    await state.put({ ...bob, targetId: 'g-bob-2' });
    expect(await state.findByTargetId('graph', 'g-bob-1')).toBeUndefined();
    expect((await state.findByTargetId('graph', 'g-bob-2'))?.version).toBe(2);
  });

  it('claimUnique: the first subject owns the hash, a second sees the owner; release by a non-owner is a no-op', async () => {
    const h = await cipher.hash('mobile', MOBILE);
    expect(await state.claimUnique('mobile', h, 'user:c1')).toBe('user:c1');
    expect(await state.claimUnique('mobile', h, 'user:c1')).toBe('user:c1'); // idempotent
    expect(await state.claimUnique('mobile', h, 'user:c2')).toBe('user:c1');
    await state.releaseUnique('mobile', h, 'user:c2'); // not the owner
    expect(await state.claimUnique('mobile', h, 'user:c2')).toBe('user:c1');
    await state.releaseUnique('mobile', h, 'user:c1');
    expect(await state.claimUnique('mobile', h, 'user:c2')).toBe('user:c2');
    // Per field: the same hash under another field is a different claim.
    expect(await state.claimUnique('telephone', h, 'user:c3')).toBe('user:c3');
    // Concurrent claims agree on one owner.
    const h2 = await cipher.hash('mobile', '+8613900139000');
    const owners = await Promise.all(['user:d1', 'user:d2', 'user:d3'].map((s) => state.claimUnique('mobile', h2, s as Subject)));
    expect(new Set(owners).size).toBe(1);
  });

  it('listPage pages through one kind; listDueForDeletion returns only users past deleteAfter', async () => {
    for (let i = 0; i < 120; i++) await state.put(record(`party:${1000 + i}`));
    let cursor: string | undefined;
    const seen: string[] = [];
    let pages = 0;
    do {
      const page = await state.listPage('party', cursor);
      seen.push(...page.records.map((r) => r.subject));
      cursor = page.next;
      pages++;
    } while (cursor);
    expect(pages).toBeGreaterThan(1);
    expect(new Set(seen).size).toBe(120);
    expect(seen.every((s) => s.startsWith('party:'))).toBe(true);

    await state.put(record('user:due', { status: 'pending-delete', deleteAfter: '2026-11-01T00:00:00.000Z' }));
    await state.put(record('user:notyet', { status: 'pending-delete', deleteAfter: '2026-12-01T00:00:00.000Z' }));
    const due = await state.listDueForDeletion(new Date('2026-11-15T00:00:00.000Z'));
    expect(due.map((r) => r.subject)).toEqual(['user:due']);
  });

  it('the deletion guard window: 30 workers racing for 5 slots admit exactly 5; one person counts once; the window slides', async () => {
    const now = new Date('2026-12-01T10:00:00.000Z');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => state.admitDestructive(`user:burst${i}` as Subject, now, 600_000, 5)));
    expect(results.filter((r) => r.admitted)).toHaveLength(5);
    const admitted = results.map((r, i) => (r.admitted ? `user:burst${i}` : '')).filter(Boolean) as Subject[];
    expect((await state.admitDestructive(admitted[0]!, now, 600_000, 5)).admitted).toBe(true); // already in the window
    expect((await state.admitDestructive('user:late' as Subject, now, 600_000, 5)).admitted).toBe(false);
    expect((await state.admitDestructive('user:late' as Subject, new Date(now.getTime() + 601_000), 600_000, 5)).admitted).toBe(true);
  });

  it('listHeld pages through the sparse byHeld index only; countManaged counts people not marked deleted', async () => {
    const before = await state.countManaged();
    for (let i = 0; i < 3; i++) await state.put(record(`user:held${i}`, { held: { action: 'disable-mailbox', target: 'mailbox', reason: 'r', since: '2026-12-01T00:00:00.000Z', eventIds: ['e'], status: 'held' } }));
    await state.put(record('user:gone', { status: 'deleted' }));
    const held = await state.listHeld();
    expect(held.records.map((r) => r.subject).sort()).toEqual(['user:held0', 'user:held1', 'user:held2']);
    expect(held.records[0]!.held).toMatchObject({ status: 'held' });
    expect(await state.countManaged()).toBe(before + 3);
    // Clearing the hold takes the person out of the index.
    const h0 = (await state.get('user:held0'))!;
    await state.put({ ...h0, held: undefined });
    expect((await state.listHeld()).records.map((r) => r.subject)).not.toContain('user:held0');
  });

  it('refuses sensitive values in clear, accepts sealed ones that open again', async () => {
    await expect(state.put(record('user:leaky', { fields: { mobile: MOBILE } }))).rejects.toThrow(/must be stored sealed/);
    await expect(
      state.put(record('user:leaky', { sensitive: { mobile: { ct: MOBILE, h: 'x' } } })),
    ).rejects.toThrow(/not a SealedValue/);
    const where = { table: db.tables.state, subject: 'user:zhangsan', field: 'mobile' };
    const sealed = await cipher.seal(MOBILE, where);
    const mail = await cipher.seal(PERSONAL_EMAIL, { ...where, field: 'personalEmail' });
    await state.put(record('user:zhangsan', { sensitive: { mobile: sealed, personalEmail: mail }, fields: { name: '张三', mobile: null } }));
    const back = (await state.get('user:zhangsan'))!;
    expect(await cipher.open(back.sensitive.mobile!, where)).toBe(MOBILE);
    expect(await cipher.open(back.sensitive.personalEmail!, { ...where, field: 'personalEmail' })).toBe(PERSONAL_EMAIL);
    await state.claimUnique('mobile', sealed.h, 'user:zhangsan');
  });
});

describe('DynamoAuditLog', () => {
  it('appends an HMAC chain, masks sensitive values and reason text before writing', async () => {
    const first = await audit.append({
      subject: 'user:zhangsan',
      operator: 'sync-worker',
      action: 'create',
      target: 'mailbox',
      outcome: 'ok',
      changes: [
        { field: 'name', old: null, new: '张三' },
        { field: 'mobile', old: undefined, new: MOBILE },
        { field: 'personalEmail', new: PERSONAL_EMAIL },
        { field: 'address', new: '北京市海淀区中关村大街1号' },
        { field: 'extattr', new: { 工号: 'A001' } },
        { field: 'customPhone', new: '138 0013 8000' },
      ],
      reason: `WeCom 60104 mobile ${MOBILE} exists (contact ${PERSONAL_EMAIL})`,
      eventId: 'evt-1',
      at: new Date('2026-11-02T10:00:00.000Z'),
    });
    expect(first.seq).toBe(1);
    expect(first.prevHash).toBe(GENESIS_HASH);
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.alg).toBe('hmac-sha256');
    expect(first.changes).toEqual([
      { field: 'name', old: null, new: '张三' },
      { field: 'mobile', new: '+86138****8000', sensitive: true },
      { field: 'personalEmail', new: 'z***@qq.com', sensitive: true },
      { field: 'address', new: '****(13)', sensitive: true },
      { field: 'extattr', new: '****(13)', sensitive: true },
      { field: 'customPhone', new: '138****8000' },
    ]);
    expect(first.reason).toBe('WeCom 60104 mobile +86138****8000 exists (contact z***@qq.com)');

    const second = await audit.append({ subject: 'user:zhangsan', operator: 'sync-worker', action: 'update', outcome: 'ok', at: new Date('2026-11-03T09:00:00.000Z') });
    expect(second.seq).toBe(2);
    expect(second.prevHash).toBe(first.hash);
    expect(await audit.verify('user:zhangsan')).toEqual({ ok: true, problems: [] });

    const items = await audit.bySubject('user:zhangsan');
    expect(items).toEqual([first, second]);
    expect(await audit.bySubject('user:zhangsan', { since: new Date('2026-11-03T00:00:00.000Z') })).toEqual([second]);
    expect(await audit.bySubject('user:zhangsan', { limit: 1 })).toEqual([first]);

    const raw = await db.client.send(new GetItemCommand({ TableName: db.tables.audit, Key: { pk: { S: 'user:zhangsan' }, sk: { S: padSeq(1) } } }));
    expect(raw.Item!.day!.S).toBe('2026-11-02');
    expect(Number(raw.Item!.expiresAt!.N)).toBe(Date.parse('2026-11-02T10:00:00.000Z') / 1000 + 400 * 86_400);
  });

  it('is append-only: the write path never overwrites an existing record', async () => {
    const r = await audit.append({ subject: 'user:ao', operator: 'test', action: 'update', outcome: 'ok' });
    // An appender with a stale view of the head (a second container) computes the same seq;
    // the conditional put refuses to overwrite, and the append lands at seq 2 instead.
    const stale = new DynamoAuditLog(db.client, db.tables.audit, { chain });
    const originalHead = (stale as unknown as { head: (s: string) => Promise<unknown> }).head.bind(stale);
    let calls = 0;
    (stale as unknown as { head: (s: string) => Promise<unknown> }).head = async (s: string) => (calls++ === 0 ? undefined : originalHead(s));
    const next = await stale.append({ subject: 'user:ao', operator: 'test', action: 'delete', outcome: 'ok' });
    expect(calls).toBe(2);
    expect(next.seq).toBe(2);
    const [one] = await audit.bySubject('user:ao');
    expect(one).toEqual(r); // seq 1 untouched
    expect(await audit.verify('user:ao')).toEqual({ ok: true, problems: [] });
  });

  it('two concurrent appenders for one subject get seq 1 and 2, chained', async () => {
    const other = new DynamoAuditLog(db.client, db.tables.audit, { chain });
    const [a, b] = await Promise.all([
      audit.append({ subject: 'user:concurrent', operator: 'w1', action: 'update', outcome: 'ok' }),
      other.append({ subject: 'user:concurrent', operator: 'w2', action: 'update', outcome: 'ok' }),
    ]);
    expect([a.seq, b.seq].sort()).toEqual([1, 2]);
    const [lo, hi] = a.seq === 1 ? [a, b] : [b, a];
    expect(hi.prevHash).toBe(lo.hash);
    // And a burst of 8 keeps a gap-free chain.
    await Promise.all(Array.from({ length: 8 }, (_, i) => new DynamoAuditLog(db.client, db.tables.audit, { chain }).append({ subject: 'user:concurrent', operator: `b${i}`, action: 'noop', outcome: 'ok' })));
    const all = await audit.bySubject('user:concurrent');
    expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await audit.verify('user:concurrent')).toEqual({ ok: true, problems: [] });
  });

  it('verify (the trail on its own) detects an edited record and a removed record, naming the seq and the kind', async () => {
    for (let i = 0; i < 4; i++) await audit.append({ subject: 'user:tamper', operator: 'sync-worker', action: 'update', outcome: 'ok', changes: [{ field: 'position', old: `p${i}`, new: `p${i + 1}` }] });
    expect((await audit.verify('user:tamper')).ok).toBe(true);

    // Edit seq 2 in place (someone with table write access rewrites history).
    await db.client.send(
      new UpdateItemCommand({
        TableName: db.tables.audit,
        Key: { pk: { S: 'user:tamper' }, sk: { S: padSeq(2) } },
        UpdateExpression: 'SET #o = :o',
        ExpressionAttributeNames: { '#o': 'operator' },
        ExpressionAttributeValues: { ':o': { S: 'cli:mallory' } },
      }),
    );
    let result = await audit.verify('user:tamper');
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(['seq 2: edited (content does not match its link)']);

    // Remove seq 3.
    await db.client.send(new DeleteItemCommand({ TableName: db.tables.audit, Key: { pk: { S: 'user:tamper' }, sk: { S: padSeq(3) } } }));
    result = await audit.verify('user:tamper');
    expect(result.problems).toEqual(['seq 2: edited (content does not match its link)', 'seq 3: removed (seq 3 missing)']);

    // Removing and re-numbering (copy seq 4 down to seq 3) is still caught: the link covers the seq.
    // With no authentic record after them and no digest, seqs 2 and 3 cannot be told from insertions.
    const four = await db.client.send(new GetItemCommand({ TableName: db.tables.audit, Key: { pk: { S: 'user:tamper' }, sk: { S: padSeq(4) } } }));
    await db.client.send(new PutItemCommand({ TableName: db.tables.audit, Item: { ...four.Item!, sk: { S: padSeq(3) }, seq: { N: '3' } } }));
    await db.client.send(new DeleteItemCommand({ TableName: db.tables.audit, Key: { pk: { S: 'user:tamper' }, sk: { S: padSeq(4) } } }));
    result = await audit.verify('user:tamper');
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.split(' (')[0])).toEqual(['seq 2: inserted', 'seq 3: inserted']);
  });

  it('byTime returns records across days in order, within bounds', async () => {
    const log = new DynamoAuditLog(db.client, db.tables.audit, { chain, retentionDays: 30 });
    const times = ['2026-10-30T23:59:59.000Z', '2026-10-31T00:00:00.000Z', '2026-10-31T12:00:00.000Z', '2026-11-01T08:00:00.000Z'];
    for (const [i, t] of times.entries()) await log.append({ subject: `user:t${i % 2}`, operator: 'reconcile', action: 'noop', outcome: 'ok', at: new Date(t) });
    const got = await log.byTime(new Date('2026-10-31T00:00:00.000Z'), new Date('2026-11-01T08:00:00.000Z'));
    expect(got.map((r) => r.at)).toEqual(times.slice(1));
    expect((await log.byTime(new Date('2026-10-30T00:00:00.000Z'), new Date('2026-10-30T23:59:59.000Z'))).map((r) => r.at)).toEqual([times[0]]);
    await expect(log.byTime(new Date('2020-01-01'), new Date('2026-01-01'))).rejects.toThrow(/exceeds/);
  });
});

describe('DynamoInbox (pending → enqueued)', () => {
  let inbox: DynamoInbox;
  beforeAll(() => {
    inbox = new DynamoInbox(db.client, db.tables.inbox);
  });
  const entry = (id: string, receivedAt: string, extra: Partial<InboxEntry> = {}): InboxEntry => ({
    id,
    source: 'mailbox',
    kind: 'graph/updated',
    subjects: [`mailbox:graph:${id}`],
    disposition: 'accepted',
    receivedAt,
    hint: 'graph.updated',
    operator: 'graph-notification',
    ...extra,
  });

  it('record: new, then pending until markEnqueued, then duplicate; the pending index lists it only meanwhile', async () => {
    const e = entry('inbox-sm', '2026-11-24T08:00:00.000Z', { subjects: ['user:a', 'party:7'], source: 'wecom', kind: 'change_contact/update_user', hint: 'update_user', operator: 'wecom-callback' });
    const until = new Date('2026-11-24T09:00:00.000Z');
    expect(await inbox.record(e)).toBe('new');
    expect((await inbox.listPending(until)).filter((x) => x.id === e.id)).toEqual([e]);
    expect(await inbox.record(e)).toBe('pending');
    await inbox.markEnqueued(e.id);
    expect(await inbox.record(e)).toBe('duplicate');
    expect((await inbox.listPending(until)).filter((x) => x.id === e.id)).toEqual([]);
    const item = (await db.client.send(new GetItemCommand({ TableName: db.tables.inbox, Key: { pk: { S: e.id } }, ConsistentRead: true }))).Item!;
    expect(item.status!.S).toBe('enqueued');
    expect(item.pendingKey).toBeUndefined();
    // markEnqueued never creates an item.
    await expect(inbox.markEnqueued('inbox-never-recorded')).rejects.toThrow();
  });

  it('hasPendingIndex tells a current table from one created before the index (which listPending cannot use)', async () => {
    expect(await hasPendingIndex(db.client, db.tables.inbox)).toBe(true);
    const legacy = `${db.tables.inbox}-legacy`;
    await db.client.send(
      new CreateTableCommand({ TableName: legacy, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }),
    );
    try {
      expect(await hasPendingIndex(db.client, legacy)).toBe(false);
      await expect(new DynamoInbox(db.client, legacy).listPending(new Date())).rejects.toThrow();
    } finally {
      await db.client.send(new DeleteTableCommand({ TableName: legacy }));
    }
  });

  it('an entry without hint or subjects round-trips as recorded', async () => {
    const e = entry('inbox-ignored', '2026-11-24T07:00:00.000Z', { subjects: [], disposition: 'ignored', hint: undefined, kind: 'graph/created' });
    delete e.hint;
    await inbox.record(e);
    expect((await inbox.listPending(new Date('2026-11-24T07:00:01.000Z'))).filter((x) => x.id === e.id)).toEqual([e]);
    await inbox.markEnqueued(e.id);
  });

  it('listPending: received before `before`, oldest first across every shard, at most `limit`', async () => {
    const t0 = Date.parse('2026-11-20T00:00:00.000Z');
    const ids = Array.from({ length: 40 }, (_, i) => `inbox-order-${String(i).padStart(2, '0')}`);
    // Recorded out of order, spread over the shards.
    for (const i of [...ids.keys()].sort((a, b) => ((a * 7) % 40) - ((b * 7) % 40))) await inbox.record(entry(ids[i]!, new Date(t0 + i * 1000).toISOString()));
    expect(new Set(ids.map(pendingKeyOf)).size).toBeGreaterThan(PENDING_SHARDS / 2);
    expect((await inbox.listPending(new Date(t0 + 30_500), 10)).map((e) => e.id)).toEqual(ids.slice(0, 10));
    expect((await inbox.listPending(new Date(t0 + 5_500))).map((e) => e.id)).toEqual(ids.slice(0, 6));
    expect((await inbox.listPending(new Date(t0 + 60_000), 100)).map((e) => e.id)).toEqual(ids);
    expect(await inbox.listPending(new Date(t0))).toEqual([]);
    for (const id of ids.slice(0, 5)) await inbox.markEnqueued(id);
    expect((await inbox.listPending(new Date(t0 + 60_000), 3)).map((e) => e.id)).toEqual(ids.slice(5, 8));
    for (const id of ids.slice(5)) await inbox.markEnqueued(id);
  });
});

describe('no personal data in clear at rest', () => {
  it('a raw scan of all three tables contains neither the mobile number nor the personal email', async () => {
    // An inbox item as the receivers write it (hint and operator included), one still pending.
    await new DynamoInbox(db.client, db.tables.inbox).record({
      id: 'evt-1',
      source: 'wecom',
      kind: 'change_contact/update_user',
      subjects: ['user:zhangsan'],
      disposition: 'accepted',
      receivedAt: new Date().toISOString(),
      hint: 'update_user',
      operator: 'wecom-callback',
    });
    const dump: string[] = [];
    for (const table of [db.tables.inbox, db.tables.state, db.tables.audit]) {
      const out = await db.client.send(new ScanCommand({ TableName: table }));
      expect(out.Items?.length).toBeGreaterThan(0);
      dump.push(JSON.stringify(out.Items, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));
    }
    const text = dump.join('\n');
    expect(text).toContain('user:zhangsan'); // the scan did see the subject's items
    for (const clear of [MOBILE, MOBILE.slice(3), '138 0013 8000', '0013800', PERSONAL_EMAIL, 'zhang.san.home', '中关村']) {
      expect(text).not.toContain(clear);
    }
  });
});
