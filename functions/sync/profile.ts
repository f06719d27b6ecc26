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
import { diffContact } from './diff';
import { toMailboxInput } from './mapping';
import { isSensitiveField, type Contact } from './model';
import { normalizeMailboxAccount, normalizeWecomUser } from './normalize';
import { applyProfile } from './policy';
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

export async function planProfile(
  ctx: RunContext,
  w: WecomUser,
  m: MailboxAccount | undefined,
  s: StateRecord | undefined,
): Promise<ProfilePlan> {
  const { config } = ctx.deps;
  const tree = await ctx.deps.departments.get();
  const normalized = normalizeWecomUser(w, { departments: tree, addressRule: config.addressRule, mailDomain: config.mailDomain });
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
  const diff = diffContact(desired, current, config.profile.authority ?? {}) as FieldChange[];

  const changes: FieldChange[] = [];
  for (const change of diff) {
    const value = canonicalValue(change.new);
    if (isUniqueField(change.field) && value !== undefined) {
      const owner = await claim(ctx, change.field, value);
      if (owner) {
        refusals.push({ field: change.field, reason: `${change.field} already belongs to ${owner}` });
        (desired as unknown as Record<string, unknown>)[change.field] = undefined;
        continue;
      }
    }
    changes.push(change);
  }
  return { desired, changes, refusals, ...(withheldReason ? { withheldReason } : {}), ...(applied.outOfScope ? { outOfScope: true } : {}) };
}

/** The PATCH for the changed fields only. */
export function patchFor(plan: ProfilePlan): MailboxAccountInput {
  return toMailboxInput(plan.desired, plan.changes as never);
}
