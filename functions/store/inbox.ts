/**
 * The inbox table: one item per received event, keyed by its dedupe id, so a redelivered
 * callback is recognised and not enqueued twice. Single-item conditional writes only
 * (dynalite has no transactions; one write is also the cheapest in AWS).
 *
 * Items hold ids and routing facts only (kind, subjects = userids / department ids) —
 * never the decrypted message or any other personal data. They expire by TTL.
 */
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { Inbox, InboxEntry } from './ports';
import { TTL_ATTRIBUTE } from './tables';

export interface DynamoInboxOptions {
  /** How long an item (and so the dedupe memory) lives. Default 7 days: WeCom retries for minutes. */
  ttlDays?: number;
  now?: () => Date;
}

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
      [TTL_ATTRIBUTE]: { N: String(nowSec + this.ttlSeconds) },
    };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item,
          // An item past its expiry may linger until TTL deletes it (up to days): treat it as absent.
          ConditionExpression: 'attribute_not_exists(pk) OR #exp < :now',
          ExpressionAttributeNames: { '#exp': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':now': { N: String(nowSec) } },
        }),
      );
      return 'new';
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
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
        UpdateExpression: 'SET #st = :enq, enqueuedAt = :at',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#st': 'status' },
        ExpressionAttributeValues: { ':enq': { S: 'enqueued' }, ':at': { S: this.now().toISOString() } },
      }),
    );
  }
}
