/**
 * Lambda (API Gateway HTTP API v2) for the WeCom callback URL. Thin: converts the event,
 * calls the receiver, converts the answer. The deployed `handler` wires DynamoDB, SQS and
 * the callback keys from env at the first invocation (cached per container); no KMS here,
 * the receiver never decrypts personal data. GET verification must answer within 1 s,
 * cold start included, so this file pulls in as little as possible.
 *
 * The source check (wecom/callback-source.ts) is wired from CALLBACK_SOURCE_CHECK
 * ('enforce' | 'report' | 'off'; absent = off) and CALLBACK_IPS_MAX_AGE_SECONDS: it reads the
 * list the `wecom-callback-ips` job stores in the inbox table (this function never holds the
 * WeCom API secret) and counts fail-open and refused requests as EMF metrics.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { requireSetting } from '../config/secrets';
import { createCallbackReceiver, type CallbackReceiverDeps } from '../wecom/callback';
import { SOURCE_CHECK_MODES, type CallbackSourceCheck, type SourceCheckMode } from '../wecom/callback-source';
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

/** Replay window from SYNC_CONFIG.wecom.replayWindowSeconds, without loading the full config schema. */
function replayWindowSeconds(): number | undefined {
  try {
    const v = JSON.parse(process.env.SYNC_CONFIG ?? '{}')?.wecom?.replayWindowSeconds;
    return typeof v === 'number' && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The source check's settings from env; undefined when it is off or not configured. */
export function sourceCheckSettings(env: NodeJS.ProcessEnv = process.env): { mode: SourceCheckMode; maxAgeMs: number } | undefined {
  const mode = env.CALLBACK_SOURCE_CHECK;
  if (!mode || mode === 'off') return undefined;
  if (!(SOURCE_CHECK_MODES as readonly string[]).includes(mode)) throw new Error(`CALLBACK_SOURCE_CHECK must be one of ${SOURCE_CHECK_MODES.join(', ')}`);
  const seconds = Number(env.CALLBACK_IPS_MAX_AGE_SECONDS ?? 86_400);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('CALLBACK_IPS_MAX_AGE_SECONDS must be a positive number');
  return { mode: mode as SourceCheckMode, maxAgeMs: seconds * 1000 };
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
  const inboxTable = requireSetting('INBOX_TABLE');
  const check = sourceCheckSettings();
  return {
    keys: await loadCallbackKeys(),
    inbox: new DynamoInbox(dynamoClient(), inboxTable),
    queue: new SqsWorkQueue(sqs, requireSetting('QUEUE_URL')),
    replayWindowSeconds: replayWindowSeconds(),
    ...(check ? { sourceCheck: await awsSourceCheck(check, dynamoClient(), inboxTable) } : {}),
  };
}

async function awsSourceCheck(
  settings: { mode: SourceCheckMode; maxAgeMs: number },
  client: import('@aws-sdk/client-dynamodb').DynamoDBClient,
  inboxTable: string,
): Promise<CallbackSourceCheck> {
  const [{ DynamoCallbackIpList }, { createCallbackSourceCheck }, { Metrics, MetricUnit }] = await Promise.all([
    import('../store/callback-ip-list'),
    import('../wecom/callback-source'),
    import('@aws-lambda-powertools/metrics'),
  ]);
  const metrics = new Metrics({ namespace: 'WecomMailboxSync', serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'wecom-mailbox-sync' });
  return createCallbackSourceCheck({
    store: new DynamoCallbackIpList(client, inboxTable),
    ...settings,
    // Published at once: a receiver has no end-of-invocation flush, and these are rare events.
    metrics: {
      count: (name) => {
        metrics.addMetric(name, MetricUnit.Count, 1);
        metrics.publishStoredMetrics();
      },
    },
  });
}

export const handler = createWecomCallbackHandler(awsDeps);
