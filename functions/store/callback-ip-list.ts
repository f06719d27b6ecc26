/**
 * WeCom's published callback source ranges, stored as ONE item of the inbox table so the
 * internet-facing callback function can read them without holding the WeCom API secret.
 *
 * Why the inbox table: the callback function already reads and writes it under the transport
 * key (lib/stack.ts), so reading one more item grants it nothing new; the state table would
 * give the receiver the personal-data key, and a new table or an SSM parameter would be a new
 * resource and a new grant for one small item. The item is written only by the scheduled
 * refresher (functions/handlers/wecom-callback-ips.ts), whose role may PutItem this key and
 * nothing else; every other inbox writer is explicitly denied writing it.
 *
 * It cannot collide with an event: event ids are SHA-256 hex, this key is not hex. It has no
 * TTL attribute (it must not expire while the refresher is down: staleness is judged by
 * `fetchedAt` instead) and no pendingKey, so the inbox sweep never sees it.
 */
import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** The item's partition key (also the IAM dynamodb:LeadingKeys value in lib/stack.ts). */
export const CALLBACK_IP_LIST_KEY = 'meta#wecom-callback-ips';

export interface CallbackIpListRecord {
  /** Addresses and CIDR ranges as WeCom published them (IPv4, IPv6 if present). */
  ips: string[];
  /** When the refresher fetched them (ISO 8601): the reader's staleness clock. */
  fetchedAt: string;
}

export interface CallbackIpListStore {
  read(): Promise<CallbackIpListRecord | undefined>;
  write(record: CallbackIpListRecord): Promise<void>;
}

export class DynamoCallbackIpList implements CallbackIpListStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async read(): Promise<CallbackIpListRecord | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: CALLBACK_IP_LIST_KEY } },
        ProjectionExpression: 'ips, fetchedAt',
      }),
    );
    const item = out.Item;
    if (!item) return undefined;
    const ips = (item.ips?.L ?? []).map((v) => v.S).filter((s): s is string => typeof s === 'string');
    const fetchedAt = item.fetchedAt?.S;
    // A malformed item reads as absent: the caller then fails open (and says so).
    if (!fetchedAt || ips.length === 0) return undefined;
    return { ips, fetchedAt };
  }

  async write(record: CallbackIpListRecord): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          pk: { S: CALLBACK_IP_LIST_KEY },
          ips: { L: record.ips.map((s) => ({ S: s })) },
          fetchedAt: { S: record.fetchedAt },
        },
      }),
    );
  }
}

/** In memory (tests, and a local stack that does not persist). */
export class MemoryCallbackIpList implements CallbackIpListStore {
  record: CallbackIpListRecord | undefined;
  reads = 0;
  async read(): Promise<CallbackIpListRecord | undefined> {
    this.reads++;
    return this.record ? { ips: [...this.record.ips], fetchedAt: this.record.fetchedAt } : undefined;
  }
  async write(record: CallbackIpListRecord): Promise<void> {
    this.record = { ips: [...record.ips], fetchedAt: record.fetchedAt };
  }
}
