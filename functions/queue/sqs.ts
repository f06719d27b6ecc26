/**
 * WorkQueue on an SQS FIFO queue. Batches of 10 (the SendMessageBatch limit), sent one
 * after another so a subject's messages keep their order; failed entries are retried once
 * and then the call throws, so the caller (callback receiver) answers 5xx and the sender
 * retries. Dedupe ids make a resend after a partial failure harmless.
 */
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import { messageDeduplicationId, messageGroupId } from './dedupe';
import type { SyncMessage, WorkQueue } from './messages';

const MAX_BATCH = 10;

export class SqsEnqueueError extends Error {
  constructor(
    readonly failed: number,
    readonly codes: string[],
  ) {
    super(`SQS refused ${failed} message(s): ${codes.join(', ')}`);
    this.name = 'SqsEnqueueError';
  }
}

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(messages: SyncMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += MAX_BATCH) {
      const entries = messages.slice(i, i + MAX_BATCH).map(
        (m, j): SendMessageBatchRequestEntry => ({
          Id: String(j),
          MessageBody: JSON.stringify(m),
          MessageGroupId: messageGroupId(m),
          MessageDeduplicationId: messageDeduplicationId(m),
        }),
      );
      await this.sendWithOneRetry(entries);
    }
  }

  private async sendWithOneRetry(entries: SendMessageBatchRequestEntry[]): Promise<void> {
    let pending = entries;
    let codes: string[] = [];
    for (let attempt = 0; attempt < 2 && pending.length > 0; attempt++) {
      const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }));
      const failed = new Set((out.Failed ?? []).map((f) => f.Id));
      codes = (out.Failed ?? []).map((f) => f.Code ?? 'unknown');
      pending = pending.filter((e) => failed.has(e.Id));
    }
    if (pending.length > 0) throw new SqsEnqueueError(pending.length, [...new Set(codes)]);
  }
}
