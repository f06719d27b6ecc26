/**
 * The mailbox adapter contract as one suite (keyv's test-suite shape): every adapter — Graph
 * on its simulator in each cloud, the engine's FakeMailbox, Google next — runs the same cases
 * with a fresh directory per test, cases switched off by capability. A new adapter plugs in
 * with a factory and a probe (test/mailbox/subjects/*.ts) and a three-line test file.
 *
 * The cases, one file per concern (test/mailbox/cases/): accounts (identity link, canonical
 * values, unicode, partial update on the wire, null clears, E.164 read-back), lifecycle
 * (idempotent disable/enable/delete, not-found), groups, listing (paging), restore (soft delete
 * and the recycle bin), resilience (a throttling storm loses nothing and applies each operation
 * once; errors carry no personal data). The rules themselves: functions/mailbox/directory.ts
 * and docs/mailbox-adapters.md.
 */
import { afterEach, beforeEach, describe } from 'vitest';
import type { MailboxDirectory } from '../../functions/mailbox/directory';
import type { MailboxCapabilities } from '../../functions/mailbox/provider';
import { accountCases } from './cases/accounts';
import { groupCases } from './cases/groups';
import { lifecycleCases } from './cases/lifecycle';
import { listingCases } from './cases/listing';
import { resilienceCases } from './cases/resilience';
import { restoreCases } from './cases/restore';

/** What the suite may observe or arrange on the system side, without going through the adapter. */
export interface MailboxProbe {
  /** Port fields each account write put on the wire (oldest first) since the last call; reads are not listed. */
  writes(): Array<{ op: 'create' | 'update'; fields: string[] }>;
  /** An administrator types a mobile number in the system's own console, in its own format. */
  adminSetMobile(id: string, mobile: string): Promise<void>;
  /** A live, unlinked account holds this address from now on (how it got it — an alias, an admin tool — is the system's business). */
  adminCreate(email: string): Promise<void>;
  /** The live accounts as the system stores them (to count, not through the adapter). */
  stored(): Promise<Array<{ id: string; employeeId?: string | null; enabled: boolean; jobTitle?: string | null }>>;
  /** Member ids of a group as the system stores them. */
  members(groupId: string): Promise<string[]>;
  /** From now on this share of calls is refused as throttled or unavailable, before anything is applied (0 stops). */
  storm?(rate: number): void;
}

export interface MailboxUnderTest {
  directory: MailboxDirectory;
  probe: MailboxProbe;
  close?(): Promise<void>;
}

export interface ConformanceOptions extends Pick<MailboxCapabilities, 'groups' | 'restore'> {
  /** The factory's directory pages hold at most this many accounts, so paging is observable with a few. */
  pageSize: number;
}

/** The directory under test of the running case (set before each test). */
export interface Subject {
  readonly dir: MailboxDirectory;
  readonly probe: MailboxProbe;
  readonly caps: ConformanceOptions;
}

export function mailboxConformance(name: string, factory: () => Promise<MailboxUnderTest>, caps: ConformanceOptions): void {
  describe(`${name}: the mailbox adapter contract`, () => {
    let current: MailboxUnderTest | undefined;
    const subject: Subject = {
      get dir() {
        return current!.directory;
      },
      get probe() {
        return current!.probe;
      },
      caps,
    };
    beforeEach(async () => {
      current = await factory();
    });
    afterEach(async () => {
      await current?.close?.();
      current = undefined;
    });
    accountCases(subject);
    lifecycleCases(subject);
    listingCases(subject);
    groupCases(subject);
    restoreCases(subject);
    resilienceCases(subject);
  });
}
