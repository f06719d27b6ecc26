/**
 * lifecycle.source 'mailbox': people are born in the mailbox (AD / Microsoft 365 is the
 * directory of record) and the mailbox's fields flow to WeCom; a WeCom-side edit is put back.
 */
import { describe, expect, it } from 'vitest';
import type { MailboxAccount } from '../../functions/mailbox/directory';
import { syncSubject } from '../../functions/sync/engine';
import { harness, type Harness } from '../support/engine-harness';

const MAILBOX = { lifecycle: { source: 'mailbox' } };

function account(h: Harness, a: Partial<MailboxAccount> & { id: string; email: string }): MailboxAccount {
  const acc: MailboxAccount = { enabled: true, kind: 'member', displayName: a.email.split('@')[0]!.toUpperCase(), department: '技术部/研发组', ...a };
  h.mailbox.accounts.set(acc.id, acc);
  return acc;
}

const fromGraph = (h: Harness, id: string) => syncSubject(h.message(`mailbox:graph:${id}`, 'graph.updated', { source: 'mailbox', operator: 'graph-notification' }), h.deps);

describe('born in the mailbox', () => {
  it('a new account in scope: linked to its userid, the WeCom member created disabled, then enabled (complete)', async () => {
    const h = harness(MAILBOX);
    account(h, { id: 'a1', email: 'Wang.Wu@example.com', mobile: '+86 138 0013 8000', jobTitle: '工程师' });
    const out = await fromGraph(h, 'a1');
    expect(h.mailbox.accounts.get('a1')!.employeeId).toBe('wang.wu');
    const member = h.wecom.users.get('wang.wu')!;
    expect(member).toMatchObject({ name: 'WANG.WU', position: '工程师', mobile: '+86 13800138000', email: 'wang.wu@example.com', department: [3], main_department: 3, enable: 1 });
    const created = h.wecom.writes.find((w) => w.op === 'create')!;
    expect((created.patch as { enable: number }).enable).toBe(0); // created disabled …
    expect(h.wecom.writes.filter((w) => w.op === 'update').map((w) => w.patch)).toEqual([{ enable: 1 }]); // … enabled once complete
    expect(h.audit.actions('user:wang.wu')).toEqual(['update:mailbox:ok', 'create:wecom:ok', 'enable:wecom:ok']);
    expect(out.resolved).toBe('user:wang.wu');
    expect(h.state.records.get('user:wang.wu')).toMatchObject({ status: 'active', targetId: 'a1' });
    // Sensitive values are flagged for the audit store, which masks them (tested in state-audit).
    expect(h.audit.records[1]!.changes!.find((c) => c.field === 'mobile')).toMatchObject({ sensitive: true });
  });

  it('a department WeCom does not have: created in the root, held disabled, reported; enabled and moved once it exists', async () => {
    const h = harness(MAILBOX);
    account(h, { id: 'a2', email: 'li@example.com', department: '新部门' });
    await fromGraph(h, 'a2');
    expect(h.wecom.users.get('li')).toMatchObject({ enable: 0, department: [1] });
    expect(h.state.records.get('user:li')).toMatchObject({ status: 'gated', disabledBy: 'incomplete' });
    expect(h.audit.records.find((r) => r.action === 'create')!.reason).toMatch(/held disabled: departments \('新部门' is not a WeCom department\)/);
    // The WeCom admin creates the department; the next event for the account completes the record.
    h.wecom.departments.push({ id: 9, name: '新部门', parentid: 1 });
    await h.syncSubject('party:9', 'create_party'); // WeCom's callback for the new department
    await fromGraph(h, 'a2');
    expect(h.wecom.users.get('li')).toMatchObject({ enable: 1, department: [9], main_department: 9 });
    expect(h.state.records.get('user:li')).toMatchObject({ status: 'active' });
  });

  it('createDepartments: a missing path is created in WeCom exactly once for two people', async () => {
    const h = harness({ lifecycle: { source: 'mailbox', createDepartments: true } });
    account(h, { id: 'b1', email: 'b1@example.com', department: '销售部/华东' });
    account(h, { id: 'b2', email: 'b2@example.com', department: '销售部/华东' });
    await Promise.all([fromGraph(h, 'b1'), fromGraph(h, 'b2')]);
    await fromGraph(h, 'b2'); // one of the two may have waited for the other's creation
    const created = h.wecom.writes.filter((w) => w.op === 'createDepartment').map((w) => (w.patch as { name: string }).name);
    expect(created).toEqual(['销售部', '华东']);
    const east = h.wecom.departments.find((d) => d.name === '华东')!;
    expect(h.wecom.users.get('b1')).toMatchObject({ enable: 1, main_department: east.id });
    expect(h.wecom.users.get('b2')).toMatchObject({ enable: 1, main_department: east.id });
    expect(h.audit.records.filter((r) => r.subject.startsWith('party:') && r.action === 'create')).toHaveLength(2);
  });

  it('collisions are refused and reported, never suffixed', async () => {
    const h = harness(MAILBOX);
    h.addUser({ userid: 'zhao' }); // WeCom already has a zhao
    account(h, { id: 'c1', email: 'zhao@example.com' });
    await fromGraph(h, 'c1');
    expect(h.mailbox.accounts.get('c1')!.employeeId).toBeUndefined();
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'refused', subject: 'mailbox:graph:c1' });
    expect(h.audit.records.at(-1)!.reason).toMatch(/userid 'zhao' collides: WeCom already has a member/);
    // Two accounts, one local part (two domains): the first wins, the second is refused.
    account(h, { id: 'c2', email: 'qian@example.com' });
    account(h, { id: 'c3', email: 'qian@other.example' });
    await fromGraph(h, 'c2');
    await fromGraph(h, 'c3');
    expect(h.mailbox.accounts.get('c2')!.employeeId).toBe('qian');
    expect(h.mailbox.accounts.get('c3')!.employeeId).toBeUndefined();
    expect(h.audit.records.at(-1)!.reason).toMatch(/userid 'qian' collides/);
    expect([...h.wecom.users.keys()].filter((u) => u.startsWith('qian'))).toEqual(['qian']);
  });

  it('out of scope: guests, shared mailboxes, disabled accounts, other departments, other groups', async () => {
    const h = harness({ lifecycle: { source: 'mailbox', mailboxScope: { departments: ['技术部'] } } });
    account(h, { id: 'g1', email: 'guest@example.com', kind: 'guest' });
    account(h, { id: 's1', email: 'room@example.com', kind: 'shared' });
    account(h, { id: 'd1', email: 'off@example.com', enabled: false });
    account(h, { id: 'o1', email: 'sales@example.com', department: '销售部' });
    account(h, { id: 'i1', email: 'in@example.com', department: '技术部/研发组' });
    for (const id of ['g1', 's1', 'd1', 'o1', 'i1']) await fromGraph(h, id);
    expect([...h.wecom.users.keys()]).toEqual(['in']);
    const g = harness({ lifecycle: { source: 'mailbox', mailboxScope: { groupIds: ['grp-x'] } } });
    account(g, { id: 'x1', email: 'x1@example.com' });
    account(g, { id: 'x2', email: 'x2@example.com' });
    g.mailbox.groups.set('grp-x', { id: 'grp-x', path: 'Onboarding', members: new Set(['x2']) });
    await fromGraph(g, 'x1');
    await fromGraph(g, 'x2');
    expect([...g.wecom.users.keys()]).toEqual(['x2']);
  });
});

describe('authority in both directions', () => {
  async function linked(config: Record<string, unknown> = MAILBOX) {
    const h = harness(config);
    account(h, { id: 'p1', email: 'sun@example.com', jobTitle: 'Engineer', mobile: '+8613800138000' });
    await fromGraph(h, 'p1');
    h.wecom.writes.length = 0;
    h.mailbox.writes.length = 0;
    return h;
  }

  it('a mailbox change reaches WeCom (only that field), audited update; the WeCom callback of our write is a noop', async () => {
    const h = await linked();
    h.mailbox.admin('p1', { jobTitle: 'Architect' });
    await fromGraph(h, 'p1');
    expect(h.wecom.writes).toEqual([{ op: 'update', userid: 'sun', patch: { position: 'Architect' } }]);
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'update', target: 'wecom', changes: [{ field: 'position', old: 'Engineer', new: 'Architect' }] });
    // Echo bound: WeCom's update_user callback of our own write changes nothing on either side.
    await h.sync('sun', 'update_user');
    expect(h.wecom.writes).toHaveLength(1);
    expect(h.mailbox.writes).toEqual([]);
  });

  it('a WeCom console edit of a mailbox-owned field is put back, audited revert; a mobile change flows as WeCom form', async () => {
    const h = await linked();
    h.wecomAdmin('sun', { position: '销售' });
    await h.sync('sun', 'update_user');
    expect(h.wecom.users.get('sun')!.position).toBe('Engineer');
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'revert', target: 'wecom', changes: [{ field: 'position', old: '销售', new: 'Engineer' }] });
    h.mailbox.admin('p1', { mobile: '+8613900139000' });
    await fromGraph(h, 'p1');
    expect(h.wecom.users.get('sun')!.mobile).toBe('+86 13900139000');
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'update', target: 'wecom', changes: [{ field: 'mobile', sensitive: true }] });
  });

  it("'none' leaves a field alone on both sides; 'wecom' still flows to the mailbox in mailbox mode", async () => {
    const h = await linked({ lifecycle: { source: 'mailbox' }, profile: { authority: { position: 'none', name: 'wecom' } } });
    h.wecomAdmin('sun', { position: '销售', name: '孙悟空' });
    await h.sync('sun', 'update_user');
    expect(h.wecom.users.get('sun')!.position).toBe('销售');
    expect(h.mailbox.accounts.get('p1')!.jobTitle).toBe('Engineer');
    expect(h.mailbox.accounts.get('p1')!.displayName).toBe('孙悟空');
  });

  it('offboarding is unchanged: the mailbox disabled → the WeCom member disabled', async () => {
    const h = await linked();
    h.mailbox.admin('p1', { enabled: false });
    await fromGraph(h, 'p1');
    expect(h.wecom.users.get('sun')!.enable).toBe(0);
    expect(h.state.records.get('user:sun')).toMatchObject({ status: 'pending-delete', disabledBy: 'mailbox' });
  });

  it('a WeCom member deleted while its mailbox is enabled is created again (the mailbox is the record)', async () => {
    const h = await linked();
    h.wecom.users.delete('sun');
    await h.sync('sun', 'delete_user');
    expect(h.wecom.users.get('sun')).toMatchObject({ enable: 1 });
    expect(h.mailbox.accounts.get('p1')!.enabled).toBe(true);
  });
});

describe('a read-only directory (AD as the source of truth, LDAP without writes)', () => {
  it('an unlinked account is not linked by us: refused with what the directory admin must set; nothing written, nothing claimed', async () => {
    const h = harness(MAILBOX);
    h.mailbox.readOnly = true;
    account(h, { id: 'r1', email: 'zhao@example.com' });
    const out = await fromGraph(h, 'r1');
    expect(h.mailbox.writes).toEqual([]);
    expect(h.wecom.writes).toEqual([]);
    expect(out.reason).toMatch(/read-only: .*set the entry's link attribute .* to 'zhao'/);
    expect(h.state.claims.size).toBe(0);
  });

  it("linked in the directory by its admin: the member is born; a WeCom-side disable does not touch the directory (refused once, audited); a deletion is undone", async () => {
    const h = harness(MAILBOX);
    h.mailbox.readOnly = true;
    account(h, { id: 'r2', email: 'qian@example.com', employeeId: 'qian', jobTitle: '会计' });
    await fromGraph(h, 'r2');
    expect(h.wecom.users.get('qian')).toMatchObject({ enable: 1, position: '会计' });
    // A WeCom admin disables the member (row 18 would disable the account): the directory stays
    // as it is, the refusal is audited once however many events follow.
    h.wecom.users.get('qian')!.enable = 0;
    await h.sync('qian', 'update_user');
    await h.sync('qian', 'update_user');
    expect(h.mailbox.writes).toEqual([]);
    expect(h.mailbox.accounts.get('r2')!.enabled).toBe(true);
    const refused = h.audit.records.filter((r) => r.subject === 'user:qian' && r.action === 'refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ target: 'mailbox', outcome: 'refused' });
    expect(refused[0]!.reason).toMatch(/read-only \(decision row 18: disable the account\)/);
    // Deleted in WeCom while the directory still has the person: the member comes back (row 22).
    h.wecom.users.delete('qian');
    await h.sync('qian', 'delete_user');
    expect(h.wecom.users.get('qian')).toBeDefined();
    expect(h.mailbox.writes).toEqual([]);
  });
});
