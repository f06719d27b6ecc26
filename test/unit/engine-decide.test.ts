/** Every row of the person decision table (functions/sync/decide.ts), as a pure function. */
import { describe, expect, it } from 'vitest';
import type { MailboxAccount } from '../../functions/mailbox/directory';
import type { StateRecord } from '../../functions/store/ports';
import { decide, type DecideInput } from '../../functions/sync/decide';
import type { WecomUser } from '../../functions/wecom/contacts';

const W = { enabled: { userid: 'u1', enable: 1 } as WecomUser, disabled: { userid: 'u1', enable: 0 } as WecomUser, absent: undefined };
const M = {
  enabled: { id: 'a1', employeeId: 'u1', enabled: true } as MailboxAccount,
  disabled: { id: 'a1', employeeId: 'u1', enabled: false } as MailboxAccount,
  softDeleted: { id: 'a1', employeeId: 'u1', enabled: false, deleted: true } as MailboxAccount,
  missing: undefined,
};
const S = (over: Partial<StateRecord> = {}): StateRecord => ({
  subject: 'user:u1',
  wecomId: 'u1',
  provider: 'graph',
  targetId: 'a1',
  status: 'active',
  fields: {},
  sensitive: {},
  lastSyncedAt: '2026-01-01T00:00:00Z',
  version: 3,
  ...over,
});
const run = (i: Partial<DecideInput>) => decide({ w: undefined, m: undefined, s: undefined, gate: true, ...i });

describe('person decision table', () => {
  it('row 1: deleted in WeCom, no mailbox → noop', () => {
    expect(run({ w: W.absent, m: M.missing })).toMatchObject({ row: 1, kind: 'noop' });
  });
  it('row 2: deleted in WeCom, enabled account we never synced → hands off', () => {
    expect(run({ w: W.absent, m: M.enabled })).toMatchObject({ row: 2, kind: 'skip' });
  });
  it('row 3: deleted in WeCom, mailbox enabled → disable the mailbox', () => {
    expect(run({ w: W.absent, m: M.enabled, s: S() })).toMatchObject({ row: 3, kind: 'disable-mailbox' });
  });
  it('row 4: deleted in WeCom while offboarding was pending → settle state only', () => {
    expect(run({ w: W.absent, m: M.disabled, s: S({ status: 'pending-delete', disabledBy: 'mailbox' }) })).toMatchObject({ row: 4, kind: 'settle-deleted' });
  });
  it('row 5: deleted in WeCom, mailbox already disabled by us → noop (echo)', () => {
    expect(run({ w: W.absent, m: M.disabled, s: S({ status: 'disabled', disabledBy: 'wecom' }) })).toMatchObject({ row: 5, kind: 'noop' });
    expect(run({ w: W.absent, m: M.softDeleted, s: S({ status: 'deleted' }) })).toMatchObject({ row: 5, kind: 'noop' });
  });
  it('row 6: rehire (create_user after the member was deleted) → create, gated', () => {
    expect(run({ w: W.enabled, m: M.missing, s: S({ status: 'deleted', disabledBy: 'mailbox' }), hint: 'create_user' })).toMatchObject({ row: 6, kind: 'create', rehire: true, gate: true });
  });
  it('row 7: mailbox gone, member already disabled by our offboarding → noop', () => {
    expect(run({ w: W.disabled, m: M.missing, s: S({ status: 'pending-delete', disabledBy: 'mailbox' }) })).toMatchObject({ row: 7, kind: 'noop' });
  });
  it('row 8: mailbox deleted (gone by id or soft-deleted) → offboard the member', () => {
    expect(run({ w: W.enabled, m: M.missing, s: S() })).toMatchObject({ row: 8, kind: 'offboard-member' });
    expect(run({ w: W.enabled, m: M.softDeleted, s: S() })).toMatchObject({ row: 8, kind: 'offboard-member' });
  });
  it('row 9: member without mailbox → create; gate on create_user or new state only', () => {
    expect(run({ w: W.enabled, m: M.missing, hint: 'create_user' })).toMatchObject({ row: 9, kind: 'create', gate: true });
    expect(run({ w: W.enabled, m: M.missing, s: S({ targetId: undefined }), hint: 'update_user' })).toMatchObject({ row: 9, gate: false });
    expect(run({ w: W.enabled, m: M.missing, gate: false })).toMatchObject({ row: 9, gate: false });
    // Crash after gating: the member is disabled by the gate → still create.
    expect(run({ w: W.disabled, m: M.missing, s: S({ targetId: undefined, status: 'gated', disabledBy: 'gate' }) })).toMatchObject({ row: 9, kind: 'create' });
  });
  it('row 10: a disabled member without mailbox → nothing to provision', () => {
    expect(run({ w: W.disabled, m: M.missing })).toMatchObject({ row: 10, kind: 'noop' });
  });
  it('row 11: rehire with the old mailbox disabled → re-enable it', () => {
    expect(run({ w: W.enabled, m: M.disabled, s: S({ status: 'deleted', disabledBy: 'mailbox' }), hint: 'create_user' })).toMatchObject({ row: 11, kind: 'enable-mailbox', rehire: true });
  });
  it('row 12/13: mailbox disabled because of WeCom → follows the member', () => {
    expect(run({ w: W.enabled, m: M.disabled, s: S({ status: 'disabled', disabledBy: 'wecom' }) })).toMatchObject({ row: 12, kind: 'enable-mailbox' });
    expect(run({ w: W.disabled, m: M.disabled, s: S({ status: 'disabled', disabledBy: 'wecom' }) })).toMatchObject({ row: 13, kind: 'noop' });
  });
  it('row 14: our own offboarding echo → noop', () => {
    expect(run({ w: W.disabled, m: M.disabled, s: S({ status: 'pending-delete', disabledBy: 'mailbox' }) })).toMatchObject({ row: 14, kind: 'noop' });
  });
  it('row 15: mailbox disabled by its admins → offboard the member', () => {
    expect(run({ w: W.enabled, m: M.disabled, s: S() })).toMatchObject({ row: 15, kind: 'offboard-member' });
    expect(run({ w: W.enabled, m: M.disabled })).toMatchObject({ row: 15, kind: 'offboard-member' });
    // Without a create_user hint a 'deleted' state is not a rehire.
    expect(run({ w: W.enabled, m: M.disabled, s: S({ status: 'deleted', disabledBy: 'mailbox' }), hint: 'update_user' })).toMatchObject({ row: 15 });
  });
  it('rows 16-18: mailbox enabled, member disabled', () => {
    expect(run({ w: W.disabled, m: M.enabled, s: S({ status: 'pending-delete', disabledBy: 'mailbox' }) })).toMatchObject({ row: 16, kind: 'enable-member', cause: 'mailbox' });
    expect(run({ w: W.disabled, m: M.enabled, s: S({ status: 'gated', disabledBy: 'gate' }) })).toMatchObject({ row: 17, kind: 'enable-member', cause: 'gate' });
    expect(run({ w: W.disabled, m: M.enabled, s: S() })).toMatchObject({ row: 18, kind: 'disable-mailbox' });
  });
  it('row 20: gated, its linked account disabled (a restore in progress) → enable the mailbox, then the member', () => {
    expect(run({ w: W.disabled, m: M.disabled, s: S({ status: 'gated', disabledBy: 'gate' }) })).toMatchObject({ row: 20, kind: 'enable-mailbox', andMember: true });
  });
  it('row 21: gated, an account carrying the userid but not ours (not linked) is disabled → wait, never an offboarding', () => {
    expect(run({ w: W.disabled, m: M.disabled, s: S({ status: 'gated', disabledBy: 'gate', targetId: undefined }) })).toMatchObject({ row: 21, kind: 'noop' });
  });
  it("the gate's disable is never an offboarding: gated + account gone → create (restore), not rows 8 / 15", () => {
    for (const hint of [undefined, 'reconcile', 'update_user', 'graph.updated']) {
      expect(run({ w: W.disabled, m: M.softDeleted, s: S({ status: 'gated', disabledBy: 'gate' }), hint })).toMatchObject({ row: 9, kind: 'create' });
      expect(run({ w: W.disabled, m: M.missing, s: S({ status: 'gated', disabledBy: 'gate' }), hint })).toMatchObject({ row: 9, kind: 'create' });
      expect(run({ w: W.disabled, m: M.disabled, s: S({ status: 'gated', disabledBy: 'gate' }), hint }).kind).not.toBe('offboard-member');
    }
  });
  it('row 22 (mailbox source): the account is linked, no WeCom member → create the member (also after a WeCom deletion)', () => {
    expect(run({ w: W.absent, m: M.enabled, source: 'mailbox' })).toMatchObject({ row: 22, kind: 'create-member' });
    expect(run({ w: W.absent, m: M.enabled, s: S(), source: 'mailbox' })).toMatchObject({ row: 22, kind: 'create-member' });
    expect(run({ w: W.absent, m: M.enabled, s: S() })).toMatchObject({ row: 3 }); // WeCom as the source: offboard the mailbox
  });
  it('row 23 (mailbox source): a member held incomplete → enable once complete', () => {
    expect(run({ w: W.disabled, m: M.enabled, s: S({ status: 'gated', disabledBy: 'incomplete' }), source: 'mailbox' })).toMatchObject({ row: 23, kind: 'enable-member', cause: 'complete' });
  });
  it('row 24 (mailbox source): a WeCom-born member without an account is not provisioned', () => {
    expect(run({ w: W.enabled, m: M.missing, source: 'mailbox' })).toMatchObject({ row: 24, kind: 'noop' });
    expect(run({ w: W.enabled, m: M.missing })).toMatchObject({ row: 9, kind: 'create' });
  });
  it('row 19: both enabled → profile sync', () => {
    expect(run({ w: W.enabled, m: M.enabled, s: S() })).toMatchObject({ row: 19, kind: 'profile' });
    expect(run({ w: { userid: 'u1' }, m: M.enabled })).toMatchObject({ row: 19 });
  });
  it('WeCom status 2 without enable counts as disabled', () => {
    expect(run({ w: { userid: 'u1', status: 2 }, m: M.enabled, s: S() })).toMatchObject({ row: 18 });
  });
});
