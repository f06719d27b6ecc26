/**
 * Operator decisions on actions held by the event-path deletion guard (guard.ts): list them,
 * approve (the person's next run goes through; we enqueue that run), reject (destructive
 * decisions stay off for that person until the situation changes). Each decision is a state
 * write plus an audit record carrying the operator's identity; the same functions serve the
 * CLI against the local stack and against a deployed one.
 */
import type { SyncMessage } from '../queue/messages';
import type { HeldAction, StateRecord } from '../store/ports';
import { RunContext, type EngineDeps } from './context';
import type { Subject } from '../core/model';
import { putState } from './state-record';

export interface HeldView {
  subject: Subject;
  action: string;
  target: string;
  status: HeldAction['status'];
  since: string;
  events: number;
  reason: string;
  decidedBy?: string;
}

export async function listHeld(deps: Pick<EngineDeps, 'state'>): Promise<HeldView[]> {
  const out: HeldView[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.state.listHeld(cursor);
    for (const r of page.records) if (r.held) out.push(view(r));
    cursor = page.next;
  } while (cursor);
  return out.sort((a, b) => a.since.localeCompare(b.since) || a.subject.localeCompare(b.subject));
}

function view(r: StateRecord): HeldView {
  const h = r.held!;
  return {
    subject: r.subject,
    action: h.action,
    target: h.target,
    status: h.status,
    since: h.since,
    events: h.eventIds.length,
    reason: h.reason,
    ...(h.decidedBy ? { decidedBy: h.decidedBy } : {}),
  };
}

export type Verdict = 'approve' | 'reject';

export interface DecisionResult {
  subject: Subject;
  outcome: 'approved' | 'rejected' | 'not-held';
}

/**
 * Decide on the held actions of `subjects` (or every one still waiting). An approval enqueues
 * a run of the person; without `deps.enqueue` the caller runs it (the result says which).
 */
export async function decideHeld(deps: EngineDeps, verdict: Verdict, operator: string, subjects: Subject[] | 'all'): Promise<DecisionResult[]> {
  const targets = subjects === 'all' ? (await listHeld(deps)).filter((h) => h.status === 'held').map((h) => h.subject) : subjects;
  const results: DecisionResult[] = [];
  const runs: SyncMessage[] = [];
  const at = deps.now().toISOString();
  for (const subject of targets) {
    const eventId = `${verdict}:${subject}:${at}`;
    const message: SyncMessage = { v: 1, subject, source: 'cli', eventId, hint: verdict === 'approve' ? 'approved' : 'rejected', operator, receivedAt: at };
    const s = await deps.state.get(subject);
    if (!s?.held || s.held.status !== 'held') {
      results.push({ subject, outcome: 'not-held' });
      continue;
    }
    const ctx = new RunContext(deps, message, subject);
    const status = verdict === 'approve' ? 'approved' : 'rejected';
    await putState(ctx, { ...s, held: { ...s.held, status, decidedBy: operator, decidedAt: at } });
    await ctx.audit({
      action: verdict,
      target: s.held.target,
      reason:
        verdict === 'approve'
          ? `approved: ${s.held.reason}; the person's next run applies what is still needed`
          : `rejected: ${s.held.reason}; no destructive action for this person until the situation changes`,
    });
    if (verdict === 'approve') runs.push(message);
    results.push({ subject, outcome: status });
  }
  for (let i = 0; i < runs.length && deps.enqueue; i += 10) await deps.enqueue(runs.slice(i, i + 10));
  return results;
}
