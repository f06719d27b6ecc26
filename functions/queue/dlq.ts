/**
 * The dead-letter sink on the SQS FIFO DLQ: the worker parks a message here itself (rather
 * than letting SQS's redrive policy move it silently) so the parked copy says WHY, in the
 * message attributes `reason` and `failedAt`. Same group (subject) and a dedupe id per
 * (event, subject, reason), so a worker retry that parks twice leaves one copy.
 * Reasons are redacted: they can quote provider error text.
 */
import { createHash } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { redactText } from '../core/redact';
import { messageGroupId } from './dedupe';
import type { DeadLetterSink, SyncMessage } from './messages';

/** SQS message attribute values are limited; a reason is a diagnosis, not a dump. */
const MAX_REASON = 1000;

export class SqsDeadLetters implements DeadLetterSink {
  constructor(
    private readonly client: SQSClient,
    private readonly dlqUrl: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async park(message: SyncMessage, reason: string): Promise<void> {
    await this.send(JSON.stringify(message), messageGroupId(message), `${message.eventId}|${message.subject}`, reason);
  }

  /** A body that is not a SyncMessage at all: parked verbatim under its own group. */
  async parkRaw(body: string, groupId: string, reason: string): Promise<void> {
    await this.send(body.length ? body : '(empty)', groupId.slice(0, 128) || 'malformed', `raw|${body}`, reason);
  }

  private async send(body: string, groupId: string, identity: string, reason: string): Promise<void> {
    const clean = redactText(reason).slice(0, MAX_REASON);
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.dlqUrl,
        MessageBody: body,
        MessageGroupId: groupId,
        MessageDeduplicationId: createHash('sha256').update(`${identity}|${clean}`, 'utf8').digest('hex'),
        MessageAttributes: {
          reason: { DataType: 'String', StringValue: clean || 'unknown' },
          failedAt: { DataType: 'String', StringValue: this.now().toISOString() },
        },
      }),
    );
  }
}
