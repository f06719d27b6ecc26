/**
 * The three stores' contracts. DynamoDB implementations live beside this file; the domain
 * (sync engine, receivers, reconcile) depends only on these interfaces.
 */
import type { Subject } from '../sync/model';
import type { SealedValue } from '../security/ports';

// ---------------------------------------------------------------- inbox (dedupe)

export interface InboxEntry {
  /** Dedupe key: SHA-256 of the decrypted message (WeCom) or of the verified body (mailbox). */
  id: string;
  source: 'wecom' | 'mailbox';
  /** e.g. 'change_contact/create_user', 'graph/updated', 'webhook/mailbox.disabled'. */
  kind: string;
  subjects: Subject[];
  /** 'ignored' for valid events we do not act on (still recorded, so retries stop). */
  disposition: 'accepted' | 'ignored';
  receivedAt: string;
}

export interface Inbox {
  /**
   * Record the event. 'new': first time, caller must enqueue then call markEnqueued.
   * 'pending': seen before but a previous attempt died before enqueueing finished: enqueue
   * again (the queue's dedupe id absorbs a double send). 'duplicate': already enqueued.
   */
  record(entry: InboxEntry): Promise<'new' | 'pending' | 'duplicate'>;
  markEnqueued(id: string): Promise<void>;
}

// ---------------------------------------------------------------- state

export type SubjectStatus = 'active' | 'disabled' | 'deleted' | 'gated' | 'pending-delete';

export interface StateRecord {
  subject: Subject;
  /** WeCom userid or department id. */
  wecomId: string;
  provider?: string;
  /** The mailbox account / group id, once known. */
  targetId?: string;
  status: SubjectStatus;
  /** Normalized non-sensitive fields as last synced (name, email, position, departments …). */
  fields: Record<string, unknown>;
  /** Sensitive fields: ciphertext + keyed hash, never clear text. */
  sensitive: Record<string, SealedValue>;
  /**
   * Which side's action put the pair in a disabled state: 'wecom' (member deleted/disabled in
   * WeCom, so we disabled the mailbox) or 'mailbox' (mailbox offboarded, so we disabled the
   * member) or 'gate' (onboarding gate holds the member until the mailbox exists). Lets the
   * worker tell its own echoes and a rehire apart from a new offboarding.
   */
  disabledBy?: 'wecom' | 'mailbox' | 'gate';
  /** Offboarding: when the mailbox was seen offboarded, and when the WeCom member may be deleted. */
  offboardedAt?: string;
  deleteAfter?: string;
  /** Id of the event that last changed this record. */
  lastEventId?: string;
  lastSyncedAt: string;
  /** Optimistic concurrency: incremented by every write; 0 = not yet stored. */
  version: number;
}

export class VersionConflictError extends Error {
  constructor(readonly subject: string) {
    super(`state of ${subject} changed concurrently`);
    this.name = 'VersionConflictError';
  }
}

export interface StateStore {
  get(subject: Subject): Promise<StateRecord | undefined>;
  /**
   * Write `record` if the stored version still equals `record.version` (0 = must not
   * exist). Returns the record with its new version. Throws VersionConflictError.
   */
  put(record: StateRecord): Promise<StateRecord>;
  findByTargetId(provider: string, targetId: string): Promise<StateRecord | undefined>;
  /** Paged scan of all records of a kind ('user' | 'party'). */
  listPage(kind: 'user' | 'party', cursor?: string): Promise<{ records: StateRecord[]; next?: string }>;
  /** Records whose deleteAfter has passed (grace-period deleter). */
  listDueForDeletion(now: Date): Promise<StateRecord[]>;
  /**
   * Uniqueness claim on a keyed hash (mobile, email): the first subject to claim a hash owns
   * it. Returns the owner (== subject when the claim succeeded or already held).
   */
  claimUnique(field: string, hash: string, subject: Subject): Promise<Subject>;
  releaseUnique(field: string, hash: string, subject: Subject): Promise<void>;
}

// ---------------------------------------------------------------- audit

export type AuditAction =
  | 'create'
  | 'update'
  | 'disable'
  | 'enable'
  | 'delete'
  | 'noop'
  | 'skip'
  | 'failed'
  | 'refused';

export interface AuditChange {
  field: string;
  /** Clear for non-sensitive fields, masked (e.g. +86138****8000) for sensitive ones. */
  old?: unknown;
  new?: unknown;
  sensitive?: boolean;
}

export interface AuditInput {
  subject: string;
  /** Which function, event or CLI user: 'sync-worker', 'reconcile', 'cli:alice' … */
  operator: string;
  action: AuditAction;
  /** Where: 'mailbox' | 'wecom' | 'state'. */
  target?: string;
  /** Raw changes: the audit log masks sensitive values itself before writing. */
  changes?: AuditChange[];
  outcome: 'ok' | 'error' | 'refused' | 'dry-run';
  reason?: string;
  eventId?: string;
  at?: Date;
}

export interface AuditRecord extends Required<Pick<AuditInput, 'subject' | 'operator' | 'action' | 'outcome'>> {
  seq: number;
  at: string;
  target?: string;
  changes?: AuditChange[];
  reason?: string;
  eventId?: string;
  /** SHA-256 over the canonical record + prevHash: the tamper-evidence chain per subject. */
  hash: string;
  prevHash: string;
}

export interface AuditLog {
  append(input: AuditInput): Promise<AuditRecord>;
  bySubject(subject: string, opts?: { since?: Date; limit?: number }): Promise<AuditRecord[]>;
  byTime(from: Date, to: Date): Promise<AuditRecord[]>;
  verify(subject: string): Promise<{ ok: boolean; problems: string[] }>;
}
