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
 * Two implementations of one behaviour: `new LocalFifoQueue()` lives in memory (tests,
 * benchmarks); `LocalFifoQueue.open()` is the same queue writing through to a table in the
 * embedded DynamoDB (bin/local/queue-store.ts), so a kill -9 of the local stack loses nothing
 * it accepted. The memory copy stays the working copy: scheduling never reads the table.
 *  - enqueue() resolves once the message's conditional put is done, and that put is the
 *    dedupe check, so dedupe is atomic with the write and holds across restarts;
 *  - a batch's receive counts and `invisibleUntil` are written before the consumer runs, its
 *    outcome (deleted or kept as a dedupe marker, retry time, dead letter) before its groups
 *    move on; park() and redrive() write before they resolve;
 *  - open() rebuilds groups in sequence order, receive counts, dead letters and dedupe ids.
 * Limits: one live queue per namespace; durable against the process dying, not a power cut
 * (dynalite's LevelDB does not fsync each write); an outcome write that fails is logged and
 * the message is delivered again after a restart (at least once, as SQS).
 *
 * Deviations (deliberate):
 *  - a message returned only because an earlier one of its group failed keeps its receive
 *    count increment (as SQS does) but is never dead-lettered for it;
 *  - a dedupe id stays taken past its window while its message is still queued or dead:
 *    SQS would accept a second copy, but the waiting one covers it (the worker re-reads the
 *    subject), and the durable queue's key cannot hold two.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { log } from '../../functions/core/log';
import { messageDeduplicationId, messageGroupId } from '../../functions/queue/dedupe';
import type { DeadLetterSink, SyncMessage, WorkQueue } from '../../functions/queue/messages';
import { redactText } from '../../functions/core/redact';
import { dedupeIdOf, LOCAL_QUEUE_TABLE, messageKey, parkedKey, QueueStore, type DoneMarker, type QueueItem } from './queue-store';

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

export interface DurableQueueOptions extends LocalFifoQueueOptions {
  client: DynamoDBClient;
  /** Created if missing. Default 'local-queue'. */
  tableName?: string;
  /** The partition this queue's items live in, so several queues can share a table. Default 'default'. */
  namespace?: string;
  /** After a restart, a delivery that was in flight is not repeated before this much time. Default 30 s. */
  visibilityTimeoutMs?: number;
}

/** A message in the working copy: the persisted fields plus what is derived from the body. */
interface Stored extends Omit<QueueItem, 'state' | 'invisibleUntil'> {
  message: SyncMessage;
  groupId: string;
  dedupeId: string;
}

const MAX_BACKOFF_MS = 30_000;
/** As SqsDeadLetters: a reason is a diagnosis, not a dump. */
const MAX_REASON = 1000;

export class LocalFifoQueue implements WorkQueue, DeadLetterSink {
  private consumer: QueueConsumer | undefined;
  private readonly maxReceiveCount: number;
  private readonly retryDelayMs: number;
  private readonly batchSize: number;
  private readonly dedupeWindowMs: number;
  private readonly queueArn: string;
  /** Group id → its messages in sequence order; the head is the only deliverable one. */
  private readonly groups = new Map<string, Stored[]>();
  private readonly busyGroups = new Set<string>();
  /** Dedupe id → end of its window. */
  private readonly dedupe = new Map<string, number>();
  /** Keys of messages queued, in flight or dead: a message key here keeps its dedupe id taken. */
  private readonly live = new Set<string>();
  private readonly dead: Stored[] = [];
  /** The batch the consumer is working on (park() takes its receive count from it). */
  private delivering: Stored[] = [];
  private store: QueueStore | undefined;
  private visibilityTimeoutMs = 30_000;
  /** Writes and deliveries under way, for close(). */
  private readonly pending = new Set<Promise<unknown>>();
  private seq = 0;
  /** Batches delivered whose outcome is not recorded yet (drain() waits for them). */
  private inFlightBatches = 0;
  /** The consumer is running: one call at a time, like a Lambda event source mapping at concurrency 1. */
  private consuming = false;
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

  /** The durable queue: creates the table if needed and loads what an earlier process left. */
  static async open(opts: DurableQueueOptions): Promise<LocalFifoQueue> {
    const store = new QueueStore(opts.client, opts.tableName ?? LOCAL_QUEUE_TABLE, opts.namespace ?? 'default');
    await store.ensureTable();
    const queue = new LocalFifoQueue(opts);
    queue.store = store;
    queue.visibilityTimeoutMs = opts.visibilityTimeoutMs ?? 30_000;
    await queue.restore(await store.load());
    return queue;
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

  /** Oldest first. Read-only: use park() and redrive(), which also write through. */
  get deadLetters(): readonly DeadLetter[] {
    return this.dead.map((d) => ({ messageId: d.messageId, message: d.message, reason: d.reason ?? '', receiveCount: d.receiveCount }));
  }

  async enqueue(messages: SyncMessage[]): Promise<void> {
    const now = Date.now();
    for (const [id, until] of this.dedupe) if (until <= now && !this.live.has(messageKey(id))) this.dedupe.delete(id);
    try {
      for (const message of messages) {
        const dedupeId = messageDeduplicationId(message);
        if (this.dedupe.has(dedupeId)) continue;
        const m = this.make(message, dedupeId, Date.now());
        m.dedupeUntil = m.sentAt + this.dedupeWindowMs;
        // Taken before the write, so a concurrent enqueue of the same id is dropped.
        this.dedupe.set(dedupeId, m.dedupeUntil);
        if (this.store) {
          let added: boolean;
          try {
            added = await this.track(this.store.add(this.item(m, 'queued'), m.sentAt));
          } catch (err) {
            this.dedupe.delete(dedupeId);
            throw err; // the caller (callback receiver) answers 5xx and the sender retries
          }
          if (!added) continue;
        }
        this.insert(m);
      }
    } finally {
      this.schedule();
    }
  }

  /** Dead-letter a message with its reason (the worker's DeadLetterSink). */
  async park(message: SyncMessage, reason: string): Promise<void> {
    const now = Date.now();
    const m = this.make(message, messageDeduplicationId(message), now, true);
    // The worker parks the message it was handed: keep that delivery's receive count for the operator.
    m.receiveCount = this.delivering.find((d) => d.dedupeId === m.dedupeId)?.receiveCount ?? 0;
    this.toDead(m, reason, now);
    if (this.store) await this.track(this.store.write([this.item(m, 'dead')]));
    this.live.add(m.key);
    this.dead.push(m);
  }

  /** Move dead letters (all, or the one with this messageId or eventId) back to the queue. */
  async redrive(id?: string): Promise<number> {
    const picked = this.dead.filter((d) => id === undefined || d.messageId === id || d.message.eventId === id);
    if (picked.length === 0) return 0;
    const now = Date.now();
    // A new delivery under the same key, written without the dedupe condition: the window the
    // first delivery opened must not swallow it (bin/local/ADMIN-CONTRACT.md).
    const fresh = picked.map((d) => ({ ...this.make(d.message, d.dedupeId, now), key: d.key, dedupeUntil: d.dedupeUntil }));
    for (const d of picked) this.dead.splice(this.dead.indexOf(d), 1);
    try {
      if (this.store) await this.track(this.store.write(fresh.map((m) => this.item(m, 'queued'))));
    } catch (err) {
      this.dead.push(...picked);
      this.dead.sort(byDeadAt);
      throw err;
    }
    for (const m of fresh) this.insert(m);
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

  /** Stop delivering; wait for the batch in flight and for every write already started. */
  async close(): Promise<void> {
    this.stop();
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
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

  private make(message: SyncMessage, dedupeId: string, now: number, parked = false): Stored {
    const messageId = randomUUID();
    return {
      key: parked ? parkedKey(messageId) : messageKey(dedupeId),
      messageId,
      message,
      body: JSON.stringify(message),
      groupId: messageGroupId(message),
      dedupeId,
      seq: ++this.seq,
      sentAt: now,
      receiveCount: 0,
      visibleAt: now,
    };
  }

  /** Into its group in sequence order (concurrent enqueues can finish their writes out of order). */
  private insert(m: Stored): void {
    this.live.add(m.key);
    const q = this.groups.get(m.groupId);
    if (!q) return void this.groups.set(m.groupId, [m]);
    let i = q.length;
    while (i > 0 && q[i - 1]!.seq > m.seq) i--;
    q.splice(i, 0, m);
  }

  private toDead(m: Stored, reason: string, now: number): void {
    m.reason = redactText(reason).slice(0, MAX_REASON);
    m.deadAt = now;
  }

  private item(m: Stored, state: QueueItem['state'], invisibleUntil?: number): QueueItem {
    return { ...m, state, invisibleUntil };
  }

  /** Remember a write or delivery until it settles, for close(). */
  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => {});
    return p;
  }

  /** Rebuild the working copy from the table (open()). */
  private async restore(items: Array<QueueItem | DoneMarker>): Promise<void> {
    const now = Date.now();
    const expiredMarkers: string[] = [];
    const exhausted: Stored[] = [];
    for (const it of items) {
      if (it.state !== 'done') continue;
      if (it.dedupeUntil > now) this.dedupe.set(dedupeIdOf(it.key), it.dedupeUntil);
      else expiredMarkers.push(it.key);
    }
    const messages = items.filter((it): it is QueueItem => it.state !== 'done').sort((a, b) => a.seq - b.seq);
    for (const { state, invisibleUntil, ...it } of messages) {
      const message = JSON.parse(it.body) as SyncMessage;
      const m: Stored = { ...it, message, groupId: messageGroupId(message), dedupeId: messageDeduplicationId(message) };
      this.seq = Math.max(this.seq, m.seq);
      if (m.key === messageKey(m.dedupeId)) this.dedupe.set(m.dedupeId, m.dedupeUntil ?? 0);
      let dead = state === 'dead';
      if (state === 'queued' && invisibleUntil !== undefined) {
        // In flight when the process ended: delivered again, but not while that delivery may
        // still be running; unless it was the last allowed receive: a poison message that kills
        // the process. SQS would dead-letter it at its next receive; the process that held it
        // is gone, so there is nothing to wait for.
        if (m.receiveCount < this.maxReceiveCount) m.visibleAt = Math.max(m.visibleAt, invisibleUntil);
        else {
          this.toDead(m, `the process ended during delivery ${m.receiveCount} of ${this.maxReceiveCount}`, now);
          exhausted.push(m);
          dead = true;
        }
      }
      if (!dead) this.insert(m);
      else {
        this.live.add(m.key);
        this.dead.push(m);
      }
    }
    this.dead.sort(byDeadAt);
    // Sequence numbers keep growing across restarts even if the table was emptied meanwhile,
    // without a counter write per message: a run that started at T never got past T × 1000
    // unless it sent more than 1,000 messages per millisecond.
    this.seq = Math.max(this.seq, now * 1000);
    await this.store!.write(exhausted.map((m) => this.item(m, 'dead')), expiredMarkers);
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
    if (this.consuming) return;
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
    this.consuming = true;
    void this.track(this.deliver(batch)).finally(() => {
      this.inFlightBatches--;
      this.notify();
      this.schedule();
    });
  }

  /** Never rejects: consumer errors are the batch's outcome, store errors are logged. */
  private async deliver(batch: Stored[]): Promise<void> {
    const now = Date.now();
    for (const m of batch) {
      m.receiveCount++;
      m.firstReceivedAt ??= now;
    }
    try {
      // Before the consumer runs: a crash from here on counts as a receive (so a message that
      // kills the process still ends in the dead letters), and a restarted queue leaves the
      // batch alone until invisibleUntil.
      await this.store?.write(batch.map((m) => this.item(m, 'queued', now + this.visibilityTimeoutMs)));
    } catch (err) {
      log.error('local queue: could not record a delivery; retrying later', { error: err });
      this.consuming = false;
      for (const m of batch) {
        m.receiveCount--;
        m.visibleAt = Date.now() + this.retryDelayMs;
      }
      return this.release(batch);
    }
    this.delivering = batch;
    let failedIds: Set<string>;
    let reason: string;
    try {
      const res = await this.consumer!({ Records: batch.map((m) => this.record(m)) });
      failedIds = new Set((res?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      reason = 'reported in batchItemFailures';
    } catch (err) {
      failedIds = new Set(batch.map((m) => m.messageId));
      reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    this.delivering = [];
    const done = Date.now();
    const puts: Array<QueueItem | DoneMarker> = [];
    const deletes: string[] = [];
    const failedGroups = new Set<string>();
    for (const m of batch) {
      const q = this.groups.get(m.groupId)!;
      if (failedIds.has(m.messageId)) {
        failedGroups.add(m.groupId);
        if (m.receiveCount >= this.maxReceiveCount) {
          q.splice(q.indexOf(m), 1);
          this.toDead(m, reason, done);
          this.dead.push(m);
          puts.push(this.item(m, 'dead'));
        } else {
          m.visibleAt = done + Math.min(MAX_BACKOFF_MS, this.retryDelayMs * 2 ** (m.receiveCount - 1));
          puts.push(this.item(m, 'queued'));
        }
      } else if (failedGroups.has(m.groupId)) {
        // After a failure in its group: back to the queue, in order, without blame.
        puts.push(this.item(m, 'queued'));
      } else {
        q.splice(q.indexOf(m), 1); // success: delete
        this.live.delete(m.key);
        // A processed message item stays as a bare marker while its window lasts, so a repeat is
        // still dropped after a restart (open() deletes the expired ones).
        if (m.dedupeUntil !== undefined && m.dedupeUntil > done) puts.push({ key: m.key, state: 'done', dedupeUntil: m.dedupeUntil });
        else deletes.push(m.key);
      }
    }
    // The next batch may start while this outcome is written: it cannot hold these groups,
    // which stay busy until the write is done, so after a crash no later message of theirs
    // overtakes this outcome.
    this.consuming = false;
    this.schedule();
    try {
      await this.store?.write(puts, deletes);
    } catch (err) {
      log.error('local queue: could not record a batch outcome; after a restart it is delivered again', { error: err });
    }
    this.release(batch);
  }

  private release(batch: Stored[]): void {
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

const byDeadAt = (a: Stored, b: Stored) => (a.deadAt ?? 0) - (b.deadAt ?? 0) || a.seq - b.seq;
