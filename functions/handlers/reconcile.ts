/**
 * Scheduled Lambda (EventBridge): reconcile-all. Thin: wiring + one call to reconcileAll.
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
import type { ReconcileDeps } from '../sync/reconcile';
import type { ReconcileReport } from '../sync/report';

export type ReconcileMode = 'report' | 'repair-dry-run' | 'repair';

export interface ReconcileEvent {
  mode?: ReconcileMode;
  confirm?: boolean;
  operator?: string;
  /** EventBridge delivers a rule's custom input as is, and a scheduled event with `detail`. */
  detail?: { mode?: ReconcileMode; confirm?: boolean; operator?: string };
}

export interface ReconcileHandlerDeps {
  reconcileDeps: () => Promise<ReconcileDeps>;
  /** The configured default for scheduled runs. */
  defaultMode?: ReconcileMode;
}

export interface ReconcileHandlerResult {
  runId: string;
  mode: ReconcileReport['mode'];
  drift: number;
  byClass: ReconcileReport['counts']['byClass'];
  guard?: ReconcileReport['guard'];
  locations?: string[];
}

const MODES: readonly ReconcileMode[] = ['report', 'repair-dry-run', 'repair'];

export function parseMode(value: unknown): ReconcileMode | undefined {
  return typeof value === 'string' && (MODES as readonly string[]).includes(value) ? (value as ReconcileMode) : undefined;
}

export function createReconcileHandler(deps: ReconcileHandlerDeps) {
  return middy(async (event: ReconcileEvent = {}): Promise<ReconcileHandlerResult> => {
    const src = { ...(event?.detail ?? {}), ...stripUndefined({ mode: event?.mode, confirm: event?.confirm, operator: event?.operator }) };
    const mode = parseMode(src.mode) ?? deps.defaultMode ?? 'report';
    const { reconcileAll } = await import('../sync/reconcile');
    const report = await reconcileAll(await deps.reconcileDeps(), {
      repair: mode !== 'report',
      apply: mode === 'repair',
      confirm: src.confirm === true,
      operator: typeof src.operator === 'string' && src.operator ? src.operator : 'reconcile',
    });
    return {
      runId: report.runId,
      mode: report.mode,
      drift: report.drift,
      byClass: report.counts.byClass,
      ...(report.guard ? { guard: report.guard } : {}),
      ...(report.locations ? { locations: report.locations } : {}),
    };
  });
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

export const handler = createReconcileHandler({ reconcileDeps: awsReconcileDeps, defaultMode: configuredMode() });
