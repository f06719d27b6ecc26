/**
 * The inbox table: one item per received event, keyed by its dedupe id, so a redelivered
 * callback is recognised and not enqueued twice. Single-item conditional writes only
 * (dynalite has no transactions; one write is also the cheapest in AWS).
 *
 * Items hold ids and routing facts only (kind, subjects = userids / department ids, the
 * event's change type as `hint`, the receiving `operator`) — never the decrypted message or
 * any other personal data. They expire by TTL.
 *
 * State machine per item: `pending` (written by record) → `enqueued` (markEnqueued). While
 * pending, the item carries `pendingKey`, the partition key of the SPARSE index `pending`
 * (sort key receivedAt); markEnqueued REMOVEs it, so the index holds only what a sweep may
 * have to re-enqueue, and listPending is a Query, never a Scan of the table.
 *
 * pendingKey is one of PENDING_SHARDS values ('pending#0' … 'pending#f'), not a constant: a
 * GSI partition takes about 1,000 writes/s, every received event costs the index two writes
 * (put, then remove), and receivedAt only grows, so DynamoDB cannot split one hot partition
 * by its sort key. A Graph POST of 1,000 notifications written in parallel would throttle a
 * single partition (and GSI throttling throttles the table's writes). 16 shards lift that
 * bound 16-fold; listPending queries them all and merges, which costs the sweep 16 small
 * Queries per page every few minutes.
 */
import { createHash } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { Subject } from '../core/model';
import type { Inbox, InboxEntry } from './ports';
import { INBOX_PENDING_INDEX, INBOX_PENDING_KEY, TTL_ATTRIBUTE } from './tables';

export interface DynamoInboxOptions {
  /** How long an item (and so the dedupe memory) lives. Default 7 days: WeCom retries for minutes. */
  ttlDays?: number;
  now?: () => Date;
}

/** Number of pendingKey values (see the file header). Changing it strands items under the old keys. */
export const PENDING_SHARDS = 16;

/** The pendingKey of an event id: a stable spread over the shards. */
export function pendingKeyOf(id: string): string {
  const shard = createHash('sha256').update(id, 'utf8').digest()[0]! % PENDING_SHARDS;
  return `pending#${shard.toString(16)}`;
}

const ALL_PENDING_KEYS = Array.from({ length: PENDING_SHARDS }, (_, i) => `pending#${i.toString(16)}`);

export class DynamoInbox implements Inbox {
  private readonly ttlSeconds: number;
  private readonly now: () => Date;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    opts: DynamoInboxOptions = {},
  ) {
    this.ttlSeconds = Math.round((opts.ttlDays ?? 7) * 86_400);
    this.now = opts.now ?? (() => new Date());
  }

  async record(entry: InboxEntry): Promise<'new' | 'pending' | 'duplicate'> {
    const nowSec = Math.floor(this.now().getTime() / 1000);
    const item: Record<string, AttributeValue> = {
      pk: { S: entry.id },
      source: { S: entry.source },
      kind: { S: entry.kind },
      subjects: { L: entry.subjects.map((s) => ({ S: s })) },
      disposition: { S: entry.disposition },
      status: { S: 'pending' },
      receivedAt: { S: entry.receivedAt },
      operator: { S: entry.operator },
      [INBOX_PENDING_KEY]: { S: pendingKeyOf(entry.id) },
      [TTL_ATTRIBUTE]: { N: String(nowSec + this.ttlSeconds) },
    };
    if (entry.hint) item.hint = { S: entry.hint };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item,
          // An item past its expiry may linger until TTL deletes it (up to days): treat it as absent.
          ConditionExpression: 'attribute_not_exists(pk) OR #exp < :now',
          ExpressionAttributeNames: { '#exp': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':now': { N: String(nowSec) } },
          // DynamoDB then returns the existing item with the failure, sparing the GetItem below
          // (a Graph redelivery of a large batch is mostly duplicates). dynalite ignores it.
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'new';
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const status = err.Item?.status?.S;
      if (status) return status === 'enqueued' ? 'duplicate' : 'pending';
    }
    const existing = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: entry.id } },
        ConsistentRead: true,
        ProjectionExpression: '#st',
        ExpressionAttributeNames: { '#st': 'status' },
      }),
    );
    return existing.Item?.status?.S === 'enqueued' ? 'duplicate' : 'pending';
  }

  async markEnqueued(id: string): Promise<void> {
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: id } },
        // Leaving the pending index is part of the same single-item write: no window in which
        // an enqueued item is still listed (beyond the index's own eventual consistency).
        UpdateExpression: 'SET #st = :enq, enqueuedAt = :at REMOVE #pk',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#st': 'status', '#pk': INBOX_PENDING_KEY },
        ExpressionAttributeValues: { ':enq': { S: 'enqueued' }, ':at': { S: this.now().toISOString() } },
      }),
    );
  }

  /**
   * Oldest-first pending items received before `before`. Each shard returns its own oldest
   * `limit`, so the merge's first `limit` are the oldest overall. The index is eventually
   * consistent: an item marked a moment ago may still be listed (re-enqueueing it is
   * harmless: same dedupe id), and one recorded a moment ago may be missing (it is fresh).
   */
  async listPending(before: Date, limit = 100): Promise<InboxEntry[]> {
    if (limit <= 0) return [];
    const pages = await Promise.all(ALL_PENDING_KEYS.map((key) => this.queryShard(key, before.toISOString(), limit)));
    return pages
      .flat()
      .sort((a, b) => (a.receivedAt < b.receivedAt ? -1 : a.receivedAt > b.receivedAt ? 1 : a.id < b.id ? -1 : 1))
      .slice(0, limit);
  }

  private async queryShard(key: string, before: string, limit: number): Promise<InboxEntry[]> {
    const out: InboxEntry[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INBOX_PENDING_INDEX,
          KeyConditionExpression: '#pk = :key AND receivedAt < :before',
          ExpressionAttributeNames: { '#pk': INBOX_PENDING_KEY },
          ExpressionAttributeValues: { ':key': { S: key }, ':before': { S: before } },
          ScanIndexForward: true,
          Limit: limit - out.length,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) out.push(entryOf(item));
      start = page.LastEvaluatedKey;
    } while (start && out.length < limit);
    return out;
  }
}

/**
 * Whether the inbox table has the pending index. A table created before the index existed
 * (a local stack's persisted dynalite data) does not, and dynalite cannot add an index to an
 * existing table (its UpdateTable only changes throughput): such a table must be recreated
 * before listPending works. In AWS, CloudFormation adds the index and backfills it.
 */
export async function hasPendingIndex(client: DynamoDBClient, tableName: string): Promise<boolean> {
  const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
  return (out.Table?.GlobalSecondaryIndexes ?? []).some((g) => g.IndexName === INBOX_PENDING_INDEX);
}

function entryOf(item: Record<string, AttributeValue>): InboxEntry {
  const entry: InboxEntry = {
    id: item.pk!.S!,
    source: item.source?.S === 'wecom' ? 'wecom' : 'mailbox',
    kind: item.kind?.S ?? '',
    subjects: (item.subjects?.L ?? []).map((s) => s.S as Subject),
    disposition: item.disposition?.S === 'ignored' ? 'ignored' : 'accepted',
    receivedAt: item.receivedAt!.S!,
    // Items written before `operator` was stored do not carry one (and are not in the index either).
    operator: item.operator?.S ?? 'unknown',
  };
  if (item.hint?.S) entry.hint = item.hint.S;
  return entry;
}
