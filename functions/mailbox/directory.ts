/**
 * The MailboxDirectory port: what the sync engine needs from any mailbox system, and the
 * contract every adapter keeps (docs/mailbox-adapters.md has the same rules with each
 * system's column; test/mailbox/conformance.ts checks them against every adapter).
 *
 * The port speaks canonical values only: E.164 phones ('+8613800138000'), lower-case
 * addresses, department paths ('技术部/研发组'). Each adapter owns its system's wire format
 * and converts both ways, so the engine never learns one.
 *
 * Identity. An account is OURS when its immutable link attribute holds a WeCom userid
 * (Graph `employeeId`; Google `externalIds[type=organization]`). An account without
 * a link is never written. Two accounts with one link is an error (`ambiguous`), never a
 * guess: touching either could hit the wrong person.
 *
 * Writes. `update` is partial: an absent key is left alone, `null` clears, and only the keys
 * present go on the wire (the engine already diffed). disable / enable / delete and the group
 * calls are idempotent: doing one twice is success, so a redelivered message or a retry after
 * a lost answer converges instead of failing. `delete` is the system's soft delete where it
 * has one; an account already gone counts as deleted.
 *
 * Errors. Adapters throw `MailboxError`: `retryable` decides retry vs park, `kind` says what
 * happened in the same words for every system, `code` keeps the system's own code for
 * operators, `retryAfterMs` carries the system's Retry-After. A message names the route and
 * the code, never a value we sent: systems echo addresses and phone numbers in theirs.
 */
import { ProviderError } from '../core/errors';

export interface MailboxAccount {
  /** The system's own id of the account (Graph user id). Stable across disable and soft delete. */
  id: string;
  /** The WeCom userid this account is linked to; undefined → not managed by us. */
  employeeId?: string;
  enabled: boolean;
  /** Soft-deleted (in the recycle bin: Graph deletedItems). A deleted account also reads `enabled: false`. */
  deleted?: boolean;
  displayName?: string | null;
  /** Primary address / sign-in name, lower-case. */
  email?: string | null;
  mailNickname?: string | null;
  /** E.164, whatever format an administrator typed it in. */
  mobile?: string | null;
  /** E.164 when it parses as an international number; otherwise as stored. */
  telephone?: string | null;
  jobTitle?: string | null;
  /** Main department path, as stored in the system's department attribute. */
  department?: string | null;
  /**
   * What kind of account it is, when the system says: a person's own ('member'), a guest,
   * or a shared / resource mailbox. Only members are people to create in WeCom (mailbox source).
   */
  kind?: 'member' | 'guest' | 'shared';
  /** Listed in the organisation's address list, where the system says (Google: includeInGlobalAddressList). */
  showInAddressList?: boolean;
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
  /**
   * Listed in the organisation's address list (the global address list / directory sharing).
   * Optional, and only for systems that have the switch (Google: `includeInGlobalAddressList`;
   * others ignore it): the engine sends `false` for members of protected departments (profile
   * `protectedDepartments`, "visible only to designated people") and `true` when one leaves
   * them. Absent = leave alone.
   */
  showInAddressList?: boolean;
}

export interface MailboxPage {
  accounts: MailboxAccount[];
  /** Opaque: pass it back to get the next page; absent on the last page. */
  next?: string;
}

export interface MailboxDirectory {
  /** The registry name of the adapter (mailbox/providers.ts): also the `provider` of state records and of `mailbox:<provider>:<id>` subjects. */
  readonly provider: string;
  /**
   * true: the directory is read, never written (LDAP without `ldap.writes`: AD as the source
   * of truth under a read-only bind account). Every write would be refused (`invalid`,
   * ReadOnly), so the engine plans none: it refuses, audited, what would need one.
   */
  readonly readOnly?: boolean;
  /** The live (not deleted) account linked to `userid`; undefined when none. Throws `ambiguous` when two are. The match is exact. */
  findByEmployeeId(userid: string): Promise<MailboxAccount | undefined>;
  /** By the system's id. A soft-deleted account comes back with `deleted: true` where the system can still see it; gone → undefined. */
  get(id: string): Promise<MailboxAccount | undefined>;
  /**
   * A new account linked to `employeeId`. The address's local part becomes the sign-in name on
   * the tenant's domain; an initial password (if the system needs one) is random, never
   * returned or logged. An address still held by a soft-deleted account is a `conflict`
   * (restore that one instead).
   */
  create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }): Promise<MailboxAccount>;
  /**
   * Partial update: only the keys present are sent; `null` clears, except `displayName`, which
   * every system requires (`invalid`). `not-found` when the account is not live.
   */
  update(id: string, patch: MailboxAccountInput): Promise<void>;
  /** Idempotent. `not-found` when the account is not live. */
  disable(id: string): Promise<void>;
  /** Idempotent. `not-found` when the account is not live. */
  enable(id: string): Promise<void>;
  /** Soft delete where the system has one. Idempotent: already deleted or gone is success. */
  delete(id: string): Promise<void>;
  /** Paged listing of every live account, managed or not; each appears once across the pages. */
  listPage(cursor?: string): Promise<MailboxPage>;
  /**
   * Department → group: the group for `path`, created when missing, found again by a stable
   * key of ours (never by its display name, which an administrator may reuse). Idempotent.
   */
  ensureGroup(path: string): Promise<string>;
  /**
   * Move the account between department groups: remove from `from`, add to `to` (a group in
   * both stays). Idempotent: adding a member or removing a non-member is success.
   */
  setGroupMembership(accountId: string, from: string[], to: string[]): Promise<void>;
  /**
   * The soft-deleted account linked to `userid` that the system can still restore (Graph:
   * directory/deletedItems, kept 30 days), with `deleted: true`; the most recently deleted one
   * when there are several; undefined when none. Systems without a recycle bin leave it out
   * (capability `restore: false`).
   */
  findDeleted?(userid: string): Promise<MailboxAccount | undefined>;
  /**
   * Restore a soft-deleted account: same id, same mailbox content, live again. Idempotent: an
   * account already restored comes back as it is. `not-found` when it is neither deleted nor
   * live; `conflict` while a live account holds its address.
   */
  restore?(id: string): Promise<MailboxAccount>;
  /** The groups the account is a direct member of (lifecycle.mailboxScope.groupIds); systems without groups leave it out. */
  memberOf?(accountId: string): Promise<string[]>;
}

/**
 * What went wrong, in the same words for every system (the system's own code stays in `code`):
 * - `throttled`: too many requests; retry after `retryAfterMs` (always retryable);
 * - `unavailable`: the system or the network failed; retryable;
 * - `auth`: credentials refused after one token refresh (an expired token is refreshed by the adapter, never surfaced);
 * - `not-found`: the account or group is not there (not for `delete`, where gone is success);
 * - `conflict`: an address or name is held by another object (for a rehire: a soft-deleted account);
 * - `ambiguous`: two accounts carry one link;
 * - `invalid`: the system refused a value (or the adapter did before sending it);
 * - `unexpected`: anything else the adapter cannot classify.
 */
export type MailboxErrorKind = 'throttled' | 'unavailable' | 'auth' | 'not-found' | 'conflict' | 'ambiguous' | 'invalid' | 'unexpected';

/** Errors mailbox adapters throw (a ProviderError: the engine decides retry vs park without knowing the provider). */
export class MailboxError extends ProviderError {
  declare readonly code?: string;
  readonly kind: MailboxErrorKind;
  constructor(message: string, retryable: boolean, code?: string, retryAfterMs?: number, kind?: MailboxErrorKind) {
    super(message, retryable, code, retryAfterMs);
    this.name = 'MailboxError';
    this.kind = kind ?? (retryable ? 'unavailable' : 'unexpected');
  }
}
