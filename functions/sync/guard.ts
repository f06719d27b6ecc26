/**
 * The deletion guard on the event path, and what an operator's decision on a held action
 * does to a person's next run.
 *
 * An upstream glitch (a WeCom admin deleting a department's members by mistake, a mail
 * admin disabling accounts in bulk) reaches us as a burst of events. Entra's accidental-
 * deletion threshold and Google Cloud Directory Sync's deletion limits hold such a burst for
 * approval; so do we. A destructive decision caused by an event (source 'wecom' or
 * 'mailbox') is admitted through a sliding window shared by every worker (state table, one
 * item): at most min(maxPeople, maxPercent % of the managed people, never below 1) people
 * within windowMinutes. Past it the action is HELD — not dropped, not applied: stored on the
 * person with its reason, audited 'held', counted (metric 'held' → alarm). Non-destructive
 * work keeps flowing. A held person's later events are held too, until an operator decides
 * (`wecom-sync approvals`):
 *  - approve: the next run of that person goes through without the window (the engine
 *    re-reads both sides, so it applies what is still needed, nothing stale);
 *  - reject: destructive decisions for that person are skipped (audited) until the
 *    situation stops calling for one (e.g. the member is restored in WeCom); then it clears.
 * Reconcile repairs (their own guard), operator commands and schedules are not counted, but
 * a held or rejected person is respected by every run.
 */
import type { HeldAction, StateRecord } from '../store/ports';
import type { RunContext } from './context';
import type { Decision } from './decide';
import { newRecord, putState } from './state-record';

const MANAGED_CACHE_MS = 10 * 60_000;
const MAX_HELD_EVENTS = 20;

export function isDestructive(d: Decision): boolean {
  return d.kind === 'disable-mailbox' || d.kind === 'offboard-member';
}

const managedCache = new WeakMap<object, { at: number; n: number }>();

/** The window's limit: the smaller of the absolute and relative budgets, at least one person. */
export async function guardLimit(ctx: RunContext): Promise<number> {
  const g = ctx.deps.config.deletionGuard;
  const now = ctx.deps.now().getTime();
  let cached = managedCache.get(ctx.deps.state);
  if (!cached || now - cached.at > MANAGED_CACHE_MS) {
    cached = { at: now, n: await ctx.deps.state.countManaged() };
    managedCache.set(ctx.deps.state, cached);
  }
  return Math.max(1, Math.min(g.maxPeople, Math.floor((g.maxPercent / 100) * cached.n)));
}

function describe(d: Decision): { action: string; target: 'mailbox' | 'wecom'; what: string } {
  return d.kind === 'disable-mailbox'
    ? { action: d.kind, target: 'mailbox', what: 'disable the mailbox account' }
    : { action: d.kind, target: 'wecom', what: 'offboard the WeCom member' };
}

/**
 * May the run act on decision `d`? Returns false when the run stops here (the person is held
 * or the action was rejected; audited). May mark the context to release a decided hold.
 */
export async function passGuard(ctx: RunContext, d: Decision, s: StateRecord | undefined): Promise<boolean> {
  const held = s?.held;
  if (held?.status === 'approved') {
    ctx.releaseHeld = true;
    return true;
  }
  if (held?.status === 'held') {
    const eventIds = [...held.eventIds, ctx.message.eventId].slice(-MAX_HELD_EVENTS);
    await putState(ctx, { ...s!, held: { ...held, eventIds } });
    // The audit counts it too: metric 'held' (the alarm's).
    await ctx.audit({ action: 'held', target: held.target, outcome: 'refused', reason: `still held: ${held.reason}; awaiting an operator's decision (wecom-sync approvals)` });
    return false;
  }
  if (held?.status === 'rejected') {
    if (isDestructive(d)) {
      await ctx.audit({ action: 'skip', target: held.target, outcome: 'refused', reason: `${describe(d).what}: rejected by ${held.decidedBy ?? 'an operator'} on ${held.decidedAt ?? '?'}; fix the source, then reconcile` });
      return false;
    }
    ctx.releaseHeld = true; // the situation changed: the rejection has done its job
    return true;
  }

  const g = ctx.deps.config.deletionGuard;
  const eventPath = ctx.message.source === 'wecom' || ctx.message.source === 'mailbox';
  if (!isDestructive(d) || !eventPath || !g.enabled || ctx.dryRun) return true;
  const limit = await guardLimit(ctx);
  const { admitted, inWindow } = await ctx.deps.state.admitDestructive(ctx.subject, ctx.deps.now(), g.windowMinutes * 60_000, limit);
  if (admitted) return true;

  const { action, target, what } = describe(d);
  const reason = `deletion guard: ${inWindow} people already had a destructive action within ${g.windowMinutes} min (limit ${limit}); held: ${what} (decision row ${d.row})`;
  const record: HeldAction = { action, target, reason, since: ctx.deps.now().toISOString(), eventIds: [ctx.message.eventId], status: 'held' };
  await putState(ctx, { ...(s ?? newRecord(ctx, ctx.subject.slice(ctx.subject.indexOf(':') + 1))), held: record });
  await ctx.audit({ action: 'held', target, outcome: 'refused', reason });
  return false;
}

/** After the run: a released hold must not outlive it, even when the run wrote nothing. */
export async function settleHeld(ctx: RunContext, s: StateRecord | undefined): Promise<void> {
  if (!ctx.releaseHeld || ctx.lastState || !s?.held) return;
  await putState(ctx, s);
}
