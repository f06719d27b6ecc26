/**
 * RunStore on the reconcile table (tables.ts): pk (S), sk (S), the value as one JSON string
 * `j` (one attribute to marshal, not a nested map: the run writes millions of these), the
 * TTL attribute on every item, and `v` on the versioned (checkpoint) items.
 *
 * Writes go in BatchWriteItem calls of 25, a few in flight, with the unprocessed part retried
 * after a growing pause (DynamoDB answers a partial batch under throttling). Reads are
 * strongly consistent Queries: a phase reads what the previous one has just written.
 */
import {
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { VersionConflictError } from './ports';
import type { RunItem, RunPage, RunStore } from './run-store';
import { TTL_ATTRIBUTE } from './tables';

export interface DynamoRunStoreOptions {
  /** How long items live after their write (default 7 days: time to look at a stuck run). */
  ttlSeconds?: number;
  /** BatchWriteItem calls in flight per put() (default 4). */
  writeConcurrency?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const BATCH = 25;
const MAX_ATTEMPTS = 10;

export class DynamoRunStore implements RunStore {
  private readonly ttlSeconds: number;
  private readonly writeConcurrency: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    opts: DynamoRunStoreOptions = {},
  ) {
    this.ttlSeconds = opts.ttlSeconds ?? 7 * 86_400;
    this.writeConcurrency = opts.writeConcurrency ?? 4;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private expiresAt(): AttributeValue {
    return { N: String(Math.floor(this.now() / 1000) + this.ttlSeconds) };
  }

  async put(items: readonly RunItem[]): Promise<void> {
    if (!items.length) return;
    const expiresAt = this.expiresAt();
    // One request per key: a batch may not name a key twice (the last write wins, as a put would).
    const byKey = new Map<string, WriteRequest>();
    for (const i of items) {
      byKey.set(`${i.pk}\u0000${i.sk}`, { PutRequest: { Item: { pk: { S: i.pk }, sk: { S: i.sk }, j: { S: JSON.stringify(i.value) }, [TTL_ATTRIBUTE]: expiresAt } } });
    }
    const requests = [...byKey.values()];
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const batch = requests.slice(next, (next += BATCH));
        await this.writeBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.writeConcurrency, Math.ceil(requests.length / BATCH)) }, worker));
  }

  private async writeBatch(batch: WriteRequest[]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; pending.length; attempt++) {
      if (attempt >= MAX_ATTEMPTS) throw new Error(`reconcile table: ${pending.length} item(s) still unprocessed after ${MAX_ATTEMPTS} attempts`);
      if (attempt) await this.sleep(Math.min(2_000, 25 * 2 ** attempt));
      const out = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: pending } }));
      pending = out.UnprocessedItems?.[this.tableName] ?? [];
    }
  }

  async get<T>(pk: string, sk: string): Promise<T | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }));
    return out.Item?.j?.S === undefined ? undefined : (JSON.parse(out.Item.j.S) as T);
  }

  async page<T>(pk: string, opts: { after?: string; limit: number }): Promise<RunPage<T>> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: opts.after === undefined ? 'pk = :p' : 'pk = :p AND sk > :a',
        ExpressionAttributeValues: { ':p': { S: pk }, ...(opts.after === undefined ? {} : { ':a': { S: opts.after } }) },
        Limit: opts.limit,
        ConsistentRead: true,
      }),
    );
    const items = (out.Items ?? []).map((i) => ({ pk, sk: i.sk!.S!, value: JSON.parse(i.j!.S!) as T }));
    return { items, more: out.LastEvaluatedKey !== undefined };
  }

  async getVersioned<T>(pk: string, sk: string): Promise<{ value: T; version: number } | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }));
    if (!out.Item?.j?.S) return undefined;
    return { value: JSON.parse(out.Item.j.S) as T, version: Number(out.Item.v?.N ?? 0) };
  }

  async putVersioned(pk: string, sk: string, value: unknown, expected: number): Promise<number> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { pk: { S: pk }, sk: { S: sk }, j: { S: JSON.stringify(value) }, v: { N: String(expected + 1) }, [TTL_ATTRIBUTE]: this.expiresAt() },
          ...(expected === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: '#v = :expected', ExpressionAttributeNames: { '#v': 'v' }, ExpressionAttributeValues: { ':expected': { N: String(expected) } } }),
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new VersionConflictError(`${pk}/${sk}`);
      throw err;
    }
    return expected + 1;
  }
}
