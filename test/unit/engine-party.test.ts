/** Department subjects: group ensured under the current path, moves re-sync members, deletion is not destructive. */
import { describe, expect, it } from 'vitest';
import { harness } from '../support/engine-harness';

describe('party sync', () => {
  it('new department → group ensured and state written; a second run is a noop', async () => {
    const h = harness();
    const out = await h.syncSubject('party:3', 'create_party');
    expect([...h.mailbox.groups.values()].map((g) => g.path)).toEqual(['技术部/研发组']);
    expect(h.state.records.get('party:3')).toMatchObject({ status: 'active', fields: { path: '技术部/研发组' } });
    expect(out.actions).toEqual(['create']);
    const again = await h.syncSubject('party:3', 'update_party');
    expect(again.changed).toBe(false);
  });

  it('moved / renamed → new group ensured, members under the old path re-synced (and moved on their run)', async () => {
    const h = harness();
    h.addUser({ userid: 'dev', department: [3], main_department: 3 });
    h.addUser({ userid: 'mkt', department: [5], main_department: 5 });
    await h.sync('dev', 'create_user');
    await h.sync('mkt', 'create_user');
    await h.syncSubject('party:3');
    h.wecom.departments.find((d) => d.id === 3)!.parentid = 5; // 研发组 moves under 市场部
    await h.syncSubject('party:3', 'update_party');
    expect(h.enqueued.map((m) => m.subject)).toEqual(['user:dev']);
    expect(h.enqueued[0]).toMatchObject({ hint: 'department_moved' });
    await h.sync('dev', 'department_moved');
    const id = h.account('dev')[0]!.id;
    expect(h.mailbox.groupsOf(id)).toEqual(['市场部/研发组']);
    expect(h.mailbox.accounts.get(id)!.department).toBe('市场部/研发组');
  });

  it('deleted department → audited once, nothing destroyed', async () => {
    const h = harness();
    await h.syncSubject('party:4');
    h.wecom.departments = h.wecom.departments.filter((d) => d.id !== 4);
    await h.syncSubject('party:4', 'delete_party');
    await h.syncSubject('party:4', 'delete_party');
    expect(h.mailbox.groups.size).toBe(1);
    expect(h.audit.records.filter((r) => r.action === 'skip')).toHaveLength(1);
    expect(h.state.records.get('party:4')).toMatchObject({ status: 'deleted' });
  });
});
