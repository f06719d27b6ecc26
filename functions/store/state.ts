/**
 * The state table: one item per subject (its mapping to the mailbox account, the last
 * synced fields, sealed sensitive values, lifecycle status) plus uniqueness claims.
 *
 * Items (see tables.ts):
 *   subject  pk = subject, sk = 'state', kind = 'user' | 'party' | 'mailbox' (GSI byKind),
 *            targetKey = '<provider>#<targetId>' when both are known (GSI byTarget), v = version
 *   claim    pk = 'uniq#<field>#<keyed hash>', sk = 'claim', owner = subject
 *   guard    pk = 'guard#destructive', sk = 'window', slots = [{ s: subject, t: epoch ms }], v
 *            — the event-path deletion guard's sliding window, one item shared by every
 *            worker and updated with the same optimistic version check as subjects.
 *   A subject with a held action also carries heldKey = 'held' (sparse GSI byHeld).
 *
 * Every write is a single-item conditional put (optimistic concurrency on `v`): no
 * transactions, which dynalite lacks and which cost twice as much in AWS.
 *
 * Sensitive values are accepted only as SealedValue (ciphertext + keyed hash, sealed by
 * the caller's FieldCipher); put() refuses a record carrying a sensitive field in clear in
 * `fields` or an unsealed value in `sensitive`, so a careless caller cannot store one.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { isSensitiveField, type Subject } from '../core/model';
import { VersionConflictError, type StateRecord, type StateStore } from './ports';

export const STATE_SK = 'state';
export const CLAIM_SK = 'claim';
const GUARD_KEY = { pk: { S: 'guard#destructive' }, sk: { S: 'window' } };
const GUARD_ATTEMPTS = 20;
const PAGE_SIZE = 100;
const SEALED = /^v\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export function subjectKind(subject: string): string {
  const colon = subject.indexOf(':');
  return colon > 0 ? subject.slice(0, colon) : subject;
}

export function claimKey(field: string, hash: string): string {
  return `uniq#${field}#${hash}`;
}

export class DynamoStateStore implements StateStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async get(subject: Subject): Promise<StateRecord | undefined> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: key(subject, STATE_SK), ConsistentRead: true }),
    );
    return out.Item ? fromItem(out.Item) : undefined;
  }

  async put(record: StateRecord): Promise<StateRecord> {
    assertNoClearSensitive(record);
    const next: StateRecord = { ...record, version: record.version + 1 };
    const { version, ...rest } = next;
    const item = {
      ...rest,
      pk: record.subject,
      sk: STATE_SK,
      kind: subjectKind(record.subject),
      ...(record.provider && record.targetId ? { targetKey: `${record.provider}#${record.targetId}` } : {}),
      ...(record.held ? { heldKey: 'held' } : {}),
      v: version,
    };
    const condition =
      record.version === 0
        ? { ConditionExpression: 'attribute_not_exists(pk)' }
        : {
            ConditionExpression: '#v = :expected',
            ExpressionAttributeNames: { '#v': 'v' },
            ExpressionAttributeValues: { ':expected': { N: String(record.version) } },
          };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: marshall(item, { removeUndefinedValues: true }),
          ...condition,
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new VersionConflictError(record.subject);
      throw err;
    }
    return next;
  }

  /** Via GSI byTarget, which is eventually consistent: a just-written mapping may lag briefly. */
  async findByTargetId(provider: string, targetId: string): Promise<StateRecord | undefined> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: 'byTarget',
        KeyConditionExpression: 'targetKey = :t',
        ExpressionAttributeValues: { ':t': { S: `${provider}#${targetId}` } },
      }),
    );
    const items = (out.Items ?? []).map(fromItem);
    // Two subjects mapped to one account would be a bug upstream; prefer the active one.
    return items.find((r) => r.status === 'active') ?? items[0];
  }

  async listPage(kind: 'user' | 'party', cursor?: string): Promise<{ records: StateRecord[]; next?: string }> {
    return this.indexPage('byKind', 'kind', kind, cursor);
  }

  /** One page of a GSI whose partition key is `key = value`, with an opaque cursor. */
  private async indexPage(index: string, key: string, value: string, cursor?: string): Promise<{ records: StateRecord[]; next?: string }> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: index,
        KeyConditionExpression: '#k = :v',
        ExpressionAttributeNames: { '#k': key },
        ExpressionAttributeValues: { ':v': { S: value } },
        Limit: PAGE_SIZE,
        ...(cursor ? { ExclusiveStartKey: decodeCursor(cursor) } : {}),
      }),
    );
    const records = (out.Items ?? []).map(fromItem);
    return out.LastEvaluatedKey ? { records, next: encodeCursor(out.LastEvaluatedKey) } : { records };
  }

  /**
   * Query of GSI byKind ('user') with a filter on deleteAfter: it reads every user item, so
   * it costs a full pass over users per run. Acceptable for a daily grace-period job at
   * directory sizes (thousands); a sparse GSI on deleteAfter is the upgrade path if not.
   * deleteAfter is an ISO-8601 UTC string (toISOString), so string order is time order.
   */
  async listDueForDeletion(now: Date): Promise<StateRecord[]> {
    const due: StateRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: 'byKind',
          KeyConditionExpression: 'kind = :k',
          FilterExpression: 'attribute_exists(deleteAfter) AND deleteAfter <= :now',
          ExpressionAttributeValues: { ':k': { S: 'user' }, ':now': { S: now.toISOString() } },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      due.push(...(out.Items ?? []).map(fromItem));
      start = out.LastEvaluatedKey;
    } while (start);
    return due;
  }

  async claimUnique(field: string, hash: string, subject: Subject): Promise<Subject> {
    // Bounded: a claim can only flip between "exists" and "released" a few times in a race.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: {
              ...key(claimKey(field, hash), CLAIM_SK),
              owner: { S: subject },
              field: { S: field },
              claimedAt: { S: new Date().toISOString() },
            },
            ConditionExpression: 'attribute_not_exists(pk) OR #owner = :me',
            ExpressionAttributeNames: { '#owner': 'owner' },
            ExpressionAttributeValues: { ':me': { S: subject } },
          }),
        );
        return subject;
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
      const out = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: key(claimKey(field, hash), CLAIM_SK), ConsistentRead: true }),
      );
      const owner = out.Item?.owner?.S;
      if (owner) return owner as Subject;
      // Released between our put and our read: try again.
    }
    throw new Error(`uniqueness claim on ${field} did not settle`);
  }

  async releaseUnique(field: string, hash: string, subject: Subject): Promise<void> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: key(claimKey(field, hash), CLAIM_SK),
          ConditionExpression: '#owner = :me',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':me': { S: subject } },
        }),
      );
    } catch (err) {
      // Not ours (or already gone): releasing someone else's claim must be a no-op.
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }

  async listHeld(cursor?: string): Promise<{ records: StateRecord[]; next?: string }> {
    return this.indexPage('byHeld', 'heldKey', 'held', cursor);
  }

  /** A COUNT query over GSI byKind: reads the user index once (callers cache the figure). */
  async countManaged(): Promise<number> {
    let n = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: 'byKind',
          KeyConditionExpression: 'kind = :k',
          FilterExpression: '#st <> :deleted',
          ExpressionAttributeNames: { '#st': 'status' },
          ExpressionAttributeValues: { ':k': { S: 'user' }, ':deleted': { S: 'deleted' } },
          Select: 'COUNT',
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      n += out.Count ?? 0;
      start = out.LastEvaluatedKey;
    } while (start);
    return n;
  }

  async admitDestructive(subject: Subject, now: Date, windowMs: number, limit: number): Promise<{ admitted: boolean; inWindow: number }> {
    for (let attempt = 0; attempt < GUARD_ATTEMPTS; attempt++) {
      const cur = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: GUARD_KEY, ConsistentRead: true }));
      const version = Number(cur.Item?.v?.N ?? 0);
      const since = now.getTime() - windowMs;
      const slots = ((cur.Item ? (unmarshall(cur.Item).slots as Array<{ s: string; t: number }> | undefined) : undefined) ?? []).filter((x) => x.t > since);
      if (slots.some((x) => x.s === subject)) return { admitted: true, inWindow: slots.length };
      if (slots.length >= limit) return { admitted: false, inWindow: slots.length };
      slots.push({ s: subject, t: now.getTime() });
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: { ...GUARD_KEY, ...marshall({ slots, v: version + 1 }) },
            ...(version === 0
              ? { ConditionExpression: 'attribute_not_exists(pk)' }
              : { ConditionExpression: '#v = :v', ExpressionAttributeNames: { '#v': 'v' }, ExpressionAttributeValues: { ':v': { N: String(version) } } }),
          }),
        );
        return { admitted: true, inWindow: slots.length };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        // Another worker admitted someone meanwhile: re-read the window and decide again.
      }
    }
    throw new Error('deletion guard window did not settle');
  }
}

function key(pk: string, sk: string): Record<string, AttributeValue> {
  return { pk: { S: pk }, sk: { S: sk } };
}

function fromItem(item: Record<string, AttributeValue>): StateRecord {
  const { pk: _pk, sk: _sk, kind: _kind, targetKey: _tk, heldKey: _hk, v, ...rest } = unmarshall(item) as Record<string, unknown>;
  return { fields: {}, sensitive: {}, ...rest, version: Number(v ?? 0) } as StateRecord;
}

function assertNoClearSensitive(record: StateRecord): void {
  for (const [field, value] of Object.entries(record.fields ?? {})) {
    if (isSensitiveField(field) && value !== undefined && value !== null) {
      throw new Error(`state of ${record.subject}: sensitive field '${field}' must be stored sealed (record.sensitive), not in fields`);
    }
  }
  for (const [field, sealed] of Object.entries(record.sensitive ?? {})) {
    if (!sealed || typeof sealed.ct !== 'string' || !SEALED.test(sealed.ct) || typeof sealed.h !== 'string') {
      throw new Error(`state of ${record.subject}: sensitive field '${field}' is not a SealedValue`);
    }
  }
}

function encodeCursor(lastKey: Record<string, AttributeValue>): string {
  return Buffer.from(JSON.stringify(unmarshall(lastKey)), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): Record<string, AttributeValue> {
  try {
    return marshall(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>);
  } catch {
    throw new Error('invalid state listing cursor');
  }
}
