/**
 * What one run of the engine over one subject carries: its dependencies, the message that
 * caused it, and the two things every write must do — respect dry run, and leave an audit
 * record. Every write to WeCom, the mailbox or the state goes through `write()`, so a dry
 * run (reconcile's simulate mode) cannot touch anything by accident: it records what it
 * would have done, with outcome 'dry-run'.
 */
import type { RuntimeConfig } from '../config/runtime';
import type { MailboxDirectory } from '../mailbox/directory';
import type { ChangeFeed } from '../mailbox/provider';
import type { SyncMessage } from '../queue/messages';
import type { FieldCipher } from '../security/ports';
import { redactText } from '../core/redact';
import type { AuditAction, AuditChange, AuditLog, StateRecord, StateStore } from '../store/ports';
import type { WecomContacts } from '../wecom/contacts';
import type { CachedDepartmentTree } from './departments';
import type { Subject } from '../core/model';

export interface EngineMetrics {
  count(name: string, n?: number): void;
}

export interface EngineDeps {
  wecom: WecomContacts;
  mailbox: MailboxDirectory;
  state: StateStore;
  audit: AuditLog;
  cipher: FieldCipher;
  departments: CachedDepartmentTree;
  config: RuntimeConfig;
  now: () => Date;
  metrics?: EngineMetrics;
  /** Name of the state table: binds sealed values to their table (AAD). */
  stateTable: string;
  /** Enqueue follow-up work (department moves re-sync their members). */
  enqueue?: (msgs: SyncMessage[]) => Promise<void>;
  /** Simulate: read both sides, decide, audit with outcome 'dry-run', write nothing. */
  dryRun?: boolean;
  /**
   * A message on `mailbox:<provider>:subscription` (a lifecycle notice of the push channel):
   * the provider's hook, `connection.feed.onLifecycle` (mailbox/provider.ts), which renews,
   * recreates or catches up as its system needs. The engine knows no provider.
   */
  onSubscriptionLifecycle?: ChangeFeed['onLifecycle'];
  /** The webhook's address key (HMAC under the webhook secret), to resolve `mailbox:address:<key>` subjects. */
  addressKey?: (email: string) => string;
}

export interface SyncOutcome {
  subject: Subject;
  /** The person the subject resolved to, when it did. */
  resolved?: Subject;
  /** Every action audited in this run, in order (noop when nothing was done). */
  actions: AuditAction[];
  /** Whether anything was (or, in dry run, would have been) written to either side or the state. */
  changed: boolean;
  /** Field-level changes written to the mailbox (values as audited: sensitive ones are masked by the audit log). */
  changes?: AuditChange[];
  /** Why the subject was skipped or refused, when it was. */
  reason?: string;
}

export interface AuditEntry {
  action: AuditAction;
  target?: 'mailbox' | 'wecom' | 'state';
  changes?: AuditChange[];
  reason?: string;
  /** Default 'ok' (or 'dry-run' in a dry run); 'refused' / 'error' for those. */
  outcome?: 'ok' | 'error' | 'refused';
  /** Audit under another subject than the run's (e.g. the mailbox account of a skipped event). */
  subject?: string;
  /** Who and which event, when not the run's own (a step recovered from an interrupted run). */
  operator?: string;
  eventId?: string;
}

export class RunContext {
  readonly actions: AuditAction[] = [];
  readonly changes: AuditChange[] = [];
  changed = false;
  reason?: string;
  /** The state record as this run last wrote it (undefined until it writes one). */
  lastState?: StateRecord;
  /**
   * The person's held action is decided (approved, or moot): every state write of this run
   * drops it, and the run writes the state once more at the end if it wrote none.
   */
  releaseHeld = false;

  constructor(
    readonly deps: EngineDeps,
    readonly message: SyncMessage,
    readonly subject: Subject,
  ) {}

  get dryRun(): boolean {
    return this.deps.dryRun === true;
  }

  count(name: string, n = 1): void {
    this.deps.metrics?.count(name, n);
  }

  /** Perform a side effect unless in dry run; either way it counts as a change. */
  async write<T>(fn: () => Promise<T>, dryValue: T): Promise<T> {
    this.changed = true;
    if (this.dryRun) return dryValue;
    return fn();
  }

  /** Append an audit record and wait for it (after any still being written in the background). */
  async audit(entry: AuditEntry): Promise<void> {
    await this.queueAudit(entry);
  }

  /**
   * Append an audit record without waiting: the run goes on to its next write while the
   * record is written (records keep their order: one chain per run). Used for the steps of a
   * write-ahead intent — if the process dies before a record lands, the next run audits that
   * step from the intent. `flushAudit()` (every outcome write calls it) waits for the chain
   * and surfaces a failure.
   */
  auditInBackground(entry: AuditEntry): void {
    void this.queueAudit(entry).catch(() => undefined); // reported by flushAudit
  }

  async flushAudit(): Promise<void> {
    await this.auditChain;
  }

  private auditChain: Promise<void> = Promise.resolve();

  private queueAudit(entry: AuditEntry): Promise<void> {
    this.actions.push(entry.action);
    if (entry.changes) this.changes.push(...entry.changes);
    if (entry.reason && (entry.action === 'skip' || entry.action === 'refused' || entry.action === 'failed')) this.reason ??= entry.reason;
    this.count(entry.action);
    const input = {
      subject: entry.subject ?? this.subject,
      operator: entry.operator ?? this.message.operator,
      action: entry.action,
      ...(entry.target ? { target: entry.target } : {}),
      ...(entry.changes && entry.changes.length ? { changes: entry.changes } : {}),
      outcome: this.dryRun ? ('dry-run' as const) : (entry.outcome ?? 'ok'),
      // Reasons can quote provider error text: never let a phone or address through.
      ...(entry.reason ? { reason: redactText(entry.reason) } : {}),
      eventId: entry.eventId ?? this.message.eventId,
      at: this.deps.now(),
    };
    // A failed append breaks the chain: nothing after it is appended, flushAudit() throws.
    this.auditChain = this.auditChain.then(() => this.deps.audit.append(input)).then(() => undefined);
    return this.auditChain;
  }

  outcome(): SyncOutcome {
    return {
      subject: this.message.subject,
      ...(this.subject !== this.message.subject ? { resolved: this.subject } : {}),
      actions: this.actions.length ? [...this.actions] : ['noop'],
      changed: this.changed,
      ...(this.changes.length ? { changes: [...this.changes] } : {}),
      ...(this.reason ? { reason: this.reason } : {}),
    };
  }
}
