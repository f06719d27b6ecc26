/**
 * Write-ahead intents: what makes a run crash-consistent.
 *
 * A run that is about to make external writes (WeCom, mailbox) first stores them in the
 * state record, each as it will be audited plus what the world looks like once it is done
 * (`Intent`). That is one state write, merged with the state change that must precede the
 * writes anyway (the onboarding gate's). The run then makes each write and audits it, in
 * order; its last state write clears the intent.
 *
 * A crash anywhere in between leaves the intent behind, and the redelivered message starts
 * with `recoverIntent`: walking the steps in order, a step that has an audit record of the
 * intent's event is done; a step whose effect is visible in the world the run just read
 * (the member disabled, the account there, the fields written) happened but was never
 * audited, so it is audited now, marked as recovered; the first step that is neither stops
 * the walk (steps run one after another, so nothing after it happened). The run then
 * decides from the world as it is — level-driven — and redoes whatever is still missing.
 * So every external write ends up audited exactly once, and nothing is done twice.
 */
import type { MailboxAccount } from '../mailbox/directory';
import { maskChange } from '../store/audit-mask';
import type { AuditChange, Intent, IntentOutcome, IntentStep, StateRecord, StepExpectation } from '../store/ports';
import type { WecomUser } from '../wecom/contacts';
import { releaseAll } from './claims';
import type { AuditEntry, RunContext } from './context';
import { memberState } from './decide';
import type { Contact } from '../core/model';
import { normalizeMailboxAccount, normalizeWecomUser } from './normalize';
import { canonicalValue, putState } from './state-record';

/** A step as the run performs it: the persisted part, and the unmasked changes for the live audit. */
export interface Step {
  entry: AuditEntry & { target: 'mailbox' | 'wecom' };
  expect: StepExpectation;
  run: () => Promise<unknown>;
  /** When set, a failure of the write is audited ('failed', with this reason) before it propagates. */
  failure?: (err: unknown) => string;
}

export function step(entry: Step['entry'], expect: StepExpectation, run: () => Promise<unknown>, failure?: (err: unknown) => string): Step {
  return { entry, expect, run, ...(failure ? { failure } : {}) };
}

function persisted(s: Step): IntentStep {
  const { action, target, changes, reason } = s.entry;
  return {
    action,
    target,
    // Masked before it is stored: an intent lives in the state table like everything else.
    ...(changes?.length ? { changes: changes.map(maskChange) } : {}),
    ...(reason ? { reason } : {}),
    expect: s.expect,
  };
}

/**
 * Store the intent (with whatever state change must precede the writes), then perform and
 * audit each step in order. Returns the state record as stored with the intent (the caller's
 * last putState clears it). A dry run writes nothing and audits each step as 'dry-run'.
 */
export async function perform(ctx: RunContext, base: StateRecord, steps: Step[], outcome?: IntentOutcome): Promise<StateRecord> {
  if (!steps.length) return base;
  const intent: Intent = {
    eventId: ctx.message.eventId,
    operator: ctx.message.operator,
    at: ctx.deps.now().toISOString(),
    steps: steps.map(persisted),
    ...(outcome ? { outcome } : {}),
  };
  const stored = await putState(ctx, { ...base, intent }, { keepIntent: true });
  for (const s of steps) {
    try {
      await ctx.write(s.run, undefined);
    } catch (err) {
      if (s.failure) await ctx.audit({ action: 'failed', target: s.entry.target, outcome: 'error', reason: s.failure(err) });
      // This run is over: the next one (another event too) may recover its intent at once
      // instead of waiting out the lease a live run's intent gets (person.ts).
      await putState(ctx, { ...stored, intent: { ...intent, ended: true } }, { keepIntent: true }).catch(() => undefined);
      throw err;
    }
    // Off the critical path: the intent covers a record lost to a crash.
    ctx.auditInBackground(s.entry);
  }
  return stored;
}

/** The keyed hash a mailbox field expectation holds (departments: the main one, all the mailbox keeps). */
export async function fieldHash(ctx: RunContext, field: string, value: unknown): Promise<string | null> {
  const v = field === 'departments' && Array.isArray(value) ? (value[0] ?? null) : value;
  const text = canonicalValue(v);
  return text === undefined ? null : ctx.deps.cipher.hash(field, text);
}

/** Expectation of an update: the keyed hash of each value written (null = cleared). */
export async function fieldsExpectation(ctx: RunContext, desired: Contact, fields: string[]): Promise<StepExpectation> {
  const out: Record<string, string | null> = {};
  for (const f of fields) out[f] = await fieldHash(ctx, f, (desired as unknown as Record<string, unknown>)[f]);
  return { mailboxFields: out };
}

async function observed(ctx: RunContext, e: StepExpectation, w: WecomUser | undefined, m: MailboxAccount | undefined): Promise<boolean> {
  if ('wecom' in e) {
    if (e.wecom === 'absent') return !w;
    return w !== undefined && (e.wecom === 'exists' || memberState(w) === e.wecom);
  }
  if ('wecomFields' in e) {
    if (!w) return false;
    const { config } = ctx.deps;
    const current = normalizeWecomUser(w, { departments: await ctx.deps.departments.get(), addressRule: config.addressRule, mailDomain: config.mailDomain }).contact as unknown as Record<string, unknown>;
    for (const [field, want] of Object.entries(e.wecomFields)) {
      if ((await fieldHash(ctx, field, current[field])) !== want) return false;
    }
    return true;
  }
  if ('mailbox' in e) {
    if (!m || m.deleted || (e.id !== undefined && m.id !== e.id)) return false;
    return e.mailbox === 'exists' || (e.mailbox === 'enabled') === m.enabled;
  }
  if ('mailboxFields' in e) {
    if (!m || m.deleted) return false;
    const current = normalizeMailboxAccount(m) as unknown as Record<string, unknown>;
    for (const [field, want] of Object.entries(e.mailboxFields)) {
      if ((await fieldHash(ctx, field, current[field])) !== want) return false;
    }
    return true;
  }
  return false;
}

/** The record with an outcome applied. */
export function withOutcome(s: StateRecord, outcome: IntentOutcome | undefined): StateRecord {
  const next: StateRecord = { ...s, ...outcome?.set };
  for (const k of outcome?.clear ?? []) delete next[k];
  return next;
}

/**
 * Audit what an interrupted run did before it died, complete its outcome when every step
 * had happened, and clear its intent. Returns the state record to continue with.
 */
export async function recoverIntent(ctx: RunContext, s: StateRecord, w: WecomUser | undefined, m: MailboxAccount | undefined): Promise<StateRecord> {
  const intent = s.intent!;
  const past = (await ctx.deps.audit.bySubject(s.subject, { since: new Date(intent.at) })).filter((r) => r.eventId === intent.eventId);
  const who = { operator: intent.operator, eventId: intent.eventId };
  let done = 0;
  for (const st of intent.steps) {
    const i = past.findIndex((r) => r.action === st.action && r.target === st.target);
    if (i >= 0) {
      past.splice(i, 1); // done and audited
      done++;
      continue;
    }
    if ('redo' in st.expect) {
      // Not observable, but idempotent: do it again, then it is done and audited.
      const tagId = st.expect.tagId;
      if (!w || !ctx.deps.wecom.addTagUsers) break;
      await ctx.write(() => ctx.deps.wecom.addTagUsers!(tagId, [w.userid]), undefined);
    } else if (!(await observed(ctx, st.expect, w, m))) {
      break; // not done: nothing after it happened either
    }
    done++;
    ctx.count('recovered');
    await ctx.audit({
      action: st.action,
      target: st.target,
      ...(st.changes ? { changes: st.changes as AuditChange[] } : {}),
      reason: `${st.reason ? `${st.reason}; ` : ''}recovered: done before an interruption, audited on the next run`,
      ...who,
    });
  }
  if (done < intent.steps.length || !intent.outcome) return putState(ctx, { ...s, intent: undefined });
  // Every step happened: finish the run as it would have finished.
  if (intent.outcome.releaseClaims) await releaseAll(ctx, s);
  return putState(ctx, withOutcome({ ...s, intent: undefined }, intent.outcome));
}
