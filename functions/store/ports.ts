/**
 * The three stores' contracts. DynamoDB implementations live beside this file; the domain
 * (sync engine, receivers, reconcile) depends only on these interfaces.
 */
import type { Subject } from '../core/model';
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
  /**
   * What each queue message of this entry carries besides its subject (the event's change
   * type, e.g. 'create_user', 'graph.deleted'), so a sweep can rebuild the messages of an
   * entry whose enqueue never finished: one SyncMessage per subject with eventId = id.
   */
  hint?: string;
  /** Who received it: 'wecom-callback', 'graph-notification', 'graph-lifecycle', 'webhook'. */
  operator: string;
}

/**
 * The inbox is a small state machine per event: `pending` (recorded, its messages not yet
 * known to be on the queue) → `enqueued`. Nothing is acknowledged to the sender before
 * `enqueued`; a sender's retry of a `pending` item enqueues again, and a scheduled sweep
 * re-enqueues items left `pending` (a receiver that died between the two writes).
 */
export interface Inbox {
  /**
   * Record the event. 'new': first time, caller must enqueue then call markEnqueued.
   * 'pending': seen before but a previous attempt died before enqueueing finished: enqueue
   * again (the queue's dedupe id absorbs a double send). 'duplicate': already enqueued.
   */
  record(entry: InboxEntry): Promise<'new' | 'pending' | 'duplicate'>;
  markEnqueued(id: string): Promise<void>;
  /** Items still `pending` that were received before `before`, oldest first, at most `limit` (default 100). */
  listPending(before: Date, limit?: number): Promise<InboxEntry[]>;
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
   * member) or 'gate' (onboarding gate holds the member until the mailbox exists) or
   * 'incomplete' (mailbox source: a member created from a mailbox account is held disabled
   * until its record is complete: a name and a department WeCom knows). Lets the
   * worker tell its own echoes and a rehire apart from a new offboarding.
   */
  disabledBy?: 'wecom' | 'mailbox' | 'gate' | 'incomplete';
  /** Offboarding: when the mailbox was seen offboarded, and when the WeCom member may be deleted. */
  offboardedAt?: string;
  deleteAfter?: string;
  /** Id of the event that last changed this record. */
  lastEventId?: string;
  lastSyncedAt: string;
  /**
   * Write-ahead record of the external writes a run is about to make, stored before the
   * first of them and cleared by the run's last state write. A crash leaves it behind: the
   * next run audits the steps that did happen (see sync/intent.ts).
   */
  intent?: Intent;
  /** A destructive action the event-path deletion guard holds for an operator (see sync/guard.ts). */
  held?: HeldAction;
  /** Optimistic concurrency: incremented by every write; 0 = not yet stored. */
  version: number;
}

/** One external write of a run, as it will be audited, and how a later run can see it happened. */
export interface IntentStep {
  action: AuditAction;
  target: 'mailbox' | 'wecom';
  /** Already masked (sensitive values never stored in clear). */
  changes?: AuditChange[];
  reason?: string;
  expect: StepExpectation;
}

/**
 * What the world looks like once a step is done. Field expectations carry keyed hashes of
 * the values written (never the values). `redo`: not observable but idempotent (tags).
 */
export type StepExpectation =
  | { wecom: 'enabled' | 'disabled' | 'absent' | 'exists' }
  | { mailbox: 'exists' | 'enabled' | 'disabled'; id?: string }
  | { mailboxFields: Record<string, string | null> }
  | { wecomFields: Record<string, string | null> }
  | { redo: 'tag'; tagId: number };

export interface Intent {
  eventId: string;
  operator: string;
  at: string;
  steps: IntentStep[];
  /** The state the run writes once every step is done: applied by recovery when all were. */
  outcome?: IntentOutcome;
  /** The run stopped on a failed step (and said so): the intent is a dead run's, to recover at once. */
  ended?: boolean;
}

export interface IntentOutcome {
  set?: Partial<Pick<StateRecord, 'status' | 'disabledBy' | 'targetId' | 'offboardedAt' | 'deleteAfter'>>;
  /** Keys the outcome removes (JSON has no undefined). */
  clear?: Array<'disabledBy' | 'targetId' | 'offboardedAt' | 'deleteAfter'>;
  /** The person's uniqueness claims are released (they left). */
  releaseClaims?: boolean;
}

export interface HeldAction {
  /** What would have been done, e.g. 'disable-mailbox' or 'offboard-member'. */
  action: string;
  target: 'mailbox' | 'wecom';
  reason: string;
  since: string;
  /** The events held for this person, oldest first (bounded). */
  eventIds: string[];
  /** 'held' waits for an operator; 'approved' lets the next run through; 'rejected' keeps the action off until the situation changes. */
  status: 'held' | 'approved' | 'rejected';
  decidedBy?: string;
  decidedAt?: string;
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
  /** People with a held (or approved / rejected, not yet cleared) destructive action, paged. */
  listHeld(cursor?: string): Promise<{ records: StateRecord[]; next?: string }>;
  /** How many people we manage (user records not marked deleted): the base of the guard's percentage. */
  countManaged(): Promise<number>;
  /**
   * The event-path deletion guard's sliding window, shared by every worker: admit `subject`
   * for a destructive action unless `limit` other people already had one within `windowMs`.
   * A subject already in the window is admitted again (one person counts once).
   */
  admitDestructive(subject: Subject, now: Date, windowMs: number, limit: number): Promise<{ admitted: boolean; inWindow: number }>;
}

// ---------------------------------------------------------------- audit

export type AuditAction =
  | 'create'
  | 'update'
  | 'disable'
  | 'enable'
  | 'delete'
  /** A soft-deleted mailbox account brought back (rehire), same id and content. */
  | 'restore'
  | 'noop'
  | 'skip'
  | 'failed'
  | 'refused'
  /** A destructive action stopped by the event-path deletion guard, waiting for an operator. */
  | 'held'
  /** An operator's decision on a held action. */
  | 'approve'
  | 'reject'
  /** A WeCom-side edit of a mailbox-authoritative field, put back to the mailbox's value. */
  | 'revert';

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
  /**
   * The record's link: HMAC-SHA-256 under the audit chain key over the canonical record
   * (prevHash and alg included), see store/audit-chain.ts. Records written before the chain
   * key existed carry a plain SHA-256 here and no `alg`.
   */
  hash: string;
  prevHash: string;
  /** 'hmac-sha256': `hash` is a MAC under the chain key. Absent: not authenticated. */
  alg?: 'hmac-sha256';
}

export interface AuditLog {
  append(input: AuditInput): Promise<AuditRecord>;
  bySubject(subject: string, opts?: { since?: Date; limit?: number }): Promise<AuditRecord[]>;
  byTime(from: Date, to: Date): Promise<AuditRecord[]>;
  /**
   * The subject's trail checked on its own (links, seqs, keys, expiry). The newest records'
   * removal needs the signed digests: functions/audit/verify.ts.
   */
  verify(subject: string): Promise<{ ok: boolean; problems: string[] }>;
}
