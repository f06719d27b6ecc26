/**
 * "Sync now" for one person: preview, then apply what was previewed — and only that.
 *
 * Preview: the engine itself runs the person in dry run (`syncSubject` with `dryRun`: it
 * reads both sides, decides, and audits each write it would make with outcome 'dry-run',
 * writing nothing). We capture those entries on their way to the audit log, and explain them
 * with the inputs of the decision: the decision-table row, the sync profile's verdict on the
 * person's fields (withheld, protected department, scope, authority), and what normalization
 * refuses. The plan's digest covers what would be written (actions, targets, field values —
 * never shown, only hashed).
 *
 * Apply: the engine first runs again in dry run, silently; if that plan's digest differs from
 * the one the operator confirmed (someone changed the person meanwhile), nothing is applied
 * and a fresh preview is shown instead. Otherwise it runs for real, under the operator's
 * identity, and the result says whether what happened matches the preview (it can differ
 * only in what a dry run cannot know, e.g. a uniqueness claim lost to another person).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { redactText } from '../../../functions/core/redact';
import { userSubject, type ContactField, type Subject } from '../../../functions/core/model';
import { targetIsAbroad } from '../../../functions/config/runtime';
import type { SyncMessage } from '../../../functions/queue/messages';
import { maskChange } from '../../../functions/store/audit-mask';
import type { AuditAction, AuditChange, AuditInput, AuditLog, AuditRecord, HeldAction } from '../../../functions/store/ports';
import type { EngineDeps } from '../../../functions/sync/context';
import { accountState, decide, memberState, type AccountState, type Decision, type MemberState } from '../../../functions/sync/decide';
import { syncSubject } from '../../../functions/sync/engine';
import { SubjectBusyError } from '../../../functions/sync/errors';
import { isDestructive } from '../../../functions/sync/reconcile';
import { normalizeWecomUser, type Problem } from '../../../functions/sync/normalize';
import { applyProfile, protectedPath, type Withheld } from '../../../functions/sync/policy';
import { linkedAccount } from './person';

export interface PlannedStep {
  action: AuditAction;
  target?: string;
  /** Masked as the audit log masks them. */
  changes: AuditChange[];
  reason?: string;
  outcome: AuditInput['outcome'];
}

export interface Explanation {
  decision: { row: number; kind: Decision['kind']; member: MemberState; account: AccountState; disabledBy?: string; held?: HeldAction['status'] };
  policy: {
    fields: ContactField[];
    withheld: Withheld[];
    protectedDepartment?: string;
    outOfScope: boolean;
    abroad: boolean;
    crossBorderApproved: boolean;
    /** Fields whose mailbox value wins (profile.authority 'mailbox'). */
    mailboxAuthority: ContactField[];
    /** Fields the sync never touches (profile.authority 'none'). */
    untouched: ContactField[];
    problems: Problem[];
  };
}

export interface SyncPlan {
  id: string;
  subject: Subject;
  userid: string;
  createdAt: string;
  explanation: Explanation;
  steps: PlannedStep[];
  /** Anything would be written (to either side or the state). */
  changes: boolean;
  /** It would disable or delete someone: the operator must confirm that explicitly. */
  destructive: boolean;
  digest: string;
}

export type SyncResult =
  | { status: 'applied'; steps: PlannedStep[]; matchesPlan: boolean; at: string }
  | { status: 'failed'; error: string; steps: PlannedStep[]; at: string }
  /** The person changed between preview and confirmation: nothing applied, here is the new plan. */
  | { status: 'changed'; plan: SyncPlan }
  /**
   * Another run (the queue's worker, the CLI) holds the person right now: its write-ahead
   * intent is young. Nothing applied; the plan stays and Apply may be pressed again.
   */
  | { status: 'busy'; retryAfterS: number };

interface Run {
  steps: PlannedStep[];
  changed: boolean;
  destructive: boolean;
  digest: string;
}

/**
 * An audit log that remembers what the run appends. `forward`: the records are really
 * appended too (a preview and an apply are audited); otherwise they are only captured.
 */
function capturing(real: AuditLog, forward: boolean): { log: AuditLog; inputs: AuditInput[] } {
  const inputs: AuditInput[] = [];
  let seq = 0;
  const log: AuditLog = {
    append: async (input) => {
      inputs.push(input);
      if (forward) return real.append(input);
      return { ...input, seq: ++seq, at: (input.at ?? new Date()).toISOString(), hash: '', prevHash: '' } as AuditRecord;
    },
    bySubject: (s, o) => real.bySubject(s, o),
    byTime: (a, b) => real.byTime(a, b),
    verify: (s) => real.verify(s),
  };
  return { log, inputs };
}

/**
 * What would be written, values included; reasons and times are left out (they vary). An HMAC
 * under a key of this process, not a plain hash: a digest over a mobile number must not be
 * reversible by trying every number. It never leaves the server.
 */
const DIGEST_KEY = randomBytes(32);
function digestOf(inputs: AuditInput[]): string {
  const essence = inputs.map((i) => ({ a: i.action, t: i.target ?? null, c: (i.changes ?? []).map((c) => [c.field, c.old ?? null, c.new ?? null]) }));
  return createHmac('sha256', DIGEST_KEY).update(JSON.stringify(essence)).digest('hex');
}

function stepsOf(inputs: AuditInput[]): PlannedStep[] {
  return inputs.map((i) => ({
    action: i.action,
    ...(i.target ? { target: i.target } : {}),
    changes: (i.changes ?? []).map(maskChange),
    ...(i.reason ? { reason: redactText(i.reason) } : {}),
    outcome: i.outcome,
  }));
}

async function run(deps: EngineDeps, userid: string, operator: string, eventId: string, mode: 'preview' | 'verify' | 'apply'): Promise<Run> {
  const { log, inputs } = capturing(deps.audit, mode !== 'verify');
  const runDeps: EngineDeps = { ...deps, audit: log, dryRun: mode !== 'apply' };
  // A dry run must not queue follow-up work either.
  if (mode !== 'apply') delete runDeps.enqueue;
  const message: SyncMessage = { v: 1, subject: userSubject(userid), source: 'cli', eventId, operator, receivedAt: deps.now().toISOString() };
  const outcome = await syncSubject(message, runDeps);
  // The same test a reconcile repair applies before its own deletion guard.
  return { steps: stepsOf(inputs), changed: outcome.changed, destructive: isDestructive(outcome), digest: digestOf(inputs) };
}

function fieldsWithAuthority(authority: Record<string, string | undefined> | undefined, side: string): ContactField[] {
  return Object.entries(authority ?? {})
    .filter(([, s]) => s === side)
    .map(([f]) => f as ContactField);
}

/** Why the engine decides what it decides: the decision table's inputs and the profile's verdict. */
export async function explain(deps: EngineDeps, userid: string): Promise<Explanation> {
  const subject = userSubject(userid);
  const [w, s, tree] = await Promise.all([deps.wecom.getUser(userid), deps.state.get(subject), deps.departments.get()]);
  const m = await linkedAccount(deps, userid, s);
  // The same inputs the engine decides on (functions/sync/person.ts), without the event's hint: a manual run.
  const d = decide({ w, m, s, gate: deps.config.onboarding?.gate ?? true, source: deps.config.lifecycle?.source });
  const profile = deps.config.profile;
  const normalized = w ? normalizeWecomUser(w, { departments: tree, addressRule: deps.config.addressRule, mailDomain: deps.config.mailDomain }) : undefined;
  const applied = normalized ? applyProfile(normalized.contact, profile) : undefined;
  const prot = normalized ? protectedPath(normalized.contact, profile) : undefined;
  return {
    decision: {
      row: d.row,
      kind: d.kind,
      member: memberState(w),
      account: accountState(m, s),
      ...(s?.disabledBy ? { disabledBy: s.disabledBy } : {}),
      ...(s?.held ? { held: s.held.status } : {}),
    },
    policy: {
      fields: [...profile.fields],
      withheld: applied?.withheld ?? [],
      ...(prot !== undefined ? { protectedDepartment: prot } : {}),
      outOfScope: applied?.outOfScope === true,
      abroad: targetIsAbroad(profile),
      crossBorderApproved: profile.crossBorderApproved,
      mailboxAuthority: fieldsWithAuthority(profile.authority, 'mailbox'),
      untouched: fieldsWithAuthority(profile.authority, 'none'),
      problems: normalized?.problems ?? [],
    },
  };
}

export async function previewSync(deps: EngineDeps, userid: string, operator: string): Promise<SyncPlan> {
  const id = randomUUID();
  const explanation = await explain(deps, userid);
  const r = await run(deps, userid, operator, `console:${id}:preview`, 'preview');
  return {
    id,
    subject: userSubject(userid),
    userid,
    createdAt: deps.now().toISOString(),
    explanation,
    steps: r.steps,
    changes: r.changed,
    destructive: r.destructive,
    digest: r.digest,
  };
}

export async function applySync(deps: EngineDeps, plan: SyncPlan, operator: string): Promise<SyncResult> {
  const check = await run(deps, plan.userid, operator, `console:${plan.id}:verify`, 'verify');
  if (check.digest !== plan.digest) return { status: 'changed', plan: await previewSync(deps, plan.userid, operator) };
  const at = deps.now().toISOString();
  try {
    const done = await run(deps, plan.userid, operator, `console:${plan.id}:apply`, 'apply');
    return { status: 'applied', steps: done.steps, matchesPlan: done.digest === plan.digest, at };
  } catch (err) {
    if (err instanceof SubjectBusyError) return { status: 'busy', retryAfterS: Math.max(1, Math.ceil(err.retryAfterMs / 1000)) };
    return { status: 'failed', error: redactText(err instanceof Error ? `${err.name}: ${err.message}` : String(err)), steps: [], at };
  }
}
