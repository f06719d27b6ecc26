/**
 * AWS wiring shared by the sync worker and the grace deleter: one set of clients and one
 * EngineDeps per container, built lazily at the first invocation (secrets fetched once).
 * Handlers import this file dynamically so a cold start loads the SDK clients only once
 * it knows it needs them.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { SQSClient } from '@aws-sdk/client-sqs';
import { requireSetting } from '../config/secrets';
import { stateFeedCursor, stateKnownIds } from '../mailbox/feed-cursor';
import { addressKey } from '../mailbox/webhook';
import { SqsDeadLetters } from '../queue/dlq';
import { SqsWorkQueue } from '../queue/sqs';
import { auditChainKeyFromEnv, fieldCipherFromEnv } from '../security/cipher-from-env';
import { DynamoAuditLog } from '../store/audit';
import { dynamoClient } from '../store/dynamo';
import { DynamoStateStore } from '../store/state';
import type { EngineDeps } from '../sync/context';
import { CachedDepartmentTree } from '../sync/departments';
import type { SyncWorkerDeps } from '../sync/worker';
import { WecomApiClient } from '../wecom/api';
import { loadWecomApiSecret } from '../wecom/api-secret';
import { awsMailbox } from './mailbox';

/** Department names change without events (renames): refresh the tree at least this often. */
const DEPARTMENT_TREE_MAX_AGE_MS = 5 * 60_000;

let engine: Promise<EngineDeps> | undefined;
/** EMF metrics (noop / create / update / disable / skip / refused / failed …), flushed after each invocation. */
const metrics = new Metrics({ namespace: 'WecomMailboxSync', serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'wecom-mailbox-sync' });

export function flushMetrics(): void {
  metrics.publishStoredMetrics();
}
let sqs: SQSClient | undefined;

const sqsClient = () => (sqs ??= new SQSClient(process.env.SQS_ENDPOINT ? { endpoint: process.env.SQS_ENDPOINT } : {}));

async function buildEngineDeps(): Promise<EngineDeps> {
  const stateTable = requireSetting('STATE_TABLE');
  const dynamo = dynamoClient();
  const [wecomSecret, { config, provider, secret: mailboxSecret }, cipher, chain] = await Promise.all([
    loadWecomApiSecret(),
    awsMailbox(),
    fieldCipherFromEnv(dynamo),
    auditChainKeyFromEnv(dynamo),
  ]);
  const wecom = new WecomApiClient({ ...wecomSecret, apiBase: config.wecom.apiBase, callsPerMinute: config.wecom.callsPerMinute });
  const queue = process.env.QUEUE_URL ? new SqsWorkQueue(sqsClient(), process.env.QUEUE_URL) : undefined;
  const state = new DynamoStateStore(dynamo, stateTable);
  // The feed's cursor and queue let a lifecycle notice 'missed' catch up at once.
  const mailbox = provider.create(config, mailboxSecret, queue ? { feed: { cursor: stateFeedCursor(state, provider.name), enqueue: (m) => queue.enqueue(m), known: stateKnownIds(state, provider.name) } } : {});
  return {
    wecom,
    mailbox: mailbox.directory,
    state,
    audit: new DynamoAuditLog(dynamo, requireSetting('AUDIT_TABLE'), { chain }),
    cipher,
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: DEPARTMENT_TREE_MAX_AGE_MS }),
    config,
    now: () => new Date(),
    metrics: { count: (name, n = 1) => metrics.addMetric(name, MetricUnit.Count, n) },
    stateTable,
    ...(queue ? { enqueue: (msgs) => queue.enqueue(msgs) } : {}),
    addressKey: (email) => addressKey(mailboxSecret.webhookSecret, email),
    onSubscriptionLifecycle: (message) => mailbox.feed.onLifecycle(message),
  };
}

/** The container's EngineDeps (a failed build is retried at the next invocation). */
export function awsEngineDeps(): Promise<EngineDeps> {
  engine ??= buildEngineDeps();
  engine.catch(() => (engine = undefined));
  return engine;
}

export function awsWorkerDeps(): SyncWorkerDeps {
  return {
    engineDeps: awsEngineDeps,
    deadLetters: new SqsDeadLetters(sqsClient(), requireSetting('DLQ_URL')),
    maxReceiveCount: Number(process.env.MAX_RECEIVE_COUNT ?? '5') || 5,
  };
}
