/**
 * The queue-consuming half of the worker, provider-free: take an SQS FIFO batch, run the
 * engine per record, and decide per failure between "retry" (report in batchItemFailures)
 * and "park" (dead-letter WITH the reason, audit it, acknowledge). Records of one FIFO group
 * run in order; after a record of a group fails (and is not parked), the rest of that group
 * in this batch is reported failed too, so a later event never overtakes an earlier one.
 * Different groups run concurrently.
 */
import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import * as z from 'zod';
import { log } from '../core/log';
import type { DeadLetterSink, SyncMessage } from '../queue/messages';
import type { EngineDeps } from './context';
import { syncSubject } from './engine';
import { errorReason, isRetryable } from './errors';

export interface RawDeadLetterSink extends DeadLetterSink {
  /** Park a body that is not a SyncMessage (optional: else a stand-in message is parked). */
  parkRaw?(body: string, groupId: string, reason: string): Promise<void>;
}

export interface SyncWorkerDeps {
  engineDeps: () => Promise<EngineDeps>;
  deadLetters: RawDeadLetterSink;
  /** At this receive count a still-failing message is parked instead of retried. */
  maxReceiveCount: number;
}

const Message = z.object({
  v: z.literal(1),
  subject: z.string().regex(/^(user|party|mailbox):[^\s]{1,255}$/),
  source: z.enum(['wecom', 'mailbox', 'reconcile', 'schedule', 'cli']),
  eventId: z.string().min(1).max(256),
  hint: z.string().max(128).optional(),
  operator: z.string().min(1).max(256),
  receivedAt: z.string().min(1).max(64),
});

export function parseSyncMessage(body: string): SyncMessage | undefined {
  try {
    const r = Message.safeParse(JSON.parse(body));
    return r.success ? (r.data as SyncMessage) : undefined;
  } catch {
    return undefined;
  }
}

type Result = 'ok' | 'retry';

export function createSyncWorker(deps: SyncWorkerDeps): (event: SQSEvent) => Promise<SQSBatchResponse> {
  async function park(engine: EngineDeps | undefined, message: SyncMessage, reason: string): Promise<void> {
    await deps.deadLetters.park(message, reason);
    try {
      await engine?.audit.append({
        subject: message.subject,
        operator: message.operator,
        action: 'failed',
        outcome: 'error',
        reason: `parked in the dead-letter queue: ${reason}`,
        eventId: message.eventId,
      });
    } catch (err) {
      // The parked copy already carries the reason; a missing audit line must not cause a retry.
      log.warn('audit of a parked message failed', { subject: message.subject, error: err });
    }
  }

  async function processRecord(record: SQSRecord, engine: () => Promise<EngineDeps>): Promise<Result> {
    const message = parseSyncMessage(record.body);
    if (!message) {
      log.warn('malformed message parked', { messageId: record.messageId });
      if (deps.deadLetters.parkRaw) await deps.deadLetters.parkRaw(record.body, record.attributes?.MessageGroupId ?? 'malformed', 'malformed message');
      else
        await deps.deadLetters.park(
          { v: 1, subject: `mailbox:malformed:${record.messageId}`, source: 'schedule', eventId: record.messageId, operator: 'sync-worker', receivedAt: new Date().toISOString() },
          'malformed message',
        );
      return 'ok';
    }
    let e: EngineDeps | undefined;
    try {
      e = await engine();
      const outcome = await syncSubject(message, e);
      log.debug('synced', { subject: message.subject, eventId: message.eventId, actions: outcome.actions });
      return 'ok';
    } catch (err) {
      const reason = errorReason(err);
      const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1;
      const retryable = isRetryable(err);
      if (retryable && receiveCount < deps.maxReceiveCount) {
        log.warn('sync failed, will retry', { subject: message.subject, eventId: message.eventId, receiveCount, reason });
        return 'retry';
      }
      const why = retryable ? `retries exhausted after ${receiveCount} receives: ${reason}` : `permanent: ${reason}`;
      log.error('sync failed, parking', { subject: message.subject, eventId: message.eventId, reason: why });
      try {
        await park(e, message, why);
        return 'ok';
      } catch (parkErr) {
        // Could not park: let SQS keep it (its own redrive policy is the last resort).
        log.error('parking failed, leaving the message to SQS', { subject: message.subject, error: parkErr });
        return 'retry';
      }
    }
  }

  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    let enginePromise: Promise<EngineDeps> | undefined;
    const engine = () => (enginePromise ??= deps.engineDeps());
    const groups = new Map<string, SQSRecord[]>();
    for (const r of event.Records) {
      const g = r.attributes?.MessageGroupId ?? r.messageId;
      const list = groups.get(g);
      if (list) list.push(r);
      else groups.set(g, [r]);
    }
    const failures: SQSBatchItemFailure[] = [];
    await Promise.all(
      [...groups.values()].map(async (records) => {
        for (let i = 0; i < records.length; i++) {
          const record = records[i]!;
          let result: Result;
          try {
            result = await processRecord(record, engine);
          } catch (err) {
            log.error('worker error', { messageId: record.messageId, error: err });
            result = 'retry';
          }
          if (result === 'retry') {
            for (const rest of records.slice(i)) failures.push({ itemIdentifier: rest.messageId });
            return;
          }
        }
      }),
    );
    return { batchItemFailures: failures };
  };
}
