/**
 * The mailbox → WeCom direction: what WeCom should hold for the fields the mailbox owns
 * (authority 'mailbox', the default with lifecycle.source 'mailbox'), compared with what it
 * holds. A difference is an `update` when the mailbox changed since we last synced, and a
 * `revert` when WeCom was edited (its value is not what we last wrote): "AD is authoritative"
 * means a WeCom-side edit is put back.
 *
 * The mailbox keeps only a main department: WeCom's main department follows it, the member's
 * other departments stay. A member is complete — may be enabled — with a name and a main
 * department WeCom knows (WeCom itself needs a mobile or an email: the mailbox address is
 * always there).
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import type { MailboxAccount } from '../mailbox/directory';
import type { StateRecord } from '../store/ports';
import type { WecomUser, WecomUserInput } from '../wecom/contacts';
import type { ContactField } from '../core/model';
import type { Contact } from '../core/model';
import type { Authority } from './authority';
import type { RunContext } from './context';
import type { DepartmentTree } from './departments';
import { normalizeMailboxAccount, normalizeWecomUser } from './normalize';
import { canonicalValue } from './state-record';

/** WeCom's root department (the company): a member's placeholder until its department exists. */
const ROOT_DEPARTMENT = 1;

/** Fields the mailbox can give WeCom (the account has no personal email, address or extattr). */
const FROM_MAILBOX: readonly ContactField[] = ['name', 'email', 'mobile', 'telephone', 'position', 'departments'];

/** WeCom's phone form: "+86 13800138000" (country code, space, national number). */
export function wecomPhone(e164: string): string | undefined {
  const p = parsePhoneNumberFromString(e164);
  return p?.isValid() ? `+${p.countryCallingCode} ${p.nationalNumber}` : undefined;
}

export interface WecomChange {
  field: ContactField;
  old?: unknown;
  new: unknown;
  /** WeCom was edited: its value is not the one we last synced. */
  revert: boolean;
  /** This field in user/update's shape. */
  patch: Partial<Omit<WecomUser, 'userid'>>;
}

export interface ToWecomPlan {
  /** The mailbox's values of the fields it owns (canonical). */
  owned: Partial<Contact>;
  changes: WecomChange[];
  /** user/update body for `changes` (null clears are sent as ""). */
  patch: Partial<Omit<WecomUser, 'userid'>>;
  /** Why the member may not be enabled yet, when it may not. */
  missing: string[];
  /** The WeCom department id of the mailbox's main department path, when WeCom has it. */
  mainDepartment?: number;
}

/** The value we last synced for a field, as a keyed hash (comparable whether or not it is sealed). */
async function lastSynced(ctx: RunContext, s: StateRecord | undefined, field: string): Promise<string | null | undefined> {
  if (!s) return undefined;
  const sealed = s.sensitive[field];
  if (sealed) return sealed.h;
  if (!(field in s.fields)) return undefined;
  const v = field === 'departments' && Array.isArray(s.fields[field]) ? (s.fields[field] as string[])[0] : s.fields[field];
  const text = canonicalValue(v);
  return text === undefined ? null : ctx.deps.cipher.hash(field, text);
}

async function hashOf(ctx: RunContext, field: string, value: unknown): Promise<string | null> {
  const v = field === 'departments' && Array.isArray(value) ? value[0] : value;
  const text = canonicalValue(v);
  return text === undefined ? null : ctx.deps.cipher.hash(field, text);
}

export async function planToWecom(
  ctx: RunContext,
  m: MailboxAccount,
  w: WecomUser | undefined,
  s: StateRecord | undefined,
  tree: DepartmentTree,
  authority: Authority,
): Promise<ToWecomPlan> {
  const { config } = ctx.deps;
  const fromMailbox = normalizeMailboxAccount(m);
  const current = w ? normalizeWecomUser(w, { departments: tree, addressRule: config.addressRule, mailDomain: config.mailDomain }).contact : ({} as Contact);
  const owned: Partial<Contact> = {};
  const changes: WecomChange[] = [];
  const patch: Partial<Omit<WecomUser, 'userid'>> = {};
  const missing: string[] = [];

  const mainPath = fromMailbox.departments?.[0];
  const mainDepartment = mainPath ? tree.idOfPath(mainPath) : undefined;
  if (!fromMailbox.name) missing.push('name');
  if (!mainPath) missing.push('departments (the mailbox account has no department)');
  else if (mainDepartment === undefined) missing.push(`departments ('${mainPath}' is not a WeCom department)`);

  for (const field of FROM_MAILBOX) {
    if (authority[field] !== 'mailbox') continue;
    const want = (fromMailbox as unknown as Record<string, unknown>)[field];
    if (want === undefined) continue; // the mailbox did not say: unknown, never a clear
    (owned as Record<string, unknown>)[field] = want;
    const have = (current as unknown as Record<string, unknown>)[field];
    const same = field === 'departments' ? (have as string[] | undefined)?.[0] === (want as string[] | null)?.[0] : canonicalValue(have) === canonicalValue(want);
    if (same) continue;
    if (field === 'departments' && mainDepartment === undefined) continue; // reported in `missing`
    const before = await lastSynced(ctx, s, field);
    const revert = w !== undefined && before !== undefined && before !== (await hashOf(ctx, field, have));
    const fieldPatch = wecomField(field, want, w, mainDepartment);
    changes.push({ field, ...(have !== undefined ? { old: field === 'departments' ? (have as string[] | undefined)?.[0] : have } : {}), new: field === 'departments' ? mainPath : want, revert, patch: fieldPatch });
    Object.assign(patch, fieldPatch);
  }
  return { owned, changes, patch, missing, ...(mainDepartment !== undefined ? { mainDepartment } : {}) };
}

/** One field in user/update's shape. */
function wecomField(field: ContactField, value: unknown, w: WecomUser | undefined, mainDepartment: number | undefined): Partial<Omit<WecomUser, 'userid'>> {
  switch (field) {
    case 'name':
      return { name: String(value ?? '') };
    case 'position':
      return { position: value === null ? '' : String(value) };
    case 'email':
      return { email: value === null ? '' : String(value) };
    case 'mobile':
    case 'telephone':
      return { [field]: value === null ? '' : (wecomPhone(String(value)) ?? String(value)) };
    case 'departments': {
      // Other departments a WeCom admin added stay; the root (where a member waits for its
      // department, see newMember) does not.
      const others = (w?.department ?? []).filter((d) => d !== mainDepartment && d !== ROOT_DEPARTMENT);
      return { department: [mainDepartment!, ...others], main_department: mainDepartment! };
    }
    default:
      return {};
  }
}

/** user/create's body for a member born in the mailbox: disabled until the record is complete. */
export function newMember(userid: string, m: MailboxAccount, plan: ToWecomPlan): WecomUserInput {
  const c = normalizeMailboxAccount(m);
  const input: WecomUserInput = {
    userid,
    name: c.name ?? userid,
    // The root until the department is known (WeCom requires one); moved when it is.
    department: [plan.mainDepartment ?? ROOT_DEPARTMENT],
    main_department: plan.mainDepartment ?? ROOT_DEPARTMENT,
    enable: 0,
  };
  if (c.email) input.email = c.email;
  if (c.position) input.position = c.position;
  const mobile = c.mobile ? wecomPhone(c.mobile) : undefined;
  if (mobile) input.mobile = mobile;
  const phone = c.telephone ? wecomPhone(c.telephone) : undefined;
  if (phone) input.telephone = phone;
  return input;
}
