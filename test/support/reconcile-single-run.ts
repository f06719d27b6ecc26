/**
 * THE TESTS' ORACLE: reconcile-all as it was before issue 16 (one pass in one process, every
 * WeCom person held in memory), kept verbatim but for its imports, so the chunked job
 * (functions/sync/reconcile/job.ts) can be compared with it on the same data. Not product code.
 *
 * Reconcile-all: the safety net under the event-driven sync. Lists both directories in
 * full, normalizes both sides with the worker's own code (normalize → policy → diff), and
 * classifies every person and department. Optionally repairs — through the engine
 * (`syncSubject`), so policy, authority, uniqueness and audit are exactly the worker's —
 * dry run by default, and behind a deletion guard.
 *
 * Memory: only the WeCom side is held, as one compact record per userid; the mailbox side
 * is streamed page by page and compared as it arrives.
 */
import { randomUUID } from 'node:crypto';
import type { MailboxAccount } from '../../functions/mailbox/directory';
import type { SyncMessage } from '../../functions/queue/messages';
import { log } from '../../functions/core/log';
import { maskEmail, maskPhone, redactText } from '../../functions/core/redact';
import type { AuditInput, AuditLog, AuditRecord } from '../../functions/store/ports';
import type { WecomDepartment, WecomUser } from '../../functions/wecom/contacts';
import type { EngineDeps, SyncOutcome } from '../../functions/sync/context';
import { memberState } from '../../functions/sync/decide';
import { resolveAuthority } from '../../functions/sync/authority';
import { deriveUserid, outOfScope as accountOutOfScope } from '../../functions/sync/birth';
import { diffContact } from '../../functions/sync/diff';
import { syncSubject } from '../../functions/sync/engine';
import { isSensitiveField, userSubject, type Contact } from '../../functions/core/model';
import { normalizeMailboxAccount, normalizeWecomUser, type Problem } from '../../functions/sync/normalize';
import { applyProfile } from '../../functions/sync/policy';
import type { DepartmentTree } from '../../functions/sync/departments';
import {
  DRIFT_CLASSES,
  INFORMATIONAL,
  REPAIRABLE,
  reportCsv,
  reportJson,
  reportName,
  type DriftClass,
  type Finding,
  type GuardResult,
  type ReconcileReport,
  type ReportSink,
} from '../../functions/sync/report';

export interface ReconcileProgress {
  phase: 'wecom' | 'mailbox' | 'repair';
  done: number;
  total?: number;
}

export interface ReconcileDeps extends EngineDeps {
  /** Where the CSV/JSON report goes; none → the report is only returned. */
  reports?: ReportSink;
  /** Concurrent WeCom user/get calls (default 16: far below WeCom's 10,000/min per API once latency is counted). */
  concurrency?: number;
  /** Concurrent engine runs in a repair (default 4). */
  repairConcurrency?: number;
  progress?: (p: ReconcileProgress) => void;
}

export interface ReconcileOptions {
  /** Apply the differences through the engine (dry run unless `apply`). */
  repair?: boolean;
  /** Really write (repair only). Default false: the engine runs with dryRun, audited 'dry-run'. */
  apply?: boolean;
  /** An operator confirmed destructive actions above the deletion guard. */
  confirm?: boolean;
  /** 'reconcile' (schedule) or 'cli:<user>'. */
  operator?: string;
}

/** The subject reconcile runs are audited under. */
export const RECONCILE_SUBJECT = 'reconcile';

/** What we keep per WeCom person between the two listings: small, no raw WeCom payload. */
interface WecomRecord {
  desired: Contact;
  enabled: boolean;
  seen: boolean;
  /** Unique fields whose value another person shares: reported as duplicates, not as field drift (the engine refuses them). */
  shared?: Set<string>;
}

/** The deletion guard's limit: the stricter of an absolute count and a share of the managed population. */
export function deletionLimit(config: EngineDeps['config'], managed: number): number {
  const maxDeletes = config.reconcile?.maxDeletes ?? 20;
  const pct = config.reconcile?.maxDeletePercent ?? 5;
  return Math.min(maxDeletes, Math.floor((pct / 100) * managed));
}

export async function reconcileSingleRun(deps: ReconcileDeps, opts: ReconcileOptions = {}): Promise<ReconcileReport> {
  const started = deps.now();
  const runId = `reconcile-${reportName(started)}-${randomUUID().slice(0, 8)}`;
  const operator = opts.operator ?? 'reconcile';
  const findings: Finding[] = [];
  const add = (f: Finding) => void findings.push(f);

  // ---------------------------------------------------------------- departments
  // A rename arrives as no event at all: always re-read the tree here.
  deps.departments.invalidate();
  const [tree, rawDepartments] = await Promise.all([deps.departments.get(), deps.wecom.listDepartments()]);
  const knownPaths = new Set<string>();
  for (const d of rawDepartments) {
    const path = tree.pathOf(d.id);
    if (path === undefined) add(unmappedDepartment(d, 'department has no path (parent missing from the tree)'));
    else knownPaths.add(path);
  }
  for (const dup of tree.duplicates()) {
    add({
      class: 'department-duplicate-path',
      subject: `party:${dup.ids[0]}`,
      departmentId: dup.ids[0]!,
      detail: `path '${dup.path}' is shared by departments ${dup.ids.join(', ')}: members cannot be told apart in the mailbox`,
    });
  }

  // ---------------------------------------------------------------- WeCom side
  const ids = await deps.wecom.listUserIds();
  const people = new Map<string, WecomRecord>();
  const mobileHashes = new Map<string, string[]>();
  const emailHashes = new Map<string, string[]>();
  const masked = new Map<string, string>();
  const unmappedIds = new Map<number, string[]>();
  const outOfScope = new Set<string>();
  let done = 0;
  await pool(ids, deps.concurrency ?? 16, async (userid) => {
    const w = await deps.wecom.getUser(userid);
    if (++done % 1000 === 0 || done === ids.length) deps.progress?.({ phase: 'wecom', done, total: ids.length });
    if (!w) return; // deleted between list_id and user/get
    for (const id of w.department ?? []) {
      if (tree.pathOf(id) !== undefined) continue;
      const list = unmappedIds.get(id);
      if (list) list.push(userid);
      else unmappedIds.set(id, [userid]);
    }
    const planned = desiredContact(deps, tree, w);
    if (planned === undefined) {
      outOfScope.add(userid); // its account (if any) is neither ours to fix nor "extra"
      return;
    }
    const { desired, problems } = planned;
    if (problems.length) {
      // Refused by the worker too (never sent): the data must be fixed in WeCom by a person.
      add({ class: 'invalid-field', subject: userSubject(userid), userid, fields: problems.map((p) => p.field), detail: problems.map((p) => p.reason).join('; ') });
    }
    people.set(userid, { desired, enabled: memberState(w) === 'enabled', seen: false });
    if (desired.mobile) await collect(deps, mobileHashes, masked, 'mobile', desired.mobile, userid);
    if (desired.email) await collect(deps, emailHashes, masked, 'email', desired.email, userid);
  });
  for (const [id, users] of unmappedIds) {
    if (findings.some((f) => f.class === 'department-unmapped' && f.departmentId === id)) continue;
    add({ class: 'department-unmapped', subject: `party:${id}`, departmentId: id, detail: `WeCom department ${id} (of ${users.length} member(s)) has no path in the department tree` });
  }
  for (const [cls, map] of [['duplicate-mobile', mobileHashes], ['duplicate-email', emailHashes]] as const) {
    for (const [hash, users] of map) {
      if (users.length < 2) continue;
      for (const userid of users) {
        add({ class: cls, subject: userSubject(userid), userid, detail: `${masked.get(hash)} shared by ${users.join(', ')} (keyed hash ${hash.slice(0, 12)})` });
        const p = people.get(userid);
        if (p) (p.shared ??= new Set()).add(cls === 'duplicate-mobile' ? 'mobile' : 'email');
      }
    }
  }

  // ---------------------------------------------------------------- mailbox side (streamed)
  const mailboxSource = deps.config.lifecycle.source === 'mailbox';
  const accountSubject = (id: string) => `mailbox:${deps.mailbox.provider}:${id}`;
  /** Mailbox source: unlinked accounts in scope, by the userid the rule gives them (collisions are judged after the listing). */
  const births = new Map<string, string[]>();
  /** Every employeeId a live account carries. */
  const linked = new Set<string>();
  /** Enabled accounts whose member is disabled: the onboarding hold ('incomplete') or drift, told apart by the state. */
  const wecomDisabled: Array<{ userid: string; accountId: string }> = [];
  let mailboxAccounts = 0;
  let managed = 0;
  /** Disabled on both sides: offboarded (in sync) — unless the onboarding gate is what holds them. */
  const bothDisabled: string[] = [];
  let inSync = 0;
  let cursor: string | undefined;
  do {
    const page = await deps.mailbox.listPage(cursor);
    for (const m of page.accounts) {
      mailboxAccounts++;
      if (m.deleted) continue;
      if (!m.employeeId) {
        // With the mailbox as the source, an unlinked account in scope is a person WeCom lacks.
        if (mailboxSource && (await accountOutOfScope(deps, m)) === undefined) {
          const derived = deriveUserid(deps.config.lifecycle.useridRule, m);
          if ('refused' in derived) add({ class: 'userid-invalid', subject: accountSubject(m.id), accountId: m.id, detail: derived.refused });
          else births.set(derived.userid, [...(births.get(derived.userid) ?? []), m.id]);
          continue;
        }
        add({ class: 'unmanaged', subject: accountSubject(m.id), accountId: m.id, detail: 'no employeeId link: not managed, never touched' });
        continue;
      }
      managed++;
      linked.add(m.employeeId);
      if (m.department && !knownPaths.has(m.department)) {
        add({ class: 'mailbox-department-unknown', subject: userSubject(m.employeeId), userid: m.employeeId, accountId: m.id, detail: `mailbox department '${m.department}' is not a WeCom department path` });
      }
      if (outOfScope.has(m.employeeId)) inSync++;
      else {
        const verdict = comparePerson(deps, m, people.get(m.employeeId), add);
        if (verdict === 'in-sync') inSync++;
        else if (verdict === 'both-disabled') bothDisabled.push(m.employeeId);
        else if (verdict === 'wecom-disabled') wecomDisabled.push({ userid: m.employeeId, accountId: m.id });
      }
    }
    cursor = page.next;
    deps.progress?.({ phase: 'mailbox', done: mailboxAccounts });
  } while (cursor);

  for (const { userid, accountId } of wecomDisabled) {
    const base = { subject: userSubject(userid), userid, accountId };
    const s = await deps.state.get(userSubject(userid));
    if (s?.disabledBy === 'incomplete') {
      const missing = (s.fields.refused as Record<string, string> | undefined)?.incomplete;
      add({ ...base, class: 'incomplete', detail: `created disabled, waiting for a complete record${missing ? `: ${missing}` : ''}` });
    } else add({ ...base, class: 'disabled-in-wecom', detail: 'WeCom member disabled but mailbox active' });
  }
  for (const [userid, accountIds] of births) {
    const clash =
      accountIds.length > 1
        ? `${accountIds.length} accounts derive it`
        : people.has(userid) || outOfScope.has(userid)
          ? `WeCom already has a member with it (if it is this person, set the account's employeeId to '${userid}' by hand)`
          : linked.has(userid)
            ? 'another mailbox account already carries it'
            : undefined;
    for (const id of accountIds) {
      if (clash) add({ class: 'userid-collision', subject: accountSubject(id), accountId: id, detail: `userid '${userid}' collides: ${clash}` });
      else add({ class: 'not-yet-linked', subject: accountSubject(id), accountId: id, userid, detail: `new account in scope: to be created in WeCom as '${userid}'` });
    }
  }
  for (const userid of bothDisabled) {
    const gated = await gateReason(deps, userid, 'its mailbox account exists but is disabled: enable it (a mail administrator’s decision) and the member is enabled next');
    if (gated === undefined) inSync++;
    else add({ class: 'gated', subject: userSubject(userid), userid, detail: `held by the onboarding gate: ${gated}` });
  }
  for (const [userid, p] of people) {
    if (p.seen) continue;
    if (p.enabled) {
      add({
        class: 'missing-in-mailbox',
        subject: userSubject(userid),
        userid,
        // With the mailbox as the source nothing creates mailboxes: a person must (no repair).
        detail: mailboxSource ? 'WeCom member has no mailbox account: the mailbox is the source, create the account there' : 'WeCom member has no mailbox account',
      });
      continue;
    }
    // A disabled member without a mailbox has nothing to provision, unless the onboarding
    // gate disabled them and is still waiting for the mailbox: then the report says why.
    const gated = await gateReason(deps, userid);
    if (gated === undefined) inSync++;
    else add({ class: 'gated', subject: userSubject(userid), userid, detail: `held by the onboarding gate: ${gated}` });
  }
  people.clear();

  const byClass: Partial<Record<DriftClass, number>> = {};
  for (const f of findings) byClass[f.class] = (byClass[f.class] ?? 0) + 1;
  const drift = findings.filter((f) => !INFORMATIONAL.has(f.class)).length;

  const report: ReconcileReport = {
    runId,
    startedAt: started.toISOString(),
    finishedAt: '',
    mode: opts.repair ? (opts.apply ? 'repair' : 'repair-dry-run') : 'report',
    counts: { wecomPeople: ids.length, mailboxAccounts, managedAccounts: managed, departments: rawDepartments.length, inSync, byClass },
    drift,
    findings,
  };

  if (opts.repair) report.guard = await repair(deps, findings, managed, opts, runId, operator);

  report.finishedAt = deps.now().toISOString();
  if (deps.reports) {
    report.locations = await deps.reports.write(reportName(started), { csv: reportCsv(report), json: reportJson(report) });
  }
  await deps.audit.append({
    subject: RECONCILE_SUBJECT,
    operator,
    action: drift === 0 ? 'noop' : 'skip',
    outcome: report.mode === 'repair-dry-run' ? 'dry-run' : 'ok',
    changes: DRIFT_CLASSES.filter((c) => byClass[c]).map((c) => ({ field: c, new: byClass[c] })),
    reason: summary(report),
    eventId: runId,
    at: deps.now(),
  });
  log.info('reconcile finished', { runId, mode: report.mode, drift, byClass, guard: report.guard, locations: report.locations });
  return report;
}

/** One line an operator reads in the audit log or a CLI: counts, guard, where the report is. */
export function summary(r: ReconcileReport): string {
  const parts = DRIFT_CLASSES.filter((c) => r.counts.byClass[c]).map((c) => `${r.counts.byClass[c]} ${c}`);
  const guard = r.guard?.tripped ? `; refused: deletion guard (${r.guard.destructive} > ${r.guard.limit})${r.guard.confirmed ? ' — confirmed by operator' : ''}` : '';
  return `${r.mode}: ${r.counts.wecomPeople} WeCom people, ${r.counts.managedAccounts} managed accounts, ${r.counts.inSync} in sync; ${parts.length ? parts.join(', ') : 'no drift'}${guard}${r.locations?.length ? `; report ${r.locations.join(' ')}` : ''}`;
}

// ------------------------------------------------------------------ classification

/** Why a member is held by the onboarding gate (`known`, else the last failure audited), or undefined when they are not. */
async function gateReason(deps: ReconcileDeps, userid: string, known?: string): Promise<string | undefined> {
  const s = await deps.state.get(userSubject(userid));
  if (!s || s.disabledBy !== 'gate') return undefined;
  if (known) return known;
  const failed = (await deps.audit.bySubject(userSubject(userid))).filter((a) => a.action === 'failed' && a.reason).at(-1);
  return failed ? redactText(failed.reason!) : 'mailbox not created yet';
}

function unmappedDepartment(d: WecomDepartment, why: string): Finding {
  return { class: 'department-unmapped', subject: `party:${d.id}`, departmentId: d.id, detail: why };
}

/**
 * The contact as the worker would write it (normalize + profile), and the fields the worker
 * refuses as invalid. undefined = out of scope. Unmapped departments are reported per
 * department (department-unmapped), not per person.
 */
function desiredContact(deps: ReconcileDeps, tree: DepartmentTree, w: WecomUser): { desired: Contact; problems: Problem[] } | undefined {
  const { config } = deps;
  const normalized = normalizeWecomUser(w, { departments: tree, addressRule: config.addressRule, mailDomain: config.mailDomain });
  const { contact, outOfScope } = applyProfile(normalized.contact, config.profile);
  if (outOfScope) return undefined;
  delete contact.enabled;
  const synced = new Set<string>(config.profile.fields);
  const problems = normalized.problems.filter((p) => p.field !== 'departments' && synced.has(p.field));
  return { desired: contact, problems };
}

async function collect(deps: ReconcileDeps, map: Map<string, string[]>, masked: Map<string, string>, field: 'mobile' | 'email', value: string, userid: string) {
  const h = await deps.cipher.hash(field, value);
  const list = map.get(h);
  if (list) list.push(userid);
  else {
    map.set(h, [userid]);
    masked.set(h, field === 'mobile' ? maskPhone(value) : maskEmail(value));
  }
}

/** Compare one managed account with its WeCom person. */
function comparePerson(deps: ReconcileDeps, m: MailboxAccount, p: WecomRecord | undefined, add: (f: Finding) => void): 'in-sync' | 'drift' | 'both-disabled' | 'wecom-disabled' {
  const userid = m.employeeId!;
  const base = { subject: userSubject(userid), userid, accountId: m.id };
  if (!p) {
    // Already disabled: offboarded, nothing left to do (the mailbox owns deleting it).
    if (!m.enabled) return 'in-sync';
    if (deps.config.lifecycle.source === 'mailbox') add({ ...base, class: 'missing-in-wecom', detail: 'linked account whose WeCom member is gone: the member is created again' });
    else add({ ...base, class: 'extra-in-mailbox', detail: 'managed account (employeeId) whose userid is not in WeCom' });
    return 'drift';
  }
  if (p.seen) {
    add({ ...base, class: 'extra-in-mailbox', detail: 'a second mailbox account carries the same employeeId' });
    return 'drift';
  }
  p.seen = true;
  if (p.enabled && !m.enabled) {
    add({ ...base, class: 'offboarded-in-mailbox', detail: 'mailbox disabled but WeCom member active' });
    return 'drift';
  }
  if (!p.enabled && m.enabled) return 'wecom-disabled';
  if (!p.enabled) return 'both-disabled';
  const current: Contact = { ...normalizeMailboxAccount(m), userid };
  delete current.enabled;
  const changes = diffContact(p.desired, current, resolveAuthority(deps.config)).filter(
    // The mailbox keeps only the main department: compare that one.
    (c: { field: string }) =>
      !(c.field === 'departments' && (p.desired.departments?.[0] ?? null) === (current.departments?.[0] ?? null)) && !p.shared?.has(c.field),
  );
  if (!changes.length) return 'in-sync';
  add({ ...base, class: 'fields-differ', fields: changes.map((c: { field: string }) => c.field), detail: changes.map(describe).join('; ') });
  return 'drift';
}

/** A change as an operator may read it: sensitive values masked, structured ones summarized. */
function describe(c: { field: string; old?: unknown; new?: unknown }): string {
  const show = (v: unknown): string => {
    if (v === undefined) return '?';
    if (v === null) return '∅';
    if (c.field === 'mobile' || c.field === 'telephone') return maskPhone(String(v));
    if (c.field === 'email' || c.field === 'personalEmail') return maskEmail(String(v));
    if (isSensitiveField(c.field)) return '(set)';
    if (Array.isArray(v)) return v.join('|');
    return redactText(String(v));
  };
  return `${c.field}: ${show(c.old)} → ${show(c.new)}`;
}

// ------------------------------------------------------------------ repair

/** An audit log that records nothing: the planning pass of a repair must leave no trace. */
function silentAudit(real: AuditLog): AuditLog {
  let seq = 0;
  return {
    append: async (input: AuditInput): Promise<AuditRecord> => ({
      ...input,
      seq: ++seq,
      at: (input.at ?? new Date()).toISOString(),
      hash: '',
      prevHash: '',
    }) as AuditRecord,
    bySubject: (s, o) => real.bySubject(s, o),
    byTime: (a, b) => real.byTime(a, b),
    verify: (s) => real.verify(s),
  };
}

/** Disables or deletes a person (either side). The gate's temporary disable during onboarding is not one. */
export function isDestructive(o: SyncOutcome): boolean {
  if (o.actions.includes('delete')) return true;
  return o.actions.includes('disable') && !o.actions.includes('create');
}

async function repair(deps: ReconcileDeps, findings: Finding[], managed: number, opts: ReconcileOptions, runId: string, operator: string): Promise<GuardResult> {
  const bySubject = new Map<string, Finding[]>();
  for (const f of findings) {
    if (!REPAIRABLE.has(f.class) || !f.userid) continue;
    if (f.class === 'missing-in-mailbox' && deps.config.lifecycle.source === 'mailbox') continue; // a person creates the account
    const list = bySubject.get(f.subject) ?? [];
    list.push(f);
    bySubject.set(f.subject, list);
  }
  const subjects = [...bySubject.keys()];
  const message = (subject: string): SyncMessage => ({
    v: 1,
    subject: subject as SyncMessage['subject'],
    source: 'reconcile',
    eventId: `${runId}:${subject}`,
    hint: 'reconcile',
    operator,
    receivedAt: deps.now().toISOString(),
  });
  const mark = (subject: string, repairStatus: Finding['repair'], o?: SyncOutcome, detail?: string) => {
    for (const f of bySubject.get(subject) ?? []) {
      f.repair = repairStatus;
      if (o) f.actions = o.actions;
      if (detail) f.detail = `${f.detail ?? ''}${f.detail ? '; ' : ''}${detail}`;
    }
  };
  const conc = deps.repairConcurrency ?? 4;
  const limit = deletionLimit(deps.config, managed);
  let done = 0;

  // Plan: the engine itself says what it would do (dry run, nothing audited).
  const destructive = new Set<string>();
  const planDeps: EngineDeps = { ...deps, dryRun: true, audit: opts.apply ? silentAudit(deps.audit) : deps.audit };
  delete planDeps.enqueue;
  await pool(subjects, conc, async (subject) => {
    try {
      const o = await syncSubject(message(subject), planDeps);
      if (isDestructive(o)) destructive.add(subject);
      if (!opts.apply) mark(subject, 'dry-run', o);
    } catch (err) {
      mark(subject, 'failed', undefined, `plan failed: ${redactText((err as Error).message)}`);
    }
    deps.progress?.({ phase: 'repair', done: ++done, total: subjects.length * (opts.apply ? 2 : 1) });
  });

  const guard: GuardResult = { destructive: destructive.size, limit, tripped: destructive.size > limit, confirmed: opts.confirm === true };
  if (!opts.apply) return guard;

  const refuse = guard.tripped && !guard.confirmed;
  if (refuse) {
    await deps.audit.append({
      subject: RECONCILE_SUBJECT,
      operator,
      action: 'refused',
      outcome: 'refused',
      reason: `refused: deletion guard (${destructive.size} > ${limit}); nothing destructive applied, confirm to proceed`,
      eventId: runId,
      at: deps.now(),
    });
    log.warn('reconcile deletion guard tripped', { runId, destructive: destructive.size, limit });
  }
  await pool(subjects, conc, async (subject) => {
    if (refuse && destructive.has(subject)) {
      mark(subject, 'refused', undefined, `refused: deletion guard (${destructive.size} > ${limit})`);
    } else if (!bySubject.get(subject)?.some((f) => f.repair === 'failed')) {
      try {
        const o = await syncSubject(message(subject), deps);
        mark(subject, o.changed ? 'applied' : 'unchanged', o);
      } catch (err) {
        mark(subject, 'failed', undefined, redactText((err as Error).message));
      }
    }
    deps.progress?.({ phase: 'repair', done: ++done, total: subjects.length * 2 });
  });
  return guard;
}

// ------------------------------------------------------------------ helpers

/** Run `fn` over `items` with at most `n` in flight; the first error stops the pool. */
export async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
}
