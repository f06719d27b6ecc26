/**
 * Lambda (SQS FIFO event source, ReportBatchItemFailures) running the sync engine. Thin:
 * the batch logic is in sync/worker.ts; the AWS wiring (DynamoDB, KMS, Secrets Manager,
 * SQS DLQ) is in wiring.ts, built at the first invocation and cached for the container.
 */
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createSyncWorker, type SyncWorkerDeps } from '../sync/worker';

export type { SyncWorkerDeps } from '../sync/worker';

export function createSyncWorkerHandler(deps: SyncWorkerDeps) {
  return middy(createSyncWorker(deps));
}

let worker: ((event: SQSEvent) => Promise<SQSBatchResponse>) | undefined;

export const handler = middy(async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const wiring = await import('./wiring');
  worker ??= createSyncWorker(wiring.awsWorkerDeps());
  try {
    return await worker(event);
  } finally {
    wiring.flushMetrics();
  }
});
