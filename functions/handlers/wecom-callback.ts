/**
 * Lambda (API Gateway HTTP API v2) for the WeCom callback URL. Thin: converts the event,
 * calls the receiver, converts the answer. The deployed `handler` wires DynamoDB, SQS and
 * the callback keys from env at the first invocation (cached per container); no KMS here,
 * the receiver never decrypts personal data. GET verification must answer within 1 s,
 * cold start included, so this file pulls in as little as possible.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createCallbackReceiver, type CallbackReceiverDeps } from '../wecom/callback';
import { fromApiGateway, toApiGateway } from './http';

export type WecomCallbackDeps = CallbackReceiverDeps;

/** `deps` may be a value or a (once-called) async factory, so the deployed handler can load secrets lazily. */
export function createWecomCallbackHandler(deps: WecomCallbackDeps | (() => Promise<WecomCallbackDeps>)) {
  let receiver: Promise<ReturnType<typeof createCallbackReceiver>> | undefined;
  const get = () => {
    receiver ??= (typeof deps === 'function' ? deps() : Promise.resolve(deps)).then(createCallbackReceiver);
    // A failed wiring (secret fetch) is retried by the next invocation.
    receiver.catch(() => (receiver = undefined));
    return receiver;
  };
  return middy(async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const receive = await get();
    return toApiGateway(await receive(fromApiGateway(event)));
  });
}

function requireEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`missing configuration: ${name}`);
  return v;
}

/** Replay window from SYNC_CONFIG.wecom.replayWindowSeconds, without loading the full config schema. */
function replayWindowSeconds(): number | undefined {
  try {
    const v = JSON.parse(process.env.SYNC_CONFIG ?? '{}')?.wecom?.replayWindowSeconds;
    return typeof v === 'number' && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

async function awsDeps(): Promise<WecomCallbackDeps> {
  const [{ loadCallbackKeys }, { dynamoClient }, { DynamoInbox }, { SqsWorkQueue }, { SQSClient }] = await Promise.all([
    import('../wecom/callback-keys'),
    import('../store/dynamo'),
    import('../store/inbox'),
    import('../queue/sqs'),
    import('@aws-sdk/client-sqs'),
  ]);
  const sqs = new SQSClient(process.env.SQS_ENDPOINT ? { endpoint: process.env.SQS_ENDPOINT } : {});
  return {
    keys: await loadCallbackKeys(),
    inbox: new DynamoInbox(dynamoClient(), requireEnv('INBOX_TABLE')),
    queue: new SqsWorkQueue(sqs, requireEnv('QUEUE_URL')),
    replayWindowSeconds: replayWindowSeconds(),
  };
}

export const handler = createWecomCallbackHandler(awsDeps);
