/**
 * Departments as groups: one group per path, found again by our key (a second adapter instance
 * or a second call gets the same id); membership moves are idempotent.
 */
import { expect, it } from 'vitest';
import type { Subject } from '../conformance';
import { zhangsan } from './people';

export function groupCases(t: Subject): void {
  it.skipIf(!t.caps.groups)('ensureGroup: one group per path, the same id every time, CJK paths included', async () => {
    const dev = await t.dir.ensureGroup('技术部/研发组');
    expect(await t.dir.ensureGroup('技术部/研发组')).toBe(dev);
    expect(await t.dir.ensureGroup('技术部/运维组')).not.toBe(dev);
  });

  it.skipIf(!t.caps.groups)('setGroupMembership moves the account; repeating it, or removing a non-member, is a success', async () => {
    const a = await t.dir.create(zhangsan);
    const dev = await t.dir.ensureGroup('技术部/研发组');
    const ops = await t.dir.ensureGroup('技术部/运维组');
    await t.dir.setGroupMembership(a.id, [], [dev]);
    await t.dir.setGroupMembership(a.id, [], [dev]);
    expect(await t.probe.members(dev)).toEqual([a.id]);
    await t.dir.setGroupMembership(a.id, [dev], [ops]);
    await t.dir.setGroupMembership(a.id, [dev], [ops]);
    expect(await t.probe.members(dev)).toEqual([]);
    expect(await t.probe.members(ops)).toEqual([a.id]);
    await t.dir.setGroupMembership(a.id, [ops], [ops]); // in both: stays
    expect(await t.probe.members(ops)).toEqual([a.id]);
  });

  it.skipIf(!t.caps.groups)('adding an account that does not exist: not-found, not retryable', async () => {
    const dev = await t.dir.ensureGroup('技术部');
    await expect(t.dir.setGroupMembership('00000000-0000-0000-0000-000000000000', [], [dev])).rejects.toMatchObject({ kind: 'not-found', retryable: false });
  });

  it.skipIf(!t.caps.groups)('memberOf: the groups the account is a direct member of (the mailbox-source scope), following moves; unknown account is not-found', async () => {
    expect(t.dir.memberOf, 'an adapter with groups lists memberships').toBeTypeOf('function');
    const a = await t.dir.create(zhangsan);
    expect(await t.dir.memberOf!(a.id)).toEqual([]);
    const dev = await t.dir.ensureGroup('技术部/研发组');
    const ops = await t.dir.ensureGroup('技术部/运维组');
    await t.dir.setGroupMembership(a.id, [], [dev, ops]);
    expect((await t.dir.memberOf!(a.id)).sort()).toEqual([dev, ops].sort());
    await t.dir.setGroupMembership(a.id, [dev, ops], [ops]);
    expect(await t.dir.memberOf!(a.id)).toEqual([ops]);
    await expect(t.dir.memberOf!('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({ kind: 'not-found', retryable: false });
  });
}
