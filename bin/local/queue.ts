/**
 * An in-process SQS FIFO queue for the local stack and the tests, with the semantics the
 * sync worker relies on:
 *  - per-group order: while a group has a message in flight (or waiting for its retry
 *    backoff), none of that group's later messages is delivered;
 *  - a 5-minute deduplication window on MessageDeduplicationId (same id → dropped);
 *  - Lambda-style batches (≤ batchSize, groups may share a batch, a group's messages are
 *    contiguous and in order), records shaped like real SQS FIFO records;
 *  - ReportBatchItemFailures: only the reported records are retried, plus — as with a real
 *    FIFO queue — the rest of that group's messages after a failed one in the same batch;
 *    a thrown consumer error fails the whole batch;
 *  - retries with exponential backoff up to maxReceiveCount, then a dead-letter list with
 *    the last error reason, and `redrive` to replay from it.
 *
 * Deviation (deliberate): a message returned only because an earlier one of its group failed
 * keeps its receive count increment (as SQS does) but is never dead-lettered for it.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { messageDeduplicationId, messageGroupId } from '../../functions/queue/dedupe';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';

export type QueueConsumer = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

export interface DeadLetter {
  messageId: string;
  message: SyncMessage;
  reason: string;
  receiveCount: number;
}

export interface LocalFifoQueueOptions {
  consumer?: QueueConsumer;
  /** Deliveries before a message goes to the dead letters. Default 5. */
  maxReceiveCount?: number;
  /** First retry delay; doubles per receive, capped at 30 s. Default 100 ms. */
  retryDelayMs?: number;
  /** Records per consumer call, 1..10. Default 10. */
  batchSize?: number;
  /** Deduplication window. Default 5 minutes (as SQS). */
  dedupeWindowMs?: number;
  queueArn?: string;
}

interface Stored {
  messageId: string;
  message: SyncMessage;
  body: string;
  groupId: string;
  dedupeId: string;
  seq: number;
  sentAt: number;
  firstReceivedAt?: number;
  receiveCount: number;
  /** Not deliverable before this time (retry backoff). */
  visibleAt: number;
}

const MAX_BACKOFF_MS = 30_000;

export class LocalFifoQueue implements WorkQueue {
  readonly deadLetters: DeadLetter[] = [];
  private consumer: QueueConsumer | undefined;
  private readonly maxReceiveCount: number;
  private readonly retryDelayMs: number;
  private readonly batchSize: number;
  private readonly dedupeWindowMs: number;
  private readonly queueArn: string;
  /** Group id → its messages in order; the head is the only deliverable one. */
  private readonly groups = new Map<string, Stored[]>();
  private readonly busyGroups = new Set<string>();
  private readonly dedupe = new Map<string, number>();
  private seq = 0;
  private inFlightBatches = 0;
  private running = false;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];

  constructor(opts: LocalFifoQueueOptions = {}) {
    this.consumer = opts.consumer;
    this.maxReceiveCount = opts.maxReceiveCount ?? 5;
    this.retryDelayMs = opts.retryDelayMs ?? 100;
    this.batchSize = Math.min(10, Math.max(1, opts.batchSize ?? 10));
    this.dedupeWindowMs = opts.dedupeWindowMs ?? 5 * 60_000;
    this.queueArn = opts.queueArn ?? 'arn:aws:sqs:us-east-1:000000000000:wecom-mailbox-sync.fifo';
  }

  setConsumer(fn: QueueConsumer): void {
    this.consumer = fn;
    this.schedule();
  }

  /** Messages waiting or in flight (not yet deleted, not dead-lettered). */
  get depth(): number {
    let n = 0;
    for (const q of this.groups.values()) n += q.length;
    return n;
  }

  async enqueue(messages: SyncMessage[]): Promise<void> {
    const now = Date.now();
    for (const [id, until] of this.dedupe) if (until <= now) this.dedupe.delete(id);
    for (const message of messages) {
      const dedupeId = messageDeduplicationId(message);
      if (this.dedupe.has(dedupeId)) continue;
      this.dedupe.set(dedupeId, now + this.dedupeWindowMs);
      this.push(message, dedupeId, now);
    }
    this.schedule();
  }

  /** Move dead letters (all, or the one with this messageId or eventId) back to the queue. */
  redrive(id?: string): number {
    const now = Date.now();
    const picked = this.deadLetters.filter((d) => id === undefined || d.messageId === id || d.message.eventId === id);
    for (const d of picked) {
      this.deadLetters.splice(this.deadLetters.indexOf(d), 1);
      this.push(d.message, messageDeduplicationId(d.message), now);
    }
    this.schedule();
    return picked.length;
  }

  start(): void {
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves when nothing is waiting or in flight; pumps meanwhile even if not started. */
  async drain(timeoutMs = 10_000): Promise<void> {
    const wasRunning = this.running;
    if (!wasRunning) this.start();
    try {
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (this.depth === 0 && this.inFlightBatches === 0) {
            clearTimeout(t);
            resolve();
            return true;
          }
          return false;
        };
        const t = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`queue not drained within ${timeoutMs} ms (depth ${this.depth})`));
        }, timeoutMs);
        const waiter = () => {
          if (check()) this.waiters = this.waiters.filter((w) => w !== waiter);
        };
        if (!check()) this.waiters.push(waiter);
      });
    } finally {
      if (!wasRunning) this.stop();
    }
  }

  // ---------------------------------------------------------------- internals

  private push(message: SyncMessage, dedupeId: string, now: number): void {
    const groupId = messageGroupId(message);
    const body = JSON.stringify(message);
    const stored: Stored = {
      messageId: randomUUID(),
      message,
      body,
      groupId,
      dedupeId,
      seq: ++this.seq,
      sentAt: now,
      receiveCount: 0,
      visibleAt: now,
    };
    const q = this.groups.get(groupId);
    if (q) q.push(stored);
    else this.groups.set(groupId, [stored]);
  }

  private schedule(): void {
    if (!this.running || this.scheduled || !this.consumer) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running || !this.consumer) return;
    // One batch in flight at a time, like a Lambda event source mapping at concurrency 1.
    if (this.inFlightBatches > 0) return;
    const now = Date.now();
    const batch: Stored[] = [];
    let nextVisible = Infinity;
    for (const [groupId, q] of this.groups) {
      if (batch.length >= this.batchSize) break;
      if (this.busyGroups.has(groupId) || q.length === 0) continue;
      if (q[0]!.visibleAt > now) {
        nextVisible = Math.min(nextVisible, q[0]!.visibleAt);
        continue;
      }
      // A group's messages go contiguously and in order, up to the batch's room.
      for (const m of q) {
        if (batch.length >= this.batchSize || m.visibleAt > now) break;
        batch.push(m);
      }
      this.busyGroups.add(groupId);
    }
    if (batch.length === 0) {
      if (nextVisible !== Infinity) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, Math.max(1, nextVisible - now));
      }
      this.notify();
      return;
    }
    this.inFlightBatches++;
    void this.deliver(batch).finally(() => {
      this.inFlightBatches--;
      this.notify();
      this.schedule();
    });
  }

  private async deliver(batch: Stored[]): Promise<void> {
    const now = Date.now();
    const records = batch.map((m) => {
      m.receiveCount++;
      m.firstReceivedAt ??= now;
      return this.record(m);
    });
    let failedIds: Set<string>;
    let reason: string;
    try {
      const res = await this.consumer!({ Records: records });
      failedIds = new Set((res?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      reason = 'reported in batchItemFailures';
    } catch (err) {
      failedIds = new Set(batch.map((m) => m.messageId));
      reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    const failedGroups = new Set<string>();
    for (const m of batch) {
      const q = this.groups.get(m.groupId)!;
      if (failedIds.has(m.messageId)) {
        failedGroups.add(m.groupId);
        if (m.receiveCount >= this.maxReceiveCount) {
          q.splice(q.indexOf(m), 1);
          this.deadLetters.push({ messageId: m.messageId, message: m.message, reason, receiveCount: m.receiveCount });
        } else {
          m.visibleAt = Date.now() + Math.min(MAX_BACKOFF_MS, this.retryDelayMs * 2 ** (m.receiveCount - 1));
        }
      } else if (failedGroups.has(m.groupId)) {
        // After a failure in its group: back to the queue, in order, without blame.
      } else {
        q.splice(q.indexOf(m), 1); // success: delete
      }
    }
    for (const m of batch) {
      const q = this.groups.get(m.groupId);
      if (q && q.length === 0) this.groups.delete(m.groupId);
      this.busyGroups.delete(m.groupId);
    }
  }

  private record(m: Stored): SQSRecord {
    return {
      messageId: m.messageId,
      receiptHandle: Buffer.from(`${m.messageId}#${m.receiveCount}#${randomUUID()}`).toString('base64'),
      body: m.body,
      attributes: {
        ApproximateReceiveCount: String(m.receiveCount),
        SentTimestamp: String(m.sentAt),
        SenderId: 'LOCAL',
        ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt),
        SequenceNumber: String(m.seq).padStart(20, '0'),
        MessageGroupId: m.groupId,
        MessageDeduplicationId: m.dedupeId,
      },
      messageAttributes: {},
      md5OfBody: createHash('md5').update(m.body, 'utf8').digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: this.queueArn,
      awsRegion: this.queueArn.split(':')[3] ?? 'us-east-1',
    };
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
