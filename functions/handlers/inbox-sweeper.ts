/**
 * Scheduled Lambda (EventBridge, every 5 min by default): sweepInbox (queue/sweep.ts) with AWS
 * wiring — re-enqueue inbox items a receiver left `pending` (it died between its inbox
 * write and its enqueue, and the sender never retried). Thin: wire, call, log, map.
 *
 * Found items are a WARN (they mean a receiver died or the queue failed; the counts are
 * what to look at). A run that could not enqueue or mark everything it found throws after
 * logging, so the function's Errors metric (and its alarm) fires and EventBridge retries;
 * the items stay pending, nothing is lost either way. The role can touch only the inbox
 * (Query on its pending index, UpdateItem) and send to the work queue (lib/stack.ts ACCESS).
 */
import middy from '@middy/core';
import { requireSetting } from '../config/secrets';
import { log } from '../core/log';
import type { WorkQueue } from '../queue/messages';
import { sweepInbox, type SweepResult } from '../queue/sweep';
import type { Inbox } from '../store/ports';

export interface InboxSweeperDeps {
  /** Called at each invocation; the deployed handler builds the clients once per container. */
  ports: () => Promise<{ inbox: Inbox; queue: WorkQueue }>;
  now?: () => Date;
  /** Passed to sweepInbox (defaults there: 2 minutes, 1,000 items). */
  olderThanMs?: number;
  limit?: number;
}

export class InboxSweepIncompleteError extends Error {
  constructor(readonly result: SweepResult) {
    super(`inbox sweep left ${result.failed} of ${result.found} pending item(s) for the next run`);
    this.name = 'InboxSweepIncompleteError';
  }
}

export function createInboxSweeperHandler(deps: InboxSweeperDeps) {
  return middy(async (): Promise<SweepResult> => {
    const { inbox, queue } = await deps.ports();
    const result = await sweepInbox({
      inbox,
      queue,
      ...(deps.now ? { now: deps.now } : {}),
      ...(deps.olderThanMs !== undefined ? { olderThanMs: deps.olderThanMs } : {}),
      ...(deps.limit !== undefined ? { limit: deps.limit } : {}),
    });
    if (result.found > 0) log.warn('inbox sweep re-enqueued pending items', { ...result });
    else log.info('inbox sweep: nothing pending', { ...result });
    if (result.failed > 0) throw new InboxSweepIncompleteError(result);
    return result;
  });
}

async function awsPorts(): Promise<{ inbox: Inbox; queue: WorkQueue }> {
  const [{ dynamoClient }, { DynamoInbox }, { SqsWorkQueue }, { SQSClient }] = await Promise.all([
    import('../store/dynamo'),
    import('../store/inbox'),
    import('../queue/sqs'),
    import('@aws-sdk/client-sqs'),
  ]);
  const sqs = new SQSClient(process.env.SQS_ENDPOINT ? { endpoint: process.env.SQS_ENDPOINT } : {});
  return {
    inbox: new DynamoInbox(dynamoClient(), requireSetting('INBOX_TABLE')),
    queue: new SqsWorkQueue(sqs, requireSetting('QUEUE_URL')),
  };
}

let wired: Promise<{ inbox: Inbox; queue: WorkQueue }> | undefined;
export const handler = createInboxSweeperHandler({
  ports: () => {
    wired ??= awsPorts();
    // A failed wiring is retried by the next invocation.
    wired.catch(() => (wired = undefined));
    return wired;
  },
});
