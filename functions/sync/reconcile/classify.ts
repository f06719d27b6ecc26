/**
 * How reconcile classifies a person, a department, an account: the rules of the single-run
 * reconcile, applied to the compact records a chunked run stores (records.ts). Pure but for
 * the state and audit reads that tell a gated or incomplete member from drift.
 */
import { isSensitiveField, userSubject, type Contact } from '../../core/model';
import { maskEmail, maskPhone, redactText } from '../../core/redact';
import type { WecomDepartment, WecomUser } from '../../wecom/contacts';
import { resolveAuthority } from '../authority';
import type { EngineDeps } from '../context';
import type { DepartmentTree } from '../departments';
import { diffContact } from '../diff';
import { normalizeWecomUser, type Problem } from '../normalize';
import { applyProfile, protectedPath } from '../policy';
import type { Finding } from '../report';
import { comparable, type AccountRecord, type WecomRecord } from './records';

export type Add = (f: Finding) => void;

export type Verdict = 'in-sync' | 'drift' | 'both-disabled' | 'wecom-disabled';

/**
 * The contact as the worker would write it (normalize + profile), the fields the worker
 * refuses as invalid, and whether the account belongs in the global address list (a member
 * of a protected department does not: sync/profile.ts). undefined = out of scope. Unmapped
 * departments are reported per department (department-unmapped), not per person.
 */
export function desiredContact(config: EngineDeps['config'], tree: DepartmentTree, w: WecomUser): { desired: Contact; problems: Problem[]; listed: boolean } | undefined {
  const normalized = normalizeWecomUser(w, { departments: tree, addressRule: config.addressRule, mailDomain: config.mailDomain });
  const { contact, outOfScope } = applyProfile(normalized.contact, config.profile);
  if (outOfScope) return undefined;
  delete contact.enabled;
  const synced = new Set<string>(config.profile.fields);
  const problems = normalized.problems.filter((p) => p.field !== 'departments' && synced.has(p.field));
  return { desired: contact, problems, listed: protectedPath(normalized.contact, config.profile) === undefined };
}

export function unmappedDepartment(d: Pick<WecomDepartment, 'id'>, why: string): Finding {
  return { class: 'department-unmapped', subject: `party:${d.id}`, departmentId: d.id, detail: why };
}

/**
 * Compare one linked account with the WeCom member its employeeId names. `w` is the member
 * in scope (undefined: not in WeCom); `first` is false for a second account carrying the same
 * employeeId.
 */
export function comparePerson(config: EngineDeps['config'], a: AccountRecord, w: WecomRecord | undefined, first: boolean, add: Add): Verdict {
  const userid = a.eid;
  const base = { subject: userSubject(userid), userid, accountId: a.id };
  if (!w) {
    // Already disabled: offboarded, nothing left to do (the mailbox owns deleting it).
    if (!a.en) return 'in-sync';
    if (config.lifecycle.source === 'mailbox') add({ ...base, class: 'missing-in-wecom', detail: 'linked account whose WeCom member is gone: the member is created again' });
    else add({ ...base, class: 'extra-in-mailbox', detail: 'managed account (employeeId) whose userid is not in WeCom' });
    return 'drift';
  }
  if (!first) {
    add({ ...base, class: 'extra-in-mailbox', detail: 'a second mailbox account carries the same employeeId' });
    return 'drift';
  }
  if (w.en && !a.en) {
    add({ ...base, class: 'offboarded-in-mailbox', detail: 'mailbox disabled but WeCom member active' });
    return 'drift';
  }
  if (!w.en && a.en) return 'wecom-disabled';
  if (!w.en) return 'both-disabled';
  const masks = new Map<string, string>();
  const desired = comparable(userid, w.c ?? {}, masks);
  const current = comparable(userid, a.c, masks);
  const shared = new Set<string>(w.sh ?? []);
  const changes: Array<{ field: string; old?: unknown; new?: unknown }> = diffContact(desired, current, resolveAuthority(config)).filter(
    // The mailbox keeps only the main department: compare that one.
    (c) => !(c.field === 'departments' && (desired.departments?.[0] ?? null) === (current.departments?.[0] ?? null)) && !shared.has(c.field),
  );
  // The address-list switch, where the directory reports it (Google; the worker sets it too).
  const listed = !w.hide;
  if (a.gal !== undefined && a.gal !== listed) changes.push({ field: 'showInAddressList', old: a.gal, new: listed });
  if (!changes.length) return 'in-sync';
  add({ ...base, class: 'fields-differ', fields: changes.map((c) => c.field), detail: changes.map((c) => describe(c, masks)).join('; ') });
  return 'drift';
}

/** A change as an operator may read it: sensitive values masked, structured ones summarized. */
export function describe(c: { field: string; old?: unknown; new?: unknown }, masks: ReadonlyMap<string, string> = new Map()): string {
  const show = (v: unknown): string => {
    if (v === undefined) return '?';
    if (v === null) return '∅';
    if (typeof v === 'string' && masks.has(v)) return masks.get(v)!;
    if (c.field === 'mobile' || c.field === 'telephone') return maskPhone(String(v));
    if (c.field === 'email' || c.field === 'personalEmail') return maskEmail(String(v));
    if (isSensitiveField(c.field)) return '(set)';
    if (Array.isArray(v)) return v.join('|');
    return redactText(String(v));
  };
  return `${c.field}: ${show(c.old)} → ${show(c.new)}`;
}

/** Why a member is held by the onboarding gate (`known`, else the last failure audited), or undefined when they are not. */
export async function gateReason(deps: Pick<EngineDeps, 'state' | 'audit'>, userid: string, known?: string): Promise<string | undefined> {
  const s = await deps.state.get(userSubject(userid));
  if (!s || s.disabledBy !== 'gate') return undefined;
  if (known) return known;
  const failed = (await deps.audit.bySubject(userSubject(userid))).filter((a) => a.action === 'failed' && a.reason).at(-1);
  return failed ? redactText(failed.reason!) : 'mailbox not created yet';
}
