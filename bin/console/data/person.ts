/**
 * One person as the console shows them: the WeCom member and the mailbox account as they are
 * now (read live, normalized the way the sync compares them), what the sync last stored, and
 * the audit trail with its verification. Sensitive values — and the mailbox address, which
 * the state seals too — leave this module masked only, by the same masking the audit log
 * uses (`maskChange`), so the console can never show more than the audit does.
 */
import { CONTACT_FIELDS, isSensitiveField, userSubject, type Contact, type ContactField, type Subject } from '../../../functions/core/model';
import { verifyAudit, type AuditVerification, type AuditVerifyDeps } from '../../../functions/audit/verify';
import type { MailboxAccount } from '../../../functions/mailbox/directory';
import { maskChange } from '../../../functions/store/audit-mask';
import type { AuditLog, AuditRecord, StateRecord } from '../../../functions/store/ports';
import type { EngineDeps } from '../../../functions/sync/context';
import { sameValue } from '../../../functions/sync/diff';
import { normalizeMailboxAccount, normalizeWecomUser } from '../../../functions/sync/normalize';
import { SEALED_AT_REST } from '../../../functions/sync/state-record';

/** A value as shown: unknown (the side does not give it), cleared (explicitly empty), or text. */
export type Shown = { kind: 'unknown' } | { kind: 'cleared' } | { kind: 'value'; text: string; masked: boolean };

export interface FieldRow {
  field: ContactField;
  wecom: Shown;
  mailbox: Shown;
  stored: Shown;
  /** Both sides give a value and the values differ. */
  differs: boolean;
}

export interface PersonView {
  subject: Subject;
  userid: string;
  wecom: { present: boolean; enabled?: boolean };
  mailbox: { present: boolean; id?: string; enabled?: boolean; deleted?: boolean };
  rows: FieldRow[];
  /** What normalization refuses in the WeCom data (the sync never sends those values). */
  problems: Array<{ field: string; reason: string }>;
  state?: StateRecord;
  audit: AuditRecord[];
  chain: AuditVerification;
}

const MASKED = new Set<string>(SEALED_AT_REST);

export function shown(field: string, value: unknown): Shown {
  if (value === undefined) return { kind: 'unknown' };
  if (value === null || (Array.isArray(value) && value.length === 0)) return { kind: 'cleared' };
  if (MASKED.has(field) || isSensitiveField(field)) {
    const masked = maskChange({ field, new: typeof value === 'string' ? value : JSON.stringify(value), sensitive: true }).new;
    return { kind: 'value', text: String(masked), masked: true };
  }
  return { kind: 'value', text: Array.isArray(value) ? value.join(', ') : typeof value === 'object' ? JSON.stringify(value) : String(value), masked: false };
}

export async function loadPerson(deps: EngineDeps, audit: AuditLog, verify: AuditVerifyDeps, userid: string): Promise<PersonView> {
  const subject = userSubject(userid);
  const [w, s, tree] = await Promise.all([deps.wecom.getUser(userid), deps.state.get(subject), deps.departments.get()]);
  const m = await linkedAccount(deps, userid, s);
  const normalized = w ? normalizeWecomUser(w, { departments: tree, addressRule: deps.config.addressRule, mailDomain: deps.config.mailDomain }) : undefined;
  const wc: Contact | undefined = normalized?.contact;
  const mc: Contact | undefined = m ? normalizeMailboxAccount(m) : undefined;
  const stored = s ? await storedContact(deps, s) : undefined;

  const rows: FieldRow[] = CONTACT_FIELDS.map((field) => {
    const a = wc?.[field];
    const b = mc?.[field];
    return {
      field,
      wecom: shown(field, a),
      mailbox: shown(field, b),
      stored: shown(field, stored?.[field]),
      differs: a !== undefined && b !== undefined && !sameValue(a, b),
    };
  });
  const [records, chain] = await Promise.all([audit.bySubject(subject), verifyAudit(verify, { subject })]);
  return {
    subject,
    userid,
    wecom: w ? { present: true, enabled: wc?.enabled !== false } : { present: false },
    mailbox: m ? { present: true, id: m.id, enabled: m.enabled, ...(m.deleted ? { deleted: true } : {}) } : { present: false },
    rows,
    problems: normalized?.problems ?? [],
    ...(s ? { state: s } : {}),
    audit: records.slice(-200).reverse(),
    chain,
  };
}

/** The account the sync links to this person: by the stored id while it still carries the link, else by employeeId. */
export async function linkedAccount(deps: EngineDeps, userid: string, s: StateRecord | undefined): Promise<MailboxAccount | undefined> {
  if (s?.targetId) {
    const byId = await deps.mailbox.get(s.targetId);
    if (byId?.employeeId === userid) return byId;
  }
  const found = await deps.mailbox.findByEmployeeId(userid);
  return found?.employeeId === userid ? found : undefined;
}

/** What the state holds, sealed values opened (and masked by the caller through `shown`). */
async function storedContact(deps: EngineDeps, s: StateRecord): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { ...s.fields };
  for (const [field, sealed] of Object.entries(s.sensitive)) {
    try {
      const clear = await deps.cipher.open(sealed, { table: deps.stateTable, subject: s.subject, field });
      out[field] = field === 'extattr' ? JSON.parse(clear) : clear;
    } catch {
      out[field] = '****';
    }
  }
  return out;
}
