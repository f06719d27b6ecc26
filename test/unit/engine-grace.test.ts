/** The grace-period deleter over port fakes: deletes only still-offboarded members, after the period, within the guard. */
import { describe, expect, it } from 'vitest';
import { deleteDueMembers } from '../../functions/sync/grace';
import { harness } from '../support/engine-harness';

async function offboardMany(n: number, config: Record<string, unknown> = {}) {
  // The event-path guard would hold offboardings past the first (test/unit/engine-guard.test.ts):
  // here the subject is the grace deleter and its own guard.
  const h = harness({ deletionGuard: { enabled: false }, ...config });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const userid = `p${i}`;
    h.addUser({ userid });
    await h.sync(userid, 'create_user');
    const id = h.account(userid)[0]!.id;
    h.mailbox.admin(id, { enabled: false });
    await h.syncSubject(`mailbox:graph:${id}`, 'updated');
    ids.push(id);
  }
  return { h, ids };
}

describe('grace-period deleter', () => {
  it('nothing is due before the grace period ends', async () => {
    const { h } = await offboardMany(2);
    h.advance(29);
    const r = await deleteDueMembers(h.deps);
    expect(r).toMatchObject({ due: 0, deleted: [] });
    expect(h.wecom.users.size).toBe(2);
  });

  it('after the period: deletes still-offboarded members, audits with the causing event, marks state deleted', async () => {
    const { h, ids } = await offboardMany(2);
    const causing = h.state.records.get('user:p0')!.lastEventId;
    h.mailbox.admin(ids[1]!, { enabled: true }); // p1's mailbox came back (no event seen yet)
    h.advance(31);
    const r = await deleteDueMembers(h.deps);
    expect(r.deleted).toEqual(['p0']);
    expect(r.reenabled).toEqual(['p1']);
    expect(h.wecom.users.has('p0')).toBe(false);
    expect(h.wecom.users.get('p1')!.enable).toBe(1);
    expect(h.state.records.get('user:p0')).toMatchObject({ status: 'deleted' });
    expect(h.state.records.get('user:p0')!.deleteAfter).toBeUndefined();
    expect(h.state.records.get('user:p1')).toMatchObject({ status: 'active' });
    const del = h.audit.records.find((x) => x.action === 'delete')!;
    expect(del).toMatchObject({ subject: 'user:p0', target: 'wecom', operator: 'grace-deleter', eventId: causing });
    // Idempotent: a second run finds nothing due.
    expect((await deleteDueMembers(h.deps)).due).toBe(0);
  });

  it('deletion guard: more due than maxDeletes → refuses, deletes nothing; confirmed → proceeds', async () => {
    const { h } = await offboardMany(3, { reconcile: { maxDeletes: 2 } });
    h.advance(31);
    const r = await deleteDueMembers(h.deps);
    expect(r.refused).toMatch(/3 members due.*maxDeletes 2/);
    expect(r.deleted).toEqual([]);
    expect(h.wecom.users.size).toBe(3);
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'refused', outcome: 'refused', subject: 'system:grace-deleter' });
    const ok = await deleteDueMembers(h.deps, { confirmed: true, operator: 'cli:alice' });
    expect(ok.deleted.sort()).toEqual(['p0', 'p1', 'p2']);
    expect(h.wecom.users.size).toBe(0);
  });

  it('a later WeCom callback for a deleted member is a noop (no mailbox write)', async () => {
    const { h } = await offboardMany(1);
    h.advance(31);
    await deleteDueMembers(h.deps);
    h.mailbox.writes.length = 0;
    const out = await h.sync('p0', 'delete_user');
    expect(out.changed).toBe(false);
    expect(h.mailbox.writes).toEqual([]);
  });
});
