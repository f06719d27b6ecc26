/**
 * The audit trail: who changed what, when, for every subject — append-only and tamper-evident.
 *
 * Items: pk = subject, sk = seq zero-padded to 12 digits, one per action. Each write is a
 * PutItem with `attribute_not_exists(pk)`, so no code path of ours can overwrite a record;
 * two concurrent appenders for one subject compute the same next seq, one wins, the loser
 * re-reads the head and retries (bounded). The functions' IAM roles allow PutItem and reads
 * only, and explicitly deny UpdateItem, DeleteItem, BatchWriteItem and PartiQL on the table.
 *
 * Tamper evidence: `hash` is the record's link, HMAC-SHA-256 under the KMS-protected chain
 * key over the canonical record including `prevHash` and `alg` (store/audit-chain.ts). Table
 * access alone cannot produce a record that verifies; what a trail cannot show by itself —
 * its newest records removed, or all of it deleted — the signed digests of chain heads do
 * (functions/audit/). verify() here checks one trail on its own.
 *
 * Personal data: sensitive old/new values are masked BEFORE the write (the table never
 * holds them in clear); `reason` passes through redactText.
 *
 * Time queries: GSI byDay (day = 'YYYY-MM-DD' of `at`, atSeq = `${at}#${subject}#${seq}`).
 * Retention: `expiresAt` (epoch seconds) = at + retentionDays; the TTL itself is enabled on
 * the table by the CDK stack only (dynalite has no UpdateTimeToLive).
 */
import {
  ConditionalCheckFailedException,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { CHAIN_ALG, type AuditChainKey } from '../security/audit-chain-key';
import { maskChange } from './audit-mask';
import { redactText } from '../core/redact';
import { GENESIS_HASH, checkTrail, formatProblem, padSeq, recordLink, type StoredAuditRecord } from './audit-chain';
import { TTL_ATTRIBUTE } from './tables';
import type { AuditInput, AuditLog, AuditRecord } from './ports';

/** Kept importable from here: the audit log is where masking is applied. */
export { maskChange };
export { GENESIS_HASH, canonicalJson, padSeq } from './audit-chain';

/** Days a record is kept (TTL); the digest bucket's Object Lock outlasts it (lib/audit-digest.ts). */
export const AUDIT_RETENTION_DAYS = 400;
/** The digest schedule's default period: the expiry rule's tolerance when no digest says otherwise. */
export const DEFAULT_DIGEST_INTERVAL_MS = 3_600_000;
const MAX_APPEND_ATTEMPTS = 10;
/** Subjects whose head this process remembers (a run appends several records to one subject). */
const MAX_CACHED_HEADS = 10_000;
const MAX_QUERY_DAYS = 400;
const DAY_MS = 86_400_000;

export interface AuditLogOptions {
  /** The chain key (required: a record without a MAC would verify as nothing). */
  chain: AuditChainKey;
  retentionDays?: number;
  now?: () => Date;
}

export class DynamoAuditLog implements AuditLog {
  private readonly chain: AuditChainKey;
  /**
   * The head each subject had after this process's last append to it: the next append chains
   * on it without a read (a run appends 2–4 records to one person). If someone else appended
   * meanwhile, the conditional put fails and the head is read as before.
   */
  private readonly heads = new Map<string, { seq: number; hash: string }>();
  readonly retentionDays: number;
  private readonly now: () => Date;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    opts: AuditLogOptions,
  ) {
    // Checked at run time too: plain-JS callers (the local stack under tsx) get a clear error.
    if (!opts?.chain) throw new Error('DynamoAuditLog needs the audit chain key (opts.chain)');
    this.chain = opts.chain;
    this.retentionDays = opts.retentionDays ?? AUDIT_RETENTION_DAYS;
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
      const cached = attempt === 0 ? this.heads.get(input.subject) : undefined;
      const head = cached ?? (await this.head(input.subject));
      const unsigned = dropUndefined({ ...body, seq: (head?.seq ?? 0) + 1, prevHash: head?.hash ?? GENESIS_HASH, alg: CHAIN_ALG });
      const record = { ...unsigned, hash: await recordLink(unsigned, this.chain) } as AuditRecord;
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: marshall(this.toItem(record), { removeUndefinedValues: true }),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
        this.remember(input.subject, record);
        return record;
      } catch (err) {
        this.heads.delete(input.subject);
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        // Another appender took this seq: re-read the head and chain after it.
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
      }
    }
    throw new Error(`audit append for ${input.subject} lost ${MAX_APPEND_ATTEMPTS} races in a row`);
  }

  private remember(subject: string, record: AuditRecord): void {
    this.heads.delete(subject); // re-insert: Map order is the eviction order
    this.heads.set(subject, { seq: record.seq, hash: record.hash });
    if (this.heads.size > MAX_CACHED_HEADS) this.heads.delete(this.heads.keys().next().value!);
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
    const days = dayCount(from, to);
    if (days > MAX_QUERY_DAYS) throw new Error(`audit byTime: range of ${days} days exceeds ${MAX_QUERY_DAYS}`);
    const out: AuditRecord[] = [];
    for await (const page of this.rawByTime(from, to)) out.push(...page.map((s) => s.record));
    return out;
  }

  /**
   * Raw items with from <= at <= to, a page at a time (day by day, oldest first), with the
   * key each sits under: the digest job folds them into chain heads without holding the
   * whole retention window in memory.
   */
  async *rawByTime(from: Date, to: Date): AsyncGenerator<StoredAuditRecord[]> {
    const firstDay = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
    const days = dayCount(from, to);
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
        yield (page.Items ?? []).map(stored);
        start = page.LastEvaluatedKey;
      } while (start);
    }
  }

  /** A subject's items as stored (key order), optionally only seqs fromSeq..toSeq: what verification reads. */
  async rawBySubject(subject: string, range: { fromSeq?: number; toSeq?: number } = {}): Promise<StoredAuditRecord[]> {
    const out: StoredAuditRecord[] = [];
    const ranged = range.fromSeq !== undefined || range.toSeq !== undefined;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: ranged ? 'pk = :s AND sk BETWEEN :lo AND :hi' : 'pk = :s',
          ExpressionAttributeValues: {
            ':s': { S: subject },
            // '~' sorts after every digit: a key stored beside a padded seq is still read.
            ...(ranged ? { ':lo': { S: padSeq(range.fromSeq ?? 0) }, ':hi': { S: `${padSeq(range.toSeq ?? 10 ** 12 - 1)}~` } } : {}),
          },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      out.push(...(page.Items ?? []).map(stored));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /**
   * The trail checked on its own: links, seqs, keys, and the expiry rule with the records as
   * the only evidence. The signed digests add what this cannot see (functions/audit/verify.ts).
   */
  async verify(subject: string): Promise<{ ok: boolean; problems: string[] }> {
    const problems = await checkTrail(subject, await this.rawBySubject(subject), this.chain, {
      now: this.now(),
      retentionDays: this.retentionDays,
      intervalMs: DEFAULT_DIGEST_INTERVAL_MS,
    });
    return { ok: problems.length === 0, problems: problems.map(formatProblem) };
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

function dayCount(from: Date, to: Date): number {
  const firstDay = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
  return Math.floor((to.getTime() - firstDay) / DAY_MS) + 1;
}

function dropUndefined<T extends Record<string, unknown>>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

function fromItem(item: Record<string, AttributeValue>): AuditRecord {
  const { pk: _pk, sk: _sk, day: _day, atSeq: _atSeq, [TTL_ATTRIBUTE]: _ttl, ...rest } = unmarshall(item) as Record<string, unknown>;
  return rest as unknown as AuditRecord;
}

function stored(item: Record<string, AttributeValue>): StoredAuditRecord {
  return { record: fromItem(item), pk: item.pk?.S ?? '', sk: item.sk?.S ?? '' };
}
