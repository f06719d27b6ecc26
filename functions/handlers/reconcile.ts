/**
 * Scheduled Lambda (EventBridge): reconcile-all. Thin: wiring + one call to the job.
 *
 * With the reconcile table and queue (RECONCILE_TABLE, RECONCILE_QUEUE_URL: the deployed
 * stack) each invocation runs ONE chunk of the run (sync/reconcile/job.ts) until about two
 * minutes before its timeout, then sends `{ runId }` to the reconcile queue, whose message
 * invokes it again to resume from the checkpoint. A chunk that dies leaves its message, which
 * comes back after the visibility timeout. Without them, the whole run in this invocation.
 *
 * Mode, from the event (an operator's manual invoke, or a rule's input) first, then the
 * RECONCILE_MODE setting (SYNC_CONFIG.reconcile.mode when the config schema carries it):
 *   'report' (default)  — drift report only
 *   'repair-dry-run'    — the engine runs in simulate mode: audited 'dry-run', nothing written
 *   'repair'            — apply the differences, behind the deletion guard
 * The guard is only passed with `confirm: true` in the EVENT (a person invoking it), never
 * from configuration, so a schedule can never bypass it.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { RunStore } from '../store/run-store';
import type { ReconcileDeps } from '../sync/reconcile';
import type { ReconcileReport } from '../sync/report';

export type ReconcileMode = 'report' | 'repair-dry-run' | 'repair';

export interface ReconcileEvent {
  mode?: ReconcileMode;
  confirm?: boolean;
  operator?: string;
  /** EventBridge delivers a rule's custom input as is, and a scheduled event with `detail`. */
  detail?: { mode?: ReconcileMode; confirm?: boolean; operator?: string };
  /** Resume this run (an operator's invoke); its mode, confirmation and operator are the run's own. */
  runId?: string;
  /** The reconcile queue's continuation (batch size 1): body `{ "runId": … }`. */
  Records?: Array<{ body?: string }>;
}

/** The chunked job's pieces: where a run keeps its scratch and checkpoint, and how it continues. */
export interface ReconcileChunking {
  store: RunStore;
  continueRun(runId: string): Promise<void>;
  /** Stop starting steps this long before the invocation's timeout (default 120 s). */
  marginMs?: number;
}

export interface ReconcileHandlerDeps {
  reconcileDeps: () => Promise<ReconcileDeps>;
  /** The configured default for scheduled runs. */
  defaultMode?: ReconcileMode;
  /** Chunked runs (the deployed stack); absent → the whole run in one invocation. */
  chunking?: () => Promise<ReconcileChunking | undefined>;
}

export interface ReconcileHandlerResult {
  runId: string;
  /** false: this chunk stopped at its deadline and the run continues through the queue. */
  done: boolean;
  /** Another execution advanced the run's checkpoint: this one stopped without doing anything more. */
  superseded?: boolean;
  chunks?: number;
  mode?: ReconcileReport['mode'];
  drift?: number;
  byClass?: ReconcileReport['counts']['byClass'];
  guard?: ReconcileReport['guard'];
  locations?: string[];
}

const MODES: readonly ReconcileMode[] = ['report', 'repair-dry-run', 'repair'];

export function parseMode(value: unknown): ReconcileMode | undefined {
  return typeof value === 'string' && (MODES as readonly string[]).includes(value) ? (value as ReconcileMode) : undefined;
}

export function createReconcileHandler(deps: ReconcileHandlerDeps) {
  return middy(async (event: ReconcileEvent = {}, context?: Context): Promise<ReconcileHandlerResult> => {
    const src = { ...(event?.detail ?? {}), ...stripUndefined({ mode: event?.mode, confirm: event?.confirm, operator: event?.operator }) };
    const mode = parseMode(src.mode) ?? deps.defaultMode ?? 'report';
    const opts = {
      repair: mode !== 'report',
      apply: mode === 'repair',
      confirm: src.confirm === true,
      operator: typeof src.operator === 'string' && src.operator ? src.operator : 'reconcile',
    };
    const { reconcileAll, runReconcileChunk, RunSupersededError } = await import('../sync/reconcile');
    const chunking = await deps.chunking?.();
    if (!chunking) return resultOf(await reconcileAll(await deps.reconcileDeps(), opts));

    const runId = event?.runId ?? continuationOf(event);
    const remaining = context?.getRemainingTimeInMillis?.();
    const deadlineMs = remaining === undefined ? undefined : Date.now() + remaining - (chunking.marginMs ?? 120_000);
    try {
      const r = await runReconcileChunk(await deps.reconcileDeps(), chunking.store, { ...opts, ...(runId ? { runId } : {}), ...(deadlineMs !== undefined ? { deadlineMs } : {}) });
      if (r.report) return { ...resultOf(r.report), chunks: r.chunks };
      if (r.phase !== 'done') await chunking.continueRun(r.runId);
      return { runId: r.runId, done: r.phase === 'done', chunks: r.chunks };
    } catch (err) {
      // A duplicate continuation (SQS delivers at least once): the other execution goes on.
      if (err instanceof RunSupersededError) return { runId: err.runId, done: false, superseded: true };
      throw err;
    }
  });
}

function resultOf(report: ReconcileReport): ReconcileHandlerResult {
  return {
    runId: report.runId,
    done: true,
    mode: report.mode,
    drift: report.drift,
    byClass: report.counts.byClass,
    ...(report.guard ? { guard: report.guard } : {}),
    ...(report.locations ? { locations: report.locations } : {}),
  };
}

/** The run id of a reconcile-queue message, if the event is one. */
function continuationOf(event: ReconcileEvent): string | undefined {
  const body = event?.Records?.[0]?.body;
  if (!body) return undefined;
  try {
    const runId = (JSON.parse(body) as { runId?: unknown }).runId;
    return typeof runId === 'string' && runId ? runId : undefined;
  } catch {
    return undefined;
  }
}

function stripUndefined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The configured default: RECONCILE_MODE, else SYNC_CONFIG.reconcile.mode, else report-only. */
export function configuredMode(env: NodeJS.ProcessEnv = process.env): ReconcileMode {
  const fromEnv = parseMode(env.RECONCILE_MODE);
  if (fromEnv) return fromEnv;
  try {
    return parseMode((JSON.parse(env.SYNC_CONFIG ?? '{}') as { reconcile?: { mode?: unknown } }).reconcile?.mode) ?? 'report';
  } catch {
    return 'report';
  }
}

async function awsReconcileDeps(): Promise<ReconcileDeps> {
  const [{ awsEngineDeps }, { S3Client }, { S3ReportSink }] = await Promise.all([
    import('./wiring'),
    import('@aws-sdk/client-s3'),
    import('../sync/report-s3'),
  ]);
  const engine = await awsEngineDeps();
  const bucket = process.env.REPORT_BUCKET;
  return { ...engine, ...(bucket ? { reports: new S3ReportSink(new S3Client({}), bucket) } : {}) };
}

/** The reconcile table and queue, when the stack gave them (RECONCILE_TABLE, RECONCILE_QUEUE_URL). */
async function awsChunking(): Promise<ReconcileChunking | undefined> {
  const table = process.env.RECONCILE_TABLE;
  const queueUrl = process.env.RECONCILE_QUEUE_URL;
  if (!table || !queueUrl) return undefined;
  const [{ DynamoDBClient }, { SQSClient }, { DynamoRunStore }, { SqsReconcileContinuation }] = await Promise.all([
    import('@aws-sdk/client-dynamodb'),
    import('@aws-sdk/client-sqs'),
    import('../store/run-store-dynamo'),
    import('../queue/reconcile-continuation'),
  ]);
  const continuation = new SqsReconcileContinuation(new SQSClient({}), queueUrl);
  return { store: new DynamoRunStore(new DynamoDBClient({}), table), continueRun: (runId) => continuation.send(runId) };
}

export const handler = createReconcileHandler({ reconcileDeps: awsReconcileDeps, defaultMode: configuredMode(), chunking: awsChunking });
