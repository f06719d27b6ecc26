/**
 * The grace-period deleter: WeCom members whose mailbox was offboarded (disable-then-delete)
 * and whose grace period has passed are deleted — after re-checking that the mailbox is still
 * offboarded. A mailbox re-enabled meanwhile sends the person through the normal sync instead,
 * which re-enables the member. A run with more deletions due than `reconcile.maxDeletes`
 * deletes nothing and asks a human (deletion guard) unless confirmed.
 */
import type { IntentOutcome, StateRecord } from '../store/ports';
import { RunContext, type EngineDeps } from './context';
import { syncSubject } from './engine';
import { releaseAll } from './claims';
import { putState } from './state-record';
import { perform, recoverIntent, step, withOutcome } from './intent';
import { errorReason } from './errors';

export const GRACE_SUBJECT = 'system:grace-deleter';

export interface GraceRunOptions {
  /** An operator confirmed a run above the deletion guard. */
  confirmed?: boolean;
  operator?: string;
}

export interface GraceRunResult {
  due: number;
  deleted: string[];
  reenabled: string[];
  failed: string[];
  /** Set when the deletion guard stopped the run. */
  refused?: string;
}

export async function deleteDueMembers(deps: EngineDeps, opts: GraceRunOptions = {}): Promise<GraceRunResult> {
  const operator = opts.operator ?? 'grace-deleter';
  const now = deps.now();
  const due = await deps.state.listDueForDeletion(now);
  const result: GraceRunResult = { due: due.length, deleted: [], reenabled: [], failed: [] };
  const max = deps.config.reconcile?.maxDeletes ?? 20;
  if (due.length > max && !opts.confirmed) {
    result.refused = `deletion guard: ${due.length} members due for deletion exceeds maxDeletes ${max}; confirm to proceed`;
    await deps.audit.append({ subject: GRACE_SUBJECT, operator, action: 'refused', target: 'wecom', outcome: deps.dryRun ? 'dry-run' : 'refused', reason: result.refused, at: now });
    deps.metrics?.count('deletionGuard');
    return result;
  }
  for (const s of due) {
    try {
      const done = await settle(deps, s, operator);
      if (done === 'deleted') result.deleted.push(s.wecomId);
      else if (done === 'resynced') result.reenabled.push(s.wecomId);
    } catch (err) {
      result.failed.push(s.wecomId);
      await deps.audit.append({ subject: s.subject, operator, action: 'failed', target: 'wecom', outcome: 'error', reason: `grace deletion failed: ${errorReason(err)}`, ...(s.lastEventId ? { eventId: s.lastEventId } : {}), at: now });
    }
  }
  return result;
}

async function settle(deps: EngineDeps, s: StateRecord, operator: string): Promise<'deleted' | 'resynced' | 'skipped'> {
  const message = {
    v: 1 as const,
    subject: s.subject,
    source: 'schedule' as const,
    // The audit of the deletion carries the event that caused the offboarding.
    eventId: s.lastEventId ?? `grace:${s.subject}`,
    hint: 'grace_expired',
    operator,
    receivedAt: deps.now().toISOString(),
  };
  const ctx = new RunContext(deps, message, s.subject);
  if (s.disabledBy !== 'mailbox' || s.status === 'gated') {
    // Only a mailbox offboarding starts a grace period; the onboarding gate's disable never does.
    await ctx.audit({ action: 'refused', target: 'wecom', outcome: 'refused', reason: `grace deletion refused: the member was disabled by ${s.disabledBy ?? 'nobody we know of'}, not by a mailbox offboarding` });
    return 'skipped';
  }
  const m = s.targetId ? await deps.mailbox.get(s.targetId) : undefined;
  if (m && !m.deleted && m.enabled) {
    // Re-enabled within the grace period: the person sync re-enables the member and clears the deadline.
    await syncSubject(message, deps);
    return 'resynced';
  }
  let cur = s;
  if (cur.intent) {
    // An earlier run died between its writes: audit what it did (and finish it) first.
    cur = await recoverIntent(ctx, cur, await deps.wecom.getUser(cur.wecomId), m);
    if (cur.status === 'deleted') return 'deleted';
  }
  const outcome: IntentOutcome = { set: { status: 'deleted' }, clear: ['deleteAfter'], releaseClaims: true };
  const rec = await perform(
    ctx,
    cur,
    [
      step(
        { action: 'delete', target: 'wecom', reason: `grace period ended (offboarded ${cur.offboardedAt ?? 'unknown'}); mailbox still ${m ? 'disabled' : 'deleted'}` },
        { wecom: 'absent' },
        () => deps.wecom.deleteUser(cur.wecomId),
      ),
    ],
    outcome,
  );
  await releaseAll(ctx, cur);
  await putState(ctx, withOutcome(rec, outcome));
  return 'deleted';
}
