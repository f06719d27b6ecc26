/**
 * Scheduled Lambda (EventBridge): the mailbox provider's change-feed upkeep — keep its push
 * channel alive (Graph: create / renew / recreate the subscription on users) and read what
 * changed since the stored cursor (the delta catch-up; the whole feed where the provider or
 * its cloud has no push, e.g. Microsoft 365 operated by 21Vianet). Thin: wiring from env +
 * `connection.feed.upkeep()`. Fails loudly (throws) when the system refuses, so the
 * schedule's error metric and alarm fire.
 *
 * The catch-up needs the state table (its cursor) and the work queue (what changed): it runs
 * when STATE_TABLE and QUEUE_URL are set, and says `skipped` otherwise.
 */
import middy from '@middy/core';
import type { ChangeFeed, FeedUpkeepResult, MailboxConnectOptions } from '../mailbox/provider';

export interface SubscriptionsDeps {
  feed: Pick<ChangeFeed, 'upkeep'>;
}

export function createSubscriptionsHandler(deps: SubscriptionsDeps | (() => Promise<SubscriptionsDeps>)) {
  let wired: Promise<SubscriptionsDeps> | undefined;
  return middy(async (): Promise<FeedUpkeepResult> => {
    wired ??= typeof deps === 'function' ? deps() : Promise.resolve(deps);
    wired.catch(() => (wired = undefined));
    return (await wired).feed.upkeep();
  });
}

async function awsDeps(): Promise<SubscriptionsDeps> {
  const { awsMailbox } = await import('./mailbox');
  const { config, provider, secret } = await awsMailbox();
  const stateTable = process.env.STATE_TABLE;
  const queueUrl = process.env.QUEUE_URL;
  let feed: MailboxConnectOptions['feed'];
  if (stateTable && queueUrl) {
    const [{ dynamoClient }, { DynamoStateStore }, { stateFeedCursor, stateKnownIds }, { SqsWorkQueue }, { SQSClient }] = await Promise.all([
      import('../store/dynamo'),
      import('../store/state'),
      import('../mailbox/feed-cursor'),
      import('../queue/sqs'),
      import('@aws-sdk/client-sqs'),
    ]);
    const queue = new SqsWorkQueue(new SQSClient(process.env.SQS_ENDPOINT ? { endpoint: process.env.SQS_ENDPOINT } : {}), queueUrl);
    const state = new DynamoStateStore(dynamoClient(), stateTable);
    feed = { cursor: stateFeedCursor(state, provider.name), enqueue: (m) => queue.enqueue(m), known: stateKnownIds(state, provider.name) };
  }
  return { feed: provider.create(config, secret, feed ? { feed } : {}).feed };
}

export const handler = createSubscriptionsHandler(awsDeps);
