/**
 * One person, both directions: read the WeCom member, the mailbox account and our state,
 * decide (decide.ts), pass the deletion guard (guard.ts), act, persist, audit. Re-reading
 * everything on every run is what makes duplicates, reordering and echoes converge instead of
 * corrupting; the write-ahead intent (intent.ts) is what makes a crash between two writes
 * converge too, with every write audited once.
 */
import type { MailboxAccount } from '../mailbox/directory';
import type { IntentOutcome, StateRecord } from '../store/ports';
import { partySubject, type Contact } from '../core/model';
import { mailboxOwned, resolveAuthority } from './authority';
import { newMember, planToWecom, type ToWecomPlan } from './to-wecom';
import type { WecomUser } from '../wecom/contacts';
import { releaseAll, releaseChanged } from './claims';
import type { RunContext } from './context';
import { decide, memberState } from './decide';
import { errorReason, INTENT_LEASE_MS, SubjectBusyError } from './errors';
import { passGuard, settleHeld } from './guard';
import { fieldsExpectation, perform, recoverIntent, step, withOutcome, type Step } from './intent';
import { userSubject } from '../core/model';
import { offboardMember } from './offboarding';
import { auditChanges, needsUpdate, patchFor, planProfile, updateAuditChanges, type ProfilePlan } from './profile';
import { newRecord, putState, sameStored, sealValues, splitContact, stableJson } from './state-record';

const ENABLED = [{ field: 'enabled', old: false, new: true }];
const DISABLED = [{ field: 'enabled', old: true, new: false }];

export async function syncPerson(ctx: RunContext, userid: string): Promise<void> {
  const { wecom, state } = ctx.deps;
  const subject = userSubject(userid);
  // A new member (create_user) has no account link stored: look for the account by employeeId
  // alongside the first reads instead of after them (one round trip fewer per onboarding).
  const early = ctx.message.hint === 'create_user' ? findLinked(ctx, userid) : undefined;
  early?.catch(() => undefined); // awaited below when needed; a failure surfaces there
  const [w, stored] = await Promise.all([wecom.getUser(userid), state.get(subject)]);
  const { m, unlinked } = await readAccount(ctx, userid, stored, early);
  if (unlinked) {
    await ctx.audit({ action: 'skip', reason: `mailbox account ${unlinked} no longer carries this employeeId: not managed, left alone` });
    return;
  }
  // Another run's intent, young: that run may be alive (a CLI or console run beside the worker).
  // The same event's intent is its own earlier delivery, which died: recovered at once.
  if (stored?.intent && !stored.intent.ended && !ctx.dryRun && stored.intent.eventId !== ctx.message.eventId) {
    const left = Date.parse(stored.intent.at) + INTENT_LEASE_MS - ctx.deps.now().getTime();
    if (left > 0) throw new SubjectBusyError(subject, left);
  }
  // A run that died between its writes left its intent: audit what it did, then decide afresh.
  const s = stored?.intent ? await recoverIntent(ctx, stored, w, m) : stored;

  const d = decide({ w, m, s, hint: ctx.message.hint, gate: ctx.deps.config.onboarding?.gate ?? true, source: ctx.deps.config.lifecycle?.source });
  if (!(await passGuard(ctx, d, s))) return;
  await act(ctx, userid, d, w, m, s);
  await settleHeld(ctx, s);
}

/** Decisions that write the mailbox account's lifecycle: refused against a read-only directory. */
const MAILBOX_LIFECYCLE_WRITES: ReadonlySet<string> = new Set(['disable-mailbox', 'enable-mailbox', 'create']);

async function act(ctx: RunContext, userid: string, d: ReturnType<typeof decide>, w: WecomUser | undefined, m: MailboxAccount | undefined, s: StateRecord | undefined) {
  const { wecom, mailbox } = ctx.deps;
  if (mailbox.readOnly && MAILBOX_LIFECYCLE_WRITES.has(d.kind)) {
    // The directory is the source of truth and is never written: a WeCom-side change that would
    // need a mailbox write is reported once per reason, the directory is left as it is.
    const what = { 'disable-mailbox': 'disable the account', 'enable-mailbox': 'enable the account', create: 'create an account' }[d.kind as 'create'];
    await refuseOnce(ctx, s, 'read-only', `the directory is read-only (decision row ${d.row}: ${what}): nothing written; change it in the directory if it is meant`, 'mailbox');
    return;
  }
  switch (d.kind) {
    case 'noop':
      return;
    case 'skip':
      await ctx.audit({ action: 'skip', reason: d.reason });
      return;
    case 'disable-mailbox': {
      const reason = w ? 'member disabled in WeCom' : 'member deleted in WeCom';
      const outcome: IntentOutcome = { set: { targetId: m!.id, status: 'disabled', disabledBy: 'wecom' }, releaseClaims: !w };
      const rec = await perform(
        ctx,
        s ?? newRecord(ctx, userid),
        [step({ action: 'disable', target: 'mailbox', changes: DISABLED, reason }, { mailbox: 'disabled', id: m!.id }, () => mailbox.disable(m!.id))],
        outcome,
      );
      if (!w) await releaseAll(ctx, s);
      await putState(ctx, withOutcome(rec, outcome));
      return;
    }
    case 'settle-deleted': {
      await releaseAll(ctx, s);
      await putState(ctx, { ...s!, status: 'deleted', deleteAfter: undefined });
      await ctx.audit({ action: 'update', target: 'state', reason: 'member no longer in WeCom and mailbox offboarded: marked deleted' });
      return;
    }
    case 'offboard-member':
      await offboardMember(ctx, userid, w!, s ?? { ...newRecord(ctx, userid), ...(m ? { targetId: m.id } : {}) }, !m || m.deleted === true);
      return;
    case 'create':
      await onboard(ctx, userid, w!, s, d.gate, d.rehire);
      return;
    case 'enable-mailbox': {
      const lead = [
        step(
          { action: 'enable', target: 'mailbox', changes: ENABLED, reason: d.rehire ? 'rehire: member recreated in WeCom' : d.andMember ? 'onboarding: the linked account was disabled' : 'member enabled in WeCom again' },
          { mailbox: 'enabled', id: m!.id },
          () => mailbox.enable(m!.id),
        ),
      ];
      if (d.andMember && memberState(w) === 'disabled') lead.push(enableMember(ctx, userid, 'onboarding gate: mailbox exists'));
      await converge(ctx, w!, { ...m!, enabled: true }, s, lead, true);
      return;
    }
    case 'create-member':
      await createMember(ctx, userid, m!, s);
      return;
    case 'enable-member': {
      if (d.cause === 'complete') {
        const plan = await planToWecom(ctx, m!, w, s, await ctx.deps.departments.get(), resolveAuthority(ctx.deps.config));
        if (plan.missing.length) {
          await refuseOnce(ctx, s, 'incomplete', `member held disabled: the record is incomplete: ${plan.missing.join('; ')}`);
          return;
        }
      }
      const why = { gate: 'onboarding gate: mailbox exists', mailbox: 'mailbox re-enabled within the grace period', complete: 'record complete: the member may work' }[d.cause];
      await converge(ctx, w!, m!, s, [enableMember(ctx, userid, why)], true);
      return;
    }
    case 'profile':
      await converge(ctx, w!, m!, s, [], false);
      return;
  }
}

/**
 * user/update steps for the mailbox-owned fields that differ: one for fields the mailbox
 * changed ('update'), one for WeCom-side edits put back ('revert'), each with only its fields.
 */
async function updateWecom(ctx: RunContext, userid: string, plan: ToWecomPlan): Promise<Step[]> {
  const steps: Step[] = [];
  for (const revert of [false, true]) {
    const changes = plan.changes.filter((c) => c.revert === revert);
    if (!changes.length) continue;
    const patch = Object.assign({}, ...changes.map((c) => c.patch)) as Partial<Omit<WecomUser, 'userid'>>;
    const expect = await fieldsExpectation(ctx, plan.owned as Contact, changes.map((c) => c.field));
    steps.push(
      step(
        {
          action: revert ? 'revert' : 'update',
          target: 'wecom',
          changes: auditChanges(changes),
          reason: revert ? 'the mailbox is authoritative for these fields: a WeCom-side edit put back' : 'changed in the mailbox (authoritative for these fields)',
        },
        { wecomFields: 'mailboxFields' in expect ? expect.mailboxFields : {} },
        () => ctx.deps.wecom.updateUser(userid, patch),
      ),
    );
  }
  return steps;
}

/**
 * A member born in the mailbox (decision row 22): created in WeCom DISABLED with what the
 * account gives, and enabled in the same run only when the record is complete (a name and a
 * department WeCom knows); otherwise it is held ('incomplete') and reconcile says what is
 * missing. A missing department path is created first when lifecycle.createDepartments is on.
 */
async function createMember(ctx: RunContext, userid: string, m: MailboxAccount, s: StateRecord | undefined): Promise<void> {
  const { config, wecom } = ctx.deps;
  const authority = resolveAuthority(config);
  let tree = await ctx.deps.departments.get();
  let plan = await planToWecom(ctx, m, undefined, s, tree, authority);
  const path = m.department?.trim();
  if (path && plan.mainDepartment === undefined) {
    // Maybe created meanwhile (or by us, in an interrupted run): look again before anything else.
    tree = await ctx.deps.departments.fresh(0);
    if (tree.idOfPath(path) === undefined && config.lifecycle.createDepartments) {
      await createDepartmentPath(ctx, path);
      tree = await ctx.deps.departments.fresh(0);
    }
    plan = await planToWecom(ctx, m, undefined, s, tree, authority);
  }
  const complete = plan.missing.length === 0;
  const input = newMember(userid, m, plan);
  const steps: Step[] = [
    step(
      {
        action: 'create',
        target: 'wecom',
        changes: auditChanges(
          (['name', 'position', 'mobile', 'email', 'departments'] as const)
            .filter((f) => plan.owned[f] !== undefined && plan.owned[f] !== null)
            .map((f) => ({ field: f, new: f === 'departments' ? (plan.owned.departments ?? [])[0] : plan.owned[f] })),
        ),
        reason: `mailbox is the source: member created from the mailbox account${complete ? '' : `, held disabled: ${plan.missing.join('; ')}`}`,
      },
      { wecom: 'exists' },
      () => wecom.createUser(input),
      (err) => `WeCom member creation failed: ${errorReason(err)}`,
    ),
  ];
  if (complete) steps.push(enableMember(ctx, userid, 'record complete: the member may work'));
  const outcome: IntentOutcome = complete ? activeOutcome(m.id) : { set: { status: 'gated', disabledBy: 'incomplete', targetId: m.id }, clear: ['offboardedAt', 'deleteAfter'] };
  const rec = await perform(ctx, s ?? newRecord(ctx, userid), steps, outcome);
  // Remembered as synced: what WeCom got (not a department it does not have yet).
  const desired = { userid, ...plan.owned } as Contact;
  if (plan.mainDepartment === undefined) delete desired.departments;
  await persist(ctx, withOutcome(rec, outcome), { desired }, complete ? {} : { refused: { incomplete: plan.missing.join('; ') } }, true);
}

/**
 * Create a department path's missing segments in WeCom (lifecycle.createDepartments), each
 * exactly once: a claim on the path serialises concurrent runs, and the tree is re-read
 * before each creation. Audited under the new department's subject.
 */
async function createDepartmentPath(ctx: RunContext, path: string): Promise<void> {
  const segments = path.split('/');
  let parent = 1;
  for (let i = 0; i < segments.length; i++) {
    const prefix = segments.slice(0, i + 1).join('/');
    const tree = await ctx.deps.departments.fresh(0);
    const known = tree.idOfPath(prefix);
    if (known !== undefined) {
      parent = known;
      continue;
    }
    const owner = ctx.dryRun ? ctx.subject : await ctx.deps.state.claimUnique('department-path', await ctx.deps.cipher.hash('department-path', prefix), ctx.subject);
    if (owner !== ctx.subject) return; // another run is creating it: this person waits (held incomplete) for the next run
    const id = await ctx.write(() => ctx.deps.wecom.createDepartment(segments[i]!, parent), -1);
    await ctx.audit({ subject: partySubject(id), action: 'create', target: 'wecom', changes: [{ field: 'path', new: prefix }], reason: `mailbox department path created in WeCom for ${ctx.subject} (lifecycle.createDepartments)` });
    parent = id;
  }
}

/** Audit a refusal once per distinct reason (the state remembers what it already reported). */
async function refuseOnce(ctx: RunContext, s: StateRecord | undefined, key: string, reason: string, target: 'wecom' | 'mailbox' = 'wecom'): Promise<void> {
  const seen = (s?.fields.refused ?? {}) as Record<string, string>;
  if (seen[key] === reason) return;
  await ctx.audit({ action: 'refused', target, outcome: 'refused', reason });
  if (s) await putState(ctx, { ...s, fields: { ...s.fields, refused: { ...seen, [key]: reason } } });
}

function enableMember(ctx: RunContext, userid: string, reason: string): Step {
  return step({ action: 'enable', target: 'wecom', changes: ENABLED, reason }, { wecom: 'enabled' }, () => ctx.deps.wecom.updateUser(userid, { enable: 1 }));
}

async function updateMailbox(ctx: RunContext, accountId: string, plan: ProfilePlan): Promise<Step> {
  return step(
    { action: 'update', target: 'mailbox', changes: updateAuditChanges(plan), ...(plan.withheldReason ? { reason: plan.withheldReason } : {}) },
    // The visibility is not in the expectation: a run redone after a crash reads it again and
    // writes it only if it still differs.
    await fieldsExpectation(ctx, plan.desired, plan.changes.map((c) => c.field)),
    () => ctx.deps.mailbox.update(accountId, patchFor(plan)),
  );
}

/** The pair is active again: offboarding and gate cleared (the account id, when known). */
function activeOutcome(targetId?: string): IntentOutcome {
  return { set: { status: 'active', ...(targetId ? { targetId } : {}) }, clear: ['disabledBy', 'offboardedAt', 'deleteAfter'] };
}

/**
 * The account linked to the person: by the stored target id, else by employeeId — the
 * second read is what stops a redelivered create (crash after create, before the state
 * write) from creating a second account. An account whose employeeId is not this userid
 * is not this person's: if the stored account lost its link, `unlinked` says so and the
 * person is left alone rather than treated as offboarded.
 */
async function readAccount(
  ctx: RunContext,
  userid: string,
  s: StateRecord | undefined,
  early?: Promise<MailboxAccount | undefined>,
): Promise<{ m?: MailboxAccount; unlinked?: string }> {
  const { mailbox } = ctx.deps;
  const byEmployeeId = () => early ?? findLinked(ctx, userid);
  if (!s?.targetId) return { m: await byEmployeeId() };
  const byId = await mailbox.get(s.targetId);
  if (byId && byId.employeeId === userid) return { m: byId };
  // Gone by id (maybe recreated under another id), or no longer carrying our link.
  const other = await byEmployeeId();
  if (other) return { m: other };
  return byId ? { unlinked: byId.id } : {};
}

/** The account whose employeeId is this userid (the link), if any. */
async function findLinked(ctx: RunContext, userid: string): Promise<MailboxAccount | undefined> {
  const found = await ctx.deps.mailbox.findByEmployeeId(userid);
  return found?.employeeId === userid ? found : undefined;
}

/** Audit refusals once per distinct problem: the state remembers what it already reported. */
async function auditRefusals(ctx: RunContext, plan: ProfilePlan, s: StateRecord | undefined): Promise<Record<string, string>> {
  const seen = (s?.fields.refused ?? {}) as Record<string, string>;
  const now: Record<string, string> = {};
  for (const r of plan.refusals) {
    now[r.field] = r.reason;
    if (seen[r.field] === r.reason) continue;
    await ctx.audit({ action: 'refused', target: 'mailbox', outcome: 'refused', reason: `${r.field} not sent: ${r.reason}` });
  }
  return now;
}

/**
 * Department groups: make sure the groups of the new paths exist and move membership.
 * Level-driven on the state (the paths we last stored), so a run interrupted between the
 * PATCH and the membership change moves the groups on its next run.
 */
async function moveGroups(ctx: RunContext, accountId: string, plan: ProfilePlan, s: StateRecord | undefined): Promise<{ groupIds?: string[] }> {
  const paths = plan.desired.departments;
  if (paths === undefined) return Array.isArray(s?.fields.groupIds) ? { groupIds: s!.fields.groupIds as string[] } : {};
  const oldIds = Array.isArray(s?.fields.groupIds) ? (s!.fields.groupIds as string[]) : [];
  const oldPaths = Array.isArray(s?.fields.departments) ? (s!.fields.departments as string[]) : undefined;
  if (oldPaths && stableJson(oldPaths) === stableJson(paths ?? []) && oldIds.length === (paths ?? []).length) return { groupIds: oldIds };
  const ids: string[] = [];
  for (const path of paths ?? []) ids.push(await ctx.write(() => ctx.deps.mailbox.ensureGroup(path), `dry-run:${path}`));
  const from = oldIds.filter((id) => !ids.includes(id));
  const to = ids.filter((id) => !oldIds.includes(id));
  if (from.length || to.length) await ctx.write(() => ctx.deps.mailbox.setGroupMembership(accountId, from, to), undefined);
  return { groupIds: ids };
}

/** Build and (if different) persist the state for the desired contact. */
async function persist(ctx: RunContext, base: StateRecord, plan: Pick<ProfilePlan, 'desired'>, extra: Record<string, unknown>, force: boolean): Promise<void> {
  const { fields, clear } = splitContact(plan.desired, base.version ? base : undefined);
  Object.assign(fields, extra);
  for (const k of Object.keys(extra)) if (extra[k] === undefined) delete fields[k];
  const sensitive = await sealValues(ctx, clear, base.version ? base : undefined, plan.desired);
  if (!force && base.version && sameStored({ fields, sensitive }, base)) return;
  await releaseChanged(ctx, base.version ? base : undefined, Object.fromEntries(Object.entries(sensitive).map(([k, v]) => [k, v.h])));
  await putState(ctx, { ...base, fields, sensitive });
}

/**
 * An enabled pair (or one this run enables through `lead`): the lead steps and a PATCH of the
 * changed fields only, under one intent; then groups and state. `force` = the state must be
 * written anyway (its status changes in this run).
 */
async function converge(ctx: RunContext, w: WecomUser, m: MailboxAccount, s: StateRecord | undefined, lead: Step[], force: boolean): Promise<void> {
  const plan = await planProfile(ctx, w, m, s);
  if (plan.outOfScope && !force) {
    // Moved out of scope: its account is left as it is (reconcile reports it), not updated.
    ctx.count('outOfScope');
    return;
  }
  const refused = await auditRefusals(ctx, plan, s);
  // A read-only directory gets no update: the configuration lets no field flow to it (runtime.ts).
  const steps = needsUpdate(plan) && !ctx.deps.mailbox.readOnly ? [...lead, await updateMailbox(ctx, m.id, plan)] : lead;
  // The other direction: fields the mailbox owns are written to WeCom (a WeCom edit put back).
  const authority = resolveAuthority(ctx.deps.config);
  if (mailboxOwned(authority).length && !plan.outOfScope) {
    const toWecom = await planToWecom(ctx, m, w, s, await ctx.deps.departments.get(), authority);
    steps.push(...(await updateWecom(ctx, w.userid, toWecom)));
    // What the state remembers as synced is the mailbox's value for the fields it owns.
    Object.assign(plan.desired, toWecom.owned);
  }
  // Both sides enabled: the pair is active, whatever offboarding or gate state was stored.
  const outcome = activeOutcome(m.id);
  const rec = await perform(ctx, s ?? newRecord(ctx, w.userid), steps, outcome);
  // Department groups mirror WeCom's departments: kept only while departments flow from WeCom.
  const groups = authority.departments === 'wecom' ? await moveGroups(ctx, m.id, plan, s) : {};
  const mustWrite =
    force || steps.length > 0 || !s || s.targetId !== m.id || s.status !== 'active' || s.disabledBy !== undefined || s.deleteAfter !== undefined || s.offboardedAt !== undefined;
  await persist(ctx, withOutcome(rec, outcome), plan, { ...groups, refused: Object.keys(refused).length ? refused : undefined }, mustWrite);
  if (!ctx.changed) ctx.count('noop');
}

/**
 * Onboarding: give a member who has none a mailbox account — the soft-deleted one that
 * still carries their userid when there is one (a rehire: same object, same mailbox content,
 * and its address is not free anyway), else a new one. Deleted items are searched for people
 * we have a state record of; should a never-seen person's address be held by a deleted account
 * anyway, the create fails with ObjectConflict, the member stays gated and reconcile says why. With the gate on and no "provisioned"
 * tag configured, the member is disabled FIRST (so nobody works in WeCom without a mailbox)
 * and enabled only once the account exists. The gated state is stored with the intent,
 * before the member is disabled, so no crash can leave a disabled member that a later run
 * does not recognise as the gate's (and never as an offboarding).
 */
async function onboard(ctx: RunContext, userid: string, w: WecomUser, s: StateRecord | undefined, gate: boolean, rehire: boolean): Promise<void> {
  const { wecom, mailbox, config } = ctx.deps;
  const first = await planProfile(ctx, w, undefined, s);
  if (first.outOfScope) {
    // Outside the configured departments: not ours to provision (and never gated).
    ctx.count('outOfScope');
    return;
  }
  const refused = await auditRefusals(ctx, first, s);
  const email = first.desired.email;
  if (!email) {
    await ctx.audit({ action: 'refused', target: 'mailbox', outcome: 'refused', reason: 'cannot create the mailbox: no usable address (address rule or uniqueness)' });
    return;
  }
  const tagId = config.onboarding?.provisionedTagId;
  let record: StateRecord = rehire && s ? { ...s, targetId: undefined, status: 'active', disabledBy: undefined, offboardedAt: undefined, deleteAfter: undefined } : (s ?? newRecord(ctx, userid));
  const steps: Step[] = [];

  // Also when the state already says 'gate' but the member is enabled: an earlier run stored
  // the gate and died before disabling; the gate still holds until the mailbox exists.
  const gating = gate && tagId === undefined && memberState(w) === 'enabled';
  if (gating) {
    record = { ...record, status: 'gated', disabledBy: 'gate' };
    steps.push(step({ action: 'disable', target: 'wecom', changes: DISABLED, reason: 'onboarding gate: mailbox not yet created' }, { wecom: 'disabled' }, () => wecom.updateUser(userid, { enable: 0 })));
  }
  const failed = (what: string) => (err: unknown) =>
    `mailbox ${what} failed${record.disabledBy === 'gate' ? ' (member stays gated)' : ''}: ${errorReason(err)}`;

  // Only a person we have seen before can have a soft-deleted account of ours: for a brand-new
  // one (no state) the lookup would be one more call to the rate-limited side per onboarding
  // for nothing (a bulk import of 10,000 people: 10,000 calls).
  const deleted = s && mailbox.findDeleted ? await mailbox.findDeleted(userid) : undefined;
  let plan = first;
  let account: MailboxAccount | undefined;
  if (deleted) {
    // Linked in the intent's state write: a crash after the restore finds this account ours (decide row 20).
    record = { ...record, targetId: deleted.id };
    plan = await planProfile(ctx, w, { ...deleted, deleted: false }, undefined);
    steps.push(
      step(
        { action: 'restore', target: 'mailbox', ...(deleted.enabled ? {} : { changes: ENABLED }), reason: 'rehire: the soft-deleted account is restored (same id, same mailbox content)' },
        { mailbox: 'enabled', id: deleted.id },
        async () => {
          account = await mailbox.restore!(deleted.id);
          // Always: Graph documents the answer only as a directoryObject, so its accountEnabled is not to be trusted.
          await mailbox.enable(deleted.id);
          account = { ...account, enabled: true };
        },
        failed('restore'),
      ),
    );
    if (needsUpdate(plan)) steps.push(await updateMailbox(ctx, deleted.id, plan));
  } else {
    const input = {
      ...patchFor(first),
      employeeId: userid,
      email,
      displayName: first.desired.name ?? userid,
      enabled: true,
      // Hidden from the address list from the start (protected department); listed is every system's default.
      ...(first.showInAddressList ? {} : { showInAddressList: false }),
    };
    steps.push(
      step(
        { action: 'create', target: 'mailbox', changes: [...auditChanges(first.changes), ...(first.showInAddressList ? [] : [{ field: 'showInAddressList', new: false }])], ...(first.withheldReason ? { reason: first.withheldReason } : {}) },
        { mailbox: 'exists' },
        async () => void (account = await mailbox.create(input)),
        failed('creation'),
      ),
    );
  }
  // The new (or restored) account joins its department groups while the gate lets the member
  // in: two independent writes, side by side (moveGroups is level-driven on the state, so an
  // interrupted run moves them again).
  let groups: { groupIds?: string[] } | undefined;
  const joinGroups = async () => void (groups = await moveGroups(ctx, account?.id ?? deleted?.id ?? `dry-run:${userid}`, plan, undefined));
  if (record.disabledBy === 'gate' && (gating || memberState(w) === 'disabled')) {
    steps.push(
      step({ action: 'enable', target: 'wecom', changes: ENABLED, reason: 'onboarding gate: mailbox created' }, { wecom: 'enabled' }, () =>
        Promise.all([wecom.updateUser(userid, { enable: 1 }), joinGroups()]),
      ),
    );
  } else if (gate && tagId !== undefined && wecom.addTagUsers) {
    steps.push(step({ action: 'update', target: 'wecom', changes: [{ field: 'tag', new: tagId }], reason: 'onboarding: provisioned tag' }, { redo: 'tag', tagId }, () => wecom.addTagUsers!(tagId, [userid])));
  }

  // A new account's id is known only once it exists: a recovered run finds it by employeeId.
  const rec = await perform(ctx, record, steps, activeOutcome(deleted?.id));
  const accountId = account?.id ?? deleted?.id ?? `dry-run:${userid}`;
  // A new or restored account is in no department group (Graph drops a deleted user's memberships).
  if (!groups) await joinGroups();
  await persist(ctx, withOutcome(rec, activeOutcome(accountId)), plan, { ...groups, refused: Object.keys(refused).length ? refused : undefined }, true);
}
