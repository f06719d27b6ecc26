/**
 * Reconcile-all: the safety net under the event-driven sync. Lists both directories in
 * full, normalizes both sides with the worker's own code (normalize → policy → diff), and
 * classifies every person and department. Optionally repairs — through the engine
 * (`syncSubject`), so policy, authority, uniqueness and audit are exactly the worker's —
 * dry run by default, and behind a deletion guard.
 *
 * The work is a chunked job (reconcile/job.ts): pages of both directories go to a run store
 * (scratch, keyed by userid) and are joined shard by shard, so memory holds pages, not the
 * directory. `reconcileAll` runs it to the end in this process (the CLI, small directories,
 * tests) — on `deps.runStore` when given (the reconcile table), else in memory; the
 * scheduled Lambda runs one chunk per invocation and continues itself (handlers/reconcile.ts).
 */
import { MemoryRunStore } from '../store/run-store';
import type { ReconcileReport } from './report';
import { runReconcileChunk, type ReconcileDeps, type ReconcileOptions } from './reconcile/job';

export {
  deletionLimit,
  isDestructive,
  pool,
  RECONCILE_SUBJECT,
  runReconcileChunk,
  RunSupersededError,
  summary,
  type ChunkOptions,
  type ChunkResult,
  type JobState,
  type ReconcileDeps,
  type ReconcileOptions,
  type ReconcileProgress,
} from './reconcile/job';

export async function reconcileAll(deps: ReconcileDeps, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const store = deps.runStore ?? new MemoryRunStore();
  let r = await runReconcileChunk(deps, store, opts);
  while (!r.report) r = await runReconcileChunk(deps, store, { runId: r.runId });
  return r.report;
}
