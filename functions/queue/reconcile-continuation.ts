/**
 * The chunked reconcile's continuation: a chunk that reached its deadline sends its run id to
 * the reconcile queue (a standard SQS queue whose consumer is the reconcile function), and the
 * next invocation resumes from the checkpoint. Duplicates are harmless: the checkpoint is
 * versioned, so only one execution of a run advances it.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

export interface ReconcileContinuation {
  runId: string;
}

export class SqsReconcileContinuation {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(runId: string): Promise<void> {
    await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify({ runId } satisfies ReconcileContinuation) }));
  }
}
