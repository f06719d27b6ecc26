/**
 * One person, both directions: read the WeCom member, the mailbox account and our state,
 * decide (decide.ts), act, persist, audit. Re-reading everything on every run is what makes
 * duplicates, reordering, crashes and echoes converge instead of corrupting.
 */
import type { MailboxAccount } from '../mailbox/directory';
import type { StateRecord } from '../store/ports';
import type { WecomUser } from '../wecom/contacts';
import { releaseAll, releaseChanged } from './claims';
import type { RunContext } from './context';
import { decide } from './decide';
import { errorReason } from './errors';
import { userSubject } from './model';
import { offboardMember } from './offboarding';
import { auditChanges, patchFor, planProfile, type ProfilePlan } from './profile';
import { newRecord, putState, sameStored, sealValues, splitContact, stableJson } from './state-record';

export async function syncPerson(ctx: RunContext, userid: string): Promise<void> {
  const { wecom, mailbox, state } = ctx.deps;
  const subject = userSubject(userid);
  const [w, s] = await Promise.all([wecom.getUser(userid), state.get(subject)]);
  const { m, unlinked } = await readAccount(ctx, userid, s);
  if (unlinked) {
    await ctx.audit({ action: 'skip', reason: `mailbox account ${unlinked} no longer carries this employeeId: not managed, left alone` });
    return;
  }

  const d = decide({ w, m, s, hint: ctx.message.hint, gate: ctx.deps.config.onboarding?.gate ?? true });
  switch (d.kind) {
    case 'noop':
      return;
    case 'skip':
      await ctx.audit({ action: 'skip', reason: d.reason });
      return;
    case 'disable-mailbox': {
      await ctx.write(() => mailbox.disable(m!.id), undefined);
      await ctx.audit({
        action: 'disable',
        target: 'mailbox',
        changes: [{ field: 'enabled', old: true, new: false }],
        reason: w ? 'member disabled in WeCom' : 'member deleted in WeCom',
      });
      if (!w) await releaseAll(ctx, s);
      await putState(ctx, { ...(s ?? newRecord(ctx, userid)), targetId: m!.id, status: 'disabled', disabledBy: 'wecom' });
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
      await ctx.write(() => mailbox.enable(m!.id), undefined);
      await ctx.audit({
        action: 'enable',
        target: 'mailbox',
        changes: [{ field: 'enabled', old: false, new: true }],
        reason: d.rehire ? 'rehire: member recreated in WeCom' : 'member enabled in WeCom again',
      });
      const base = active(s ?? newRecord(ctx, userid), m!.id);
      await syncProfile(ctx, w!, { ...m!, enabled: true }, base, true);
      return;
    }
    case 'enable-member': {
      await ctx.write(() => wecom.updateUser(userid, { enable: 1 }), undefined);
      await ctx.audit({
        action: 'enable',
        target: 'wecom',
        changes: [{ field: 'enabled', old: false, new: true }],
        reason: d.cause === 'gate' ? 'onboarding gate: mailbox exists' : 'mailbox re-enabled within the grace period',
      });
      await syncProfile(ctx, w!, m!, active(s!, m!.id), true);
      return;
    }
    case 'profile':
      await syncProfile(ctx, w!, m!, s, false);
      return;
  }
}

/** The state record as it is once the pair is active again (offboarding and gate cleared). */
function active(s: StateRecord, targetId: string): StateRecord {
  return { ...s, targetId, status: 'active', disabledBy: undefined, offboardedAt: undefined, deleteAfter: undefined };
}

/**
 * The account linked to the person: by the stored target id, else by employeeId — the
 * second read is what stops a redelivered create (crash after create, before the state
 * write) from creating a second account. An account whose employeeId is not this userid
 * is not this person's: if the stored account lost its link, `unlinked` says so and the
 * person is left alone rather than treated as offboarded.
 */
async function readAccount(ctx: RunContext, userid: string, s: StateRecord | undefined): Promise<{ m?: MailboxAccount; unlinked?: string }> {
  const { mailbox } = ctx.deps;
  const byEmployeeId = async () => {
    const found = await mailbox.findByEmployeeId(userid);
    return found?.employeeId === userid ? found : undefined;
  };
  if (!s?.targetId) return { m: await byEmployeeId() };
  const byId = await mailbox.get(s.targetId);
  if (byId && byId.employeeId === userid) return { m: byId };
  // Gone by id (maybe recreated under another id), or no longer carrying our link.
  const other = await byEmployeeId();
  if (other) return { m: other };
  return byId ? { unlinked: byId.id } : {};
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

/** Department groups: make sure the groups of the new paths exist and move membership. */
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
async function persist(ctx: RunContext, base: StateRecord, plan: ProfilePlan, extra: Record<string, unknown>, force: boolean): Promise<void> {
  const { fields, clear } = splitContact(plan.desired, base.version ? base : undefined);
  Object.assign(fields, extra);
  for (const k of Object.keys(extra)) if (extra[k] === undefined) delete fields[k];
  const sensitive = await sealValues(ctx, clear, base.version ? base : undefined, plan.desired);
  if (!force && base.version && sameStored({ fields, sensitive }, base)) return;
  await releaseChanged(ctx, base.version ? base : undefined, Object.fromEntries(Object.entries(sensitive).map(([k, v]) => [k, v.h])));
  await putState(ctx, { ...base, fields, sensitive });
}

/**
 * Profile sync of an existing, enabled pair: write only the changed fields, in one PATCH.
 * `force` = the state must be written anyway (status changed in this run).
 */
async function syncProfile(ctx: RunContext, w: WecomUser, m: MailboxAccount, s: StateRecord | undefined, force: boolean): Promise<void> {
  const plan = await planProfile(ctx, w, m, s);
  if (plan.outOfScope && !force) {
    // Moved out of scope: its account is left as it is (reconcile reports it), not updated.
    ctx.count('outOfScope');
    return;
  }
  const refused = await auditRefusals(ctx, plan, s);
  if (plan.changes.length) {
    await ctx.write(() => ctx.deps.mailbox.update(m.id, patchFor(plan)), undefined);
    await ctx.audit({ action: 'update', target: 'mailbox', changes: auditChanges(plan.changes), ...(plan.withheldReason ? { reason: plan.withheldReason } : {}) });
  }
  const groups = await moveGroups(ctx, m.id, plan, s);
  // Both sides enabled: the pair is active, whatever offboarding or gate state was stored.
  const base = active(s ?? newRecord(ctx, w.userid), m.id);
  const mustWrite =
    force || !s || s.targetId !== m.id || s.status !== 'active' || s.disabledBy !== undefined || s.deleteAfter !== undefined || s.offboardedAt !== undefined;
  await persist(ctx, base, plan, { ...groups, refused: Object.keys(refused).length ? refused : undefined }, mustWrite);
  if (!ctx.changed) ctx.count('noop');
}

/**
 * Onboarding: create the mailbox account for a member who has none. With the gate on and no
 * "provisioned" tag configured, the member is disabled FIRST (so nobody works in WeCom
 * without a mailbox) and enabled only once the account exists. The gated state is written
 * before the member is disabled, so a crash in between cannot leave a disabled member that
 * no later run recognises as ours to enable.
 */
async function onboard(ctx: RunContext, userid: string, w: WecomUser, s: StateRecord | undefined, gate: boolean, rehire: boolean): Promise<void> {
  const { wecom, mailbox, config } = ctx.deps;
  const plan = await planProfile(ctx, w, undefined, s);
  if (plan.outOfScope) {
    // Outside the configured departments: not ours to provision (and never gated).
    ctx.count('outOfScope');
    return;
  }
  const refused = await auditRefusals(ctx, plan, s);
  const email = plan.desired.email;
  if (!email) {
    await ctx.audit({ action: 'refused', target: 'mailbox', outcome: 'refused', reason: 'cannot create the mailbox: no usable address (address rule or uniqueness)' });
    return;
  }
  const tagId = config.onboarding?.provisionedTagId;
  let record: StateRecord = rehire && s ? { ...s, targetId: undefined, status: 'active', disabledBy: undefined, offboardedAt: undefined, deleteAfter: undefined } : (s ?? newRecord(ctx, userid));

  if (gate && tagId === undefined && w.enable !== 0 && record.disabledBy !== 'gate') {
    record = await putState(ctx, { ...record, status: 'gated', disabledBy: 'gate' });
    await ctx.write(() => wecom.updateUser(userid, { enable: 0 }), undefined);
    await ctx.audit({ action: 'disable', target: 'wecom', changes: [{ field: 'enabled', old: true, new: false }], reason: 'onboarding gate: mailbox not yet created' });
  }

  const input = { ...patchFor(plan), employeeId: userid, email, displayName: plan.desired.name ?? userid, enabled: true };
  let account: MailboxAccount;
  try {
    account = await ctx.write(() => mailbox.create(input), { id: `dry-run:${userid}`, employeeId: userid, enabled: true, email });
  } catch (err) {
    await ctx.audit({
      action: 'failed',
      target: 'mailbox',
      outcome: 'error',
      reason: `mailbox creation failed${record.disabledBy === 'gate' ? ' (member stays gated)' : ''}: ${errorReason(err)}`,
    });
    throw err;
  }
  await ctx.audit({
    action: 'create',
    target: 'mailbox',
    changes: auditChanges(plan.changes),
    ...(plan.withheldReason ? { reason: plan.withheldReason } : {}),
  });
  const groups = await moveGroups(ctx, account.id, plan, undefined);

  if (record.disabledBy === 'gate') {
    await ctx.write(() => wecom.updateUser(userid, { enable: 1 }), undefined);
    await ctx.audit({ action: 'enable', target: 'wecom', changes: [{ field: 'enabled', old: false, new: true }], reason: 'onboarding gate: mailbox created' });
  } else if (gate && tagId !== undefined && wecom.addTagUsers) {
    await ctx.write(() => wecom.addTagUsers!(tagId, [userid]), undefined);
    await ctx.audit({ action: 'update', target: 'wecom', changes: [{ field: 'tag', new: tagId }], reason: 'onboarding: provisioned tag' });
  }
  await persist(ctx, active(record, account.id), plan, { ...groups, refused: Object.keys(refused).length ? refused : undefined }, true);
}
