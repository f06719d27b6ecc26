/**
 * Lambda (API Gateway HTTP API v2) for /mailbox/events/<provider> (the configured provider's
 * push notifications and their validation handshake) and /mailbox/events/webhook (signed
 * webhook). Thin: converts the event, calls the receiver, converts the answer. The deployed
 * `handler` wires DynamoDB, SQS and the mailbox secret at the first invocation (cached per
 * container). Graph's validation handshake must be answered within 10 s, cold start
 * included, so the AWS clients are imported lazily.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { requireSetting } from '../config/secrets';
import type { MailboxSecret } from '../mailbox/provider';
import { createMailboxReceiver, type MailboxReceiverDeps } from '../mailbox/receive';
import { fromApiGateway, toApiGateway } from './http';

export type MailboxEventsDeps = MailboxReceiverDeps;
export type { MailboxSecret };

/** `deps` may be a value or a (once-called) async factory, so the deployed handler can load secrets lazily. */
export function createMailboxEventsHandler(deps: MailboxEventsDeps | (() => Promise<MailboxEventsDeps>)) {
  let receiver: Promise<ReturnType<typeof createMailboxReceiver>> | undefined;
  const get = () => {
    receiver ??= (typeof deps === 'function' ? deps() : Promise.resolve(deps)).then(createMailboxReceiver);
    // A failed wiring (secret fetch) is retried by the next invocation.
    receiver.catch(() => (receiver = undefined));
    return receiver;
  };
  return middy(async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const receive = await get();
    return toApiGateway(await receive(fromApiGateway(event)));
  });
}

async function awsDeps(): Promise<MailboxEventsDeps> {
  // Not awsMailbox(): that loads the whole adapter; the receiver needs the config and its two secrets.
  const [{ parseRuntimeConfig }, { loadSecretJson }, { receiverSecretFromEnv }, { dynamoClient }, { DynamoInbox }, { SqsWorkQueue }, { SQSClient }] = await Promise.all([
    import('../config/runtime'),
    import('../config/secrets'),
    import('../mailbox/receivers'),
    import('../store/dynamo'),
    import('../store/inbox'),
    import('../queue/sqs'),
    import('@aws-sdk/client-sqs'),
  ]);
  const config = parseRuntimeConfig(process.env.SYNC_CONFIG ?? '{}');
  const secret = await loadSecretJson<Partial<MailboxSecret>>('MAILBOX_SECRET_ARN', () => receiverSecretFromEnv(config.provider));
  const sqs = new SQSClient(process.env.SQS_ENDPOINT ? { endpoint: process.env.SQS_ENDPOINT } : {});
  return {
    inbox: new DynamoInbox(dynamoClient(), requireSetting('INBOX_TABLE')),
    queue: new SqsWorkQueue(sqs, requireSetting('QUEUE_URL')),
    provider: config.provider,
    clientState: secret.clientState ?? '',
    webhookSecret: secret.webhookSecret ?? '', // empty: the receiver refuses to start, naming it
  };
}

export const handler = createMailboxEventsHandler(awsDeps);
