/**
 * Storage of the durable LocalFifoQueue (bin/local/queue.ts): one table in the local stack's
 * embedded DynamoDB (dynalite). Local-only (SQS is the queue in AWS), so it is defined here
 * and never deploys. The queue keeps its working copy in memory and writes through to here;
 * this module only knows items, not scheduling.
 *
 * Item layout (pk = the queue's namespace, so several queues share one table):
 *
 *  sk = 'msg#<dedupeId>'  a message that came through enqueue(). The key IS the dedupe id, so
 *                         the conditional put that accepts it is the dedupe check, atomically
 *                         and across restarts. Stays under this key through its life:
 *                         state 'queued' (waiting, or in flight while `invisibleUntil` is set),
 *                         'dead' (receives exhausted), 'done' (processed: kept as a bare
 *                         dedupe marker until `dedupeUntil`, then deleted).
 *  sk = 'dlq#<messageId>' a message parked by the worker (park()): 'dead', or 'queued' again
 *                         after a redrive. Its own key, so it never collides with the dedupe key.
 *
 *  Message attributes: st, seq (N, per-group order), id (messageId), body (the SyncMessage as
 *  JSON: ids and routing facts, no decrypted data), sentAt, firstAt, rc (receive count),
 *  visibleAt, invisibleUntil, dedupeUntil (msg# only), reason + deadAt (dead only).
 *  Times are epoch milliseconds.
 */
import {
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  PutItemCommand,
  QueryCommand,
  ResourceInUseException,
  type AttributeValue,
  type CreateTableCommandInput,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { waitActive } from './table-ready';

export const LOCAL_QUEUE_TABLE = 'local-queue';

export function queueTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
  };
}

/** Item keys (see the layout above). */
export const messageKey = (dedupeId: string) => `msg#${dedupeId}`;
export const parkedKey = (messageId: string) => `dlq#${messageId}`;
export const dedupeIdOf = (key: string) => key.slice('msg#'.length);

export interface QueueItem {
  key: string;
  state: 'queued' | 'dead';
  seq: number;
  messageId: string;
  body: string;
  sentAt: number;
  firstReceivedAt?: number;
  receiveCount: number;
  visibleAt: number;
  /** Set while a delivery is in flight: after a crash, not deliverable again before this. */
  invisibleUntil?: number;
  dedupeUntil?: number;
  reason?: string;
  deadAt?: number;
}

/** A processed msg# item kept only so its dedupe id stays taken until `dedupeUntil`. */
export interface DoneMarker {
  key: string;
  state: 'done';
  dedupeUntil: number;
}

/** BatchWriteItem's limit. */
const MAX_BATCH = 25;

export class QueueStore {
  constructor(
    private readonly client: DynamoDBClient,
    readonly tableName: string,
    readonly namespace: string,
  ) {}

  /** Create the table if it is missing and wait until it takes writes. */
  async ensureTable(): Promise<void> {
    try {
      await this.client.send(new CreateTableCommand(queueTableDefinition(this.tableName)));
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err;
    }
    await waitActive(this.client, this.tableName);
  }

  /** Every item of this namespace, in key order (callers sort by seq). */
  async load(): Promise<Array<QueueItem | DoneMarker>> {
    const out: Array<QueueItem | DoneMarker> = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :ns',
          ExpressionAttributeValues: { ':ns': { S: this.namespace } },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) out.push(fromItem(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /**
   * Accept a new msg# item unless its key holds a live message (queued, in flight, dead) or a
   * marker still inside its dedupe window. false = a duplicate, nothing written.
   */
  async add(item: QueueItem, now: number): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: this.toItem(item),
          ConditionExpression: 'attribute_not_exists(sk) OR (st = :done AND dedupeUntil < :now)',
          ExpressionAttributeValues: { ':done': { S: 'done' }, ':now': { N: String(now) } },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  /** Unconditional puts and deletes, batched (the working copy in memory is the authority). */
  async write(puts: Array<QueueItem | DoneMarker>, deletes: string[] = []): Promise<void> {
    const requests: WriteRequest[] = [
      ...puts.map((p) => ({ PutRequest: { Item: this.toItem(p) } })),
      ...deletes.map((key) => ({ DeleteRequest: { Key: { pk: { S: this.namespace }, sk: { S: key } } } })),
    ];
    for (let i = 0; i < requests.length; i += MAX_BATCH) {
      let pending: WriteRequest[] = requests.slice(i, i + MAX_BATCH);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
        if (attempt > 10) throw new Error(`${pending.length} queue item write(s) left unprocessed`);
        const out = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: pending } }));
        pending = out.UnprocessedItems?.[this.tableName] ?? [];
      }
    }
  }

  private toItem(p: QueueItem | DoneMarker): Record<string, AttributeValue> {
    const item: Record<string, AttributeValue> = { pk: { S: this.namespace }, sk: { S: p.key }, st: { S: p.state } };
    const n = (name: string, v: number | undefined) => void (v !== undefined && (item[name] = { N: String(v) }));
    n('dedupeUntil', p.dedupeUntil);
    if (p.state === 'done') return item;
    item.id = { S: p.messageId };
    item.body = { S: p.body };
    n('seq', p.seq);
    n('sentAt', p.sentAt);
    n('firstAt', p.firstReceivedAt);
    n('rc', p.receiveCount);
    n('visibleAt', p.visibleAt);
    n('invisibleUntil', p.invisibleUntil);
    n('deadAt', p.deadAt);
    if (p.reason !== undefined) item.reason = { S: p.reason };
    return item;
  }
}

function fromItem(item: Record<string, AttributeValue>): QueueItem | DoneMarker {
  const key = item.sk!.S!;
  const n = (name: string) => (item[name]?.N === undefined ? undefined : Number(item[name].N));
  if (item.st?.S === 'done') return { key, state: 'done', dedupeUntil: n('dedupeUntil') ?? 0 };
  return {
    key,
    state: item.st?.S === 'dead' ? 'dead' : 'queued',
    seq: n('seq') ?? 0,
    messageId: item.id!.S!,
    body: item.body!.S!,
    sentAt: n('sentAt') ?? 0,
    firstReceivedAt: n('firstAt'),
    receiveCount: n('rc') ?? 0,
    visibleAt: n('visibleAt') ?? 0,
    invisibleUntil: n('invisibleUntil'),
    dedupeUntil: n('dedupeUntil'),
    reason: item.reason?.S,
    deadAt: n('deadAt'),
  };
}
