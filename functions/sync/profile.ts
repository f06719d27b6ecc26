/**
 * What the mailbox should hold for a person, and how that differs from what it holds:
 * normalize the WeCom user → apply the sync profile (withheld fields never leave) → diff
 * against the CURRENT mailbox values → refuse what is invalid or not unique. The result is
 * the minimal change set; the caller writes only those keys.
 */
import type { MailboxAccount, MailboxAccountInput } from '../mailbox/directory';
import type { StateRecord } from '../store/ports';
import type { AuditChange } from '../store/ports';
import type { WecomUser } from '../wecom/contacts';
import { claim, isUniqueField } from './claims';
import type { RunContext } from './context';
import { resolveAuthority } from './authority';
import { diffContact } from './diff';
import { toMailboxInput } from './mapping';
import { isSensitiveField, type Contact } from '../core/model';
import { normalizeMailboxAccount, normalizeWecomUser } from './normalize';
import { applyProfile, protectedPath } from './policy';
import type { DepartmentTree } from './departments';
import { canonicalValue } from './state-record';

export interface FieldChange {
  field: string;
  old?: unknown;
  new?: unknown;
}

export interface Refusal {
  field: string;
  reason: string;
}

export interface ProfilePlan {
  /** The contact as the mailbox should have it (post policy, refused fields removed → unknown). */
  desired: Contact;
  /** Changes to write (refused ones removed). */
  changes: FieldChange[];
  refusals: Refusal[];
  /** Reason to put on the create/update audit when sensitive fields were withheld for cross-border. */
  withheldReason?: string;
  /** The person is outside the configured sync scope (profile.scopeDepartments): nothing is provisioned. */
  outOfScope?: boolean;
  /**
   * Listed in the organisation's address list: false for members of a protected department
   * ("finance and executives visible only to designated people"). Sent where the system has
   * the switch (Google: includeInGlobalAddressList), on create when false, and on update when
   * the account reports a different value (`addressListChange`); other systems ignore it.
   */
  showInAddressList: boolean;
  addressListChange?: { old: boolean; new: boolean };
}

/** Sensitive in the audit sense: personal data plus the address (masked by the audit log). */
export function auditChanges(changes: FieldChange[]): AuditChange[] {
  return changes.map((c) => ({
    field: c.field,
    ...(c.old !== undefined ? { old: c.old } : {}),
    ...(c.new !== undefined ? { new: c.new } : {}),
    ...(isSensitiveField(c.field) || c.field === 'email' ? { sensitive: true } : {}),
  }));
}

/**
 * The mailbox keeps only the main department; the state remembers every path we synced.
 * Trust the stored list while the mailbox's main department still matches it.
 */
function currentContact(m: MailboxAccount | undefined, s: StateRecord | undefined, userid: string): Contact {
  if (!m) return { userid };
  const current = { ...normalizeMailboxAccount(m), userid };
  const stored = s?.fields.departments;
  if (Array.isArray(stored) && stored.length && (current.departments?.[0] ?? null) === stored[0]) current.departments = stored as string[];
  return current;
}

/** A tree copy younger than this is not reloaded again for a disagreement (one that never resolves must not cost a call per run). */
const TREE_REFRESH_MIN_AGE_MS = 5_000;

/**
 * Signs that the cached department tree is older than the target: the mailbox (or what we
 * last stored) holds a department path the tree does not know, or a different main path for
 * the member's main department than the tree computes.
 */
function treeLooksStale(tree: DepartmentTree, desired: Contact, m: MailboxAccount | undefined, s: StateRecord | undefined): boolean {
  const stored = Array.isArray(s?.fields.departments) ? (s!.fields.departments as string[]) : [];
  const targetPaths = [...(m?.department ? [m.department] : []), ...stored];
  if (targetPaths.some((p) => !tree.hasPath(p))) return true;
  const main = desired.departments?.[0];
  return m?.department != null && main !== undefined && main !== m.department;
}

export async function planProfile(
  ctx: RunContext,
  w: WecomUser,
  m: MailboxAccount | undefined,
  s: StateRecord | undefined,
): Promise<ProfilePlan> {
  const { config } = ctx.deps;
  let tree = await ctx.deps.departments.get();
  let normalized = normalizeWecomUser(w, { departments: tree, addressRule: config.addressRule, mailDomain: config.mailDomain });
  if (treeLooksStale(tree, normalized.contact, m, s)) {
    // A department renamed in WeCom sends no event: another process (a reconcile repair) may
    // already have written the new path, whose echo brings us here with an old copy. Decide
    // on a fresh tree, or we would write the old path back.
    tree = await ctx.deps.departments.fresh(TREE_REFRESH_MIN_AGE_MS);
    normalized = normalizeWecomUser(w, { departments: tree, addressRule: config.addressRule, mailDomain: config.mailDomain });
  }
  const refusals: Refusal[] = normalized.problems.map((p) => ({ field: p.field, reason: p.reason }));
  const applied = applyProfile(normalized.contact, config.profile) as ReturnType<typeof applyProfile> & { outOfScope?: boolean };
  const { contact: desired, withheld } = applied;
  delete desired.enabled; // lifecycle is the decision table's business, not the profile's

  const crossBorder = withheld.filter((x) => /cross-border/i.test(x.reason) && isSensitiveField(x.field)).map((x) => x.field);
  const withheldReason = crossBorder.length
    ? `withheld for cross-border transfer (not approved): ${[...new Set(crossBorder)].join(', ')}`
    : undefined;

  const current = currentContact(m, s, w.userid);
  delete current.enabled;
  const diff = diffContact(desired, current, resolveAuthority(config)) as FieldChange[];

  // Uniqueness claims (mobile, email) are independent single-item writes: made side by side.
  const owners = await Promise.all(
    diff.map((change) => {
      const value = canonicalValue(change.new);
      return isUniqueField(change.field) && value !== undefined ? claim(ctx, change.field, value) : undefined;
    }),
  );
  const changes: FieldChange[] = [];
  diff.forEach((change, i) => {
    const owner = owners[i];
    if (owner) {
      refusals.push({ field: change.field, reason: `${change.field} already belongs to ${owner}` });
      (desired as unknown as Record<string, unknown>)[change.field] = undefined;
      return;
    }
    changes.push(change);
  });
  const showInAddressList = protectedPath(normalized.contact, config.profile) === undefined;
  const listed = m?.showInAddressList;
  return {
    desired,
    changes,
    refusals,
    showInAddressList,
    ...(listed !== undefined && listed !== showInAddressList ? { addressListChange: { old: listed, new: showInAddressList } } : {}),
    ...(withheldReason ? { withheldReason } : {}),
    ...(applied.outOfScope ? { outOfScope: true } : {}),
  };
}

/** Anything to write to the account: changed fields, or its address-list visibility. */
export function needsUpdate(plan: ProfilePlan): boolean {
  return plan.changes.length > 0 || plan.addressListChange !== undefined;
}

/** The update's audit changes: the fields, and the visibility when it changes (not personal data). */
export function updateAuditChanges(plan: ProfilePlan): AuditChange[] {
  const list = plan.addressListChange;
  return [...auditChanges(plan.changes), ...(list ? [{ field: 'showInAddressList', old: list.old, new: list.new }] : [])];
}

/** The PATCH for the changed fields only. */
export function patchFor(plan: ProfilePlan): MailboxAccountInput {
  const input = toMailboxInput(plan.desired, plan.changes as never);
  if (plan.addressListChange) input.showInAddressList = plan.addressListChange.new;
  return input;
}
