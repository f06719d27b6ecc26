/**
 * The audit trail: who changed what, when, for every subject — append-only and tamper-evident.
 *
 * Items: pk = subject, sk = seq zero-padded to 12 digits, one per action. Each write is a
 * PutItem with `attribute_not_exists(pk)`, so no code path of ours can overwrite a record;
 * two concurrent appenders for one subject compute the same next seq, one wins, the loser
 * re-reads the head and retries (bounded).
 *
 * Tamper evidence: `hash` = SHA-256 over the canonical JSON of the record (sorted keys)
 * including `prevHash`, the previous record's hash (GENESIS for seq 1). verify() detects an
 * edited record (hash mismatch), a removed record (seq gap / prevHash mismatch) — but, as
 * with any hash chain without an external anchor, not the removal of the newest records.
 *
 * Personal data: sensitive old/new values are masked BEFORE the write (the table never
 * holds them in clear); `reason` passes through redactText.
 *
 * Time queries: GSI byDay (day = 'YYYY-MM-DD' of `at`, atSeq = `${at}#${subject}#${seq}`).
 * Retention: `expiresAt` (epoch seconds) = at + retentionDays; the TTL itself is enabled on
 * the table by the CDK stack only (dynalite has no UpdateTimeToLive).
 */
import { createHash } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { maskChange } from '../security/mask';
import { redactText } from '../security/redact';
import { TTL_ATTRIBUTE } from './tables';
import type { AuditInput, AuditLog, AuditRecord } from './ports';

/** Kept importable from here: the audit log is where masking is applied. */
export { maskChange };

export const GENESIS_HASH = '0'.repeat(64);
const SEQ_DIGITS = 12;
const MAX_APPEND_ATTEMPTS = 10;
const MAX_QUERY_DAYS = 400;
const DAY_MS = 86_400_000;

export interface AuditLogOptions {
  retentionDays?: number;
  now?: () => Date;
}

export const padSeq = (seq: number) => String(seq).padStart(SEQ_DIGITS, '0');

export class DynamoAuditLog implements AuditLog {
  private readonly retentionDays: number;
  private readonly now: () => Date;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    opts: AuditLogOptions = {},
  ) {
    this.retentionDays = opts.retentionDays ?? 400;
    this.now = opts.now ?? (() => new Date());
  }

  async append(input: AuditInput): Promise<AuditRecord> {
    const at = (input.at ?? this.now()).toISOString();
    const body = {
      subject: input.subject,
      operator: input.operator,
      action: input.action,
      outcome: input.outcome,
      at,
      target: input.target,
      changes: input.changes ? input.changes.map(maskChange) : undefined,
      reason: input.reason === undefined ? undefined : redactText(input.reason),
      eventId: input.eventId,
    };
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      const head = await this.head(input.subject);
      const unsigned = { ...body, seq: (head?.seq ?? 0) + 1, prevHash: head?.hash ?? GENESIS_HASH };
      const record = dropUndefined({ ...unsigned, hash: recordHash(unsigned) }) as AuditRecord;
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: marshall(this.toItem(record), { removeUndefinedValues: true }),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        return record;
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        // Another appender took this seq: re-read the head and chain after it.
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
      }
    }
    throw new Error(`audit append for ${input.subject} lost ${MAX_APPEND_ATTEMPTS} races in a row`);
  }

  async bySubject(subject: string, opts: { since?: Date; limit?: number } = {}): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :s',
          ...(opts.since
            ? {
                FilterExpression: '#at >= :since',
                ExpressionAttributeNames: { '#at': 'at' },
                ExpressionAttributeValues: { ':s': { S: subject }, ':since': { S: opts.since.toISOString() } },
              }
            : { ExpressionAttributeValues: { ':s': { S: subject } } }),
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      out.push(...(page.Items ?? []).map(fromItem));
      start = page.LastEvaluatedKey;
    } while (start && (opts.limit === undefined || out.length < opts.limit));
    return opts.limit === undefined ? out : out.slice(0, opts.limit);
  }

  /** Records with from <= at <= to, oldest first; one GSI query per UTC day in range. */
  async byTime(from: Date, to: Date): Promise<AuditRecord[]> {
    const firstDay = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
    const days = Math.floor((to.getTime() - firstDay) / DAY_MS) + 1;
    if (days > MAX_QUERY_DAYS) throw new Error(`audit byTime: range of ${days} days exceeds ${MAX_QUERY_DAYS}`);
    const out: AuditRecord[] = [];
    for (let d = 0; d < days; d++) {
      const day = new Date(firstDay + d * DAY_MS).toISOString().slice(0, 10);
      let start: Record<string, AttributeValue> | undefined;
      do {
        const page = await this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: 'byDay',
            KeyConditionExpression: '#day = :d AND atSeq BETWEEN :lo AND :hi',
            ExpressionAttributeNames: { '#day': 'day' },
            ExpressionAttributeValues: {
              ':d': { S: day },
              ':lo': { S: from.toISOString() },
              // '$' sorts after '#', so every `${to}#…` key is included.
              ':hi': { S: `${to.toISOString()}$` },
            },
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        out.push(...(page.Items ?? []).map(fromItem));
        start = page.LastEvaluatedKey;
      } while (start);
    }
    return out;
  }

  async verify(subject: string): Promise<{ ok: boolean; problems: string[] }> {
    const problems: string[] = [];
    const records = await this.rawBySubject(subject);
    let expectedSeq = 1;
    let prevHash = GENESIS_HASH;
    for (const { record, sk } of records) {
      if (sk !== padSeq(record.seq)) problems.push(`seq ${record.seq}: stored under key ${sk} (record moved)`);
      if (record.seq > expectedSeq) {
        const gap = record.seq - 1 === expectedSeq ? `seq ${expectedSeq}` : `seq ${expectedSeq}..${record.seq - 1}`;
        problems.push(`${gap} missing (record removed)`);
      }
      if (record.prevHash !== prevHash) {
        problems.push(`seq ${record.seq}: prevHash does not match the preceding record (record removed, inserted or edited before it)`);
      }
      const { hash, ...unsigned } = record;
      if (recordHash(unsigned) !== hash) problems.push(`seq ${record.seq}: hash mismatch (record edited)`);
      expectedSeq = record.seq + 1;
      prevHash = hash;
    }
    return { ok: problems.length === 0, problems };
  }

  private async head(subject: string): Promise<AuditRecord | undefined> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :s',
        ExpressionAttributeValues: { ':s': { S: subject } },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? fromItem(item) : undefined;
  }

  private async rawBySubject(subject: string): Promise<{ record: AuditRecord; sk: string }[]> {
    const out: { record: AuditRecord; sk: string }[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :s',
          ExpressionAttributeValues: { ':s': { S: subject } },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) out.push({ record: fromItem(item), sk: item.sk?.S ?? '' });
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  private toItem(record: AuditRecord): Record<string, unknown> {
    const atMs = Date.parse(record.at);
    return {
      ...record,
      pk: record.subject,
      sk: padSeq(record.seq),
      day: record.at.slice(0, 10),
      atSeq: `${record.at}#${record.subject}#${padSeq(record.seq)}`,
      [TTL_ATTRIBUTE]: Math.floor(atMs / 1000) + this.retentionDays * 86_400,
    };
  }
}

// ------------------------------------------------------------------ canonical form and hash

function dropUndefined<T extends Record<string, unknown>>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

/** Stable JSON: object keys sorted at every level, undefined members dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

function recordHash(unsigned: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(unsigned), 'utf8').digest('hex');
}

function fromItem(item: Record<string, AttributeValue>): AuditRecord {
  const { pk: _pk, sk: _sk, day: _day, atSeq: _atSeq, [TTL_ATTRIBUTE]: _ttl, ...rest } = unmarshall(item) as Record<string, unknown>;
  return rest as unknown as AuditRecord;
}
