/**
 * The MailboxDirectory port: what the sync needs from any mailbox system. One adapter per
 * provider (Graph first). The adapter owns the provider's wire format; this port speaks
 * canonical values (E.164 phones, lower-case addresses, department paths).
 *
 * Ownership rule: the product only touches accounts whose immutable link attribute
 * (Graph `employeeId`) holds a WeCom userid. An account without it is not ours.
 */
import { ProviderError } from '../core/errors';

export interface MailboxAccount {
  /** Provider id (Graph user id). */
  id: string;
  /** The WeCom userid this account is linked to; undefined → not managed by us. */
  employeeId?: string;
  enabled: boolean;
  /** Soft-deleted (Graph deletedItems) or gone. */
  deleted?: boolean;
  displayName?: string | null;
  /** Primary address / UPN, lower-case. */
  email?: string | null;
  mailNickname?: string | null;
  mobile?: string | null;
  telephone?: string | null;
  jobTitle?: string | null;
  /** Main department path, as stored in the provider's department attribute. */
  department?: string | null;
}

/** What the sync writes. Absent key = leave alone; `null` = clear. */
export interface MailboxAccountInput {
  employeeId?: string;
  enabled?: boolean;
  displayName?: string | null;
  email?: string | null;
  mailNickname?: string | null;
  mobile?: string | null;
  telephone?: string | null;
  jobTitle?: string | null;
  department?: string | null;
}

export interface MailboxPage {
  accounts: MailboxAccount[];
  next?: string;
}

export interface MailboxDirectory {
  readonly provider: string;
  findByEmployeeId(userid: string): Promise<MailboxAccount | undefined>;
  get(id: string): Promise<MailboxAccount | undefined>;
  create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }): Promise<MailboxAccount>;
  /** Partial update: only the keys present are sent. */
  update(id: string, patch: MailboxAccountInput): Promise<void>;
  disable(id: string): Promise<void>;
  enable(id: string): Promise<void>;
  delete(id: string): Promise<void>;
  /** Paged listing of every account (managed or not). */
  listPage(cursor?: string): Promise<MailboxPage>;
  /** Department → group: ensure a group exists for the path and return its id. */
  ensureGroup(path: string): Promise<string>;
  /** Move the account between department groups (remove from `from`, add to `to`). */
  setGroupMembership(accountId: string, from: string[], to: string[]): Promise<void>;
  /**
   * The soft-deleted account linked to `userid` (employeeId) that the provider can still
   * restore (Graph: directory/deletedItems, kept 30 days), with `deleted: true`; the most
   * recently deleted one when there are several; undefined when none. Providers without a
   * recycle bin leave it out.
   */
  findDeleted?(userid: string): Promise<MailboxAccount | undefined>;
  /** Restore a soft-deleted account: same id, same mailbox content. Returns it as it now is. */
  restore?(id: string): Promise<MailboxAccount>;
}

/** Errors mailbox adapters throw (a ProviderError: the engine decides retry vs park without knowing the provider). */
export class MailboxError extends ProviderError {
  declare readonly code?: string;
  constructor(message: string, retryable: boolean, code?: string, retryAfterMs?: number) {
    super(message, retryable, code, retryAfterMs);
    this.name = 'MailboxError';
  }
}
