/**
 * The onboarding gate is not an offboarding; a rehire restores the soft-deleted account
 * instead of failing on its reserved address; department renames stick.
 */
import { describe, expect, it } from 'vitest';
import { MailboxError } from '../../functions/mailbox/directory';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { syncSubject } from '../../functions/sync/engine';
import { deleteDueMembers } from '../../functions/sync/grace';
import { reconcileAll } from '../../functions/sync/reconcile';
import { harness, type Harness } from '../support/engine-harness';

/** A leaver: onboarded, mailbox disabled (offboarded), mailbox soft-deleted by the mail admins, member deleted after the grace period. */
async function leaver(h: Harness, userid: string) {
  h.addUser({ userid, mobile: '13800138000', position: 'Engineer' });
  await h.sync(userid, 'create_user');
  const id = h.account(userid)[0]!.id;
  h.mailbox.admin(id, { enabled: false });
  await h.syncSubject(`mailbox:graph:${id}`, 'graph.updated');
  await h.mailbox.delete(id);
  await h.syncSubject(`mailbox:graph:${id}`, 'graph.updated');
  h.advance(31);
  expect((await deleteDueMembers(h.deps)).deleted).toEqual([userid]);
  return id;
}

describe('restore before create (rehire)', () => {
  it('the soft-deleted account is restored — same id — updated, enabled, and the member released from the gate', async () => {
    const h = harness();
    const oldId = await leaver(h, 'amy');
    h.addUser({ userid: 'amy', position: 'Manager', department: [4], main_department: 4 });
    const out = await h.sync('amy', 'create_user');
    expect(h.account('amy')).toHaveLength(1);
    const acc = h.account('amy')[0]!;
    expect(acc).toMatchObject({ id: oldId, enabled: true, jobTitle: 'Manager', department: '财务部' });
    expect(acc.deleted).toBeUndefined();
    expect(h.mailbox.writes.filter((w) => w.op === 'create')).toHaveLength(1); // only the first hire's
    expect(h.mailbox.groupsOf(oldId)).toEqual(['财务部']);
    expect(h.wecom.users.get('amy')!.enable).toBe(1);
    expect(out.actions).toEqual(['disable', 'restore', 'update', 'enable']);
    const restore = h.audit.records.find((r) => r.action === 'restore')!;
    expect(restore).toMatchObject({ target: 'mailbox', outcome: 'ok', subject: 'user:amy' });
    expect(h.state.records.get('user:amy')).toMatchObject({ status: 'active', targetId: oldId });
  });

  it('a person never seen before costs no deleted-items lookup (one call per onboarding saved on the rate-limited side)', async () => {
    const h = harness();
    let lookups = 0;
    const find = h.mailbox.findDeleted.bind(h.mailbox);
    h.mailbox.findDeleted = async (u: string) => (lookups++, find(u));
    h.addUser({ userid: 'new1' });
    await h.sync('new1', 'create_user');
    expect(h.account('new1')).toHaveLength(1);
    expect(lookups).toBe(0);
    await leaver(h, 'old1');
    h.addUser({ userid: 'old1' });
    await h.sync('old1', 'create_user');
    expect(lookups).toBe(1);
  });

  it('without a recycle bin (adapter without restore) the create fails on the reserved address: the member stays gated, never offboarded', async () => {
    const h = harness();
    h.mailbox.findDeleted = undefined as never;
    await leaver(h, 'bo');
    h.addUser({ userid: 'bo' });
    await expect(h.sync('bo', 'create_user')).rejects.toThrow(/ObjectConflict/);
    expect(h.wecom.users.get('bo')!.enable).toBe(0);
    expect(h.state.records.get('user:bo')).toMatchObject({ status: 'gated', disabledBy: 'gate' });
    expect(h.audit.records.at(-1)!.reason).toMatch(/mailbox creation failed \(member stays gated\).*ObjectConflict/);

    // The scenario of the field report: a later repair must not turn the gate into an offboarding.
    const before = h.audit.records.length;
    const report = await reconcileAll(h.deps, { repair: true, apply: true, operator: 'cli:ops' });
    const s = h.state.records.get('user:bo')!;
    expect(s).toMatchObject({ status: 'gated', disabledBy: 'gate' });
    expect(s.deleteAfter).toBeUndefined();
    const finding = report.findings.find((f) => f.subject === 'user:bo')!;
    expect(finding.class).toBe('gated');
    expect(finding.detail).toMatch(/ObjectConflict/);
    expect(h.audit.records.slice(before).filter((r) => r.subject === 'user:bo' && /offboard|grace/.test(r.reason ?? ''))).toEqual([]);
    h.advance(40);
    expect((await deleteDueMembers(h.deps)).deleted).toEqual([]);
    expect(h.wecom.users.has('bo')).toBe(true);
  });

  it('a gated member whose stored account is gone is provisioned again (restored), not offboarded', async () => {
    const h = harness();
    h.addUser({ userid: 'cy' });
    await h.sync('cy', 'create_user');
    const id = h.account('cy')[0]!.id;
    // The gate holds the member again (e.g. an interrupted rehire) and the account was deleted meanwhile.
    h.state.records.get('user:cy')!.status = 'gated';
    h.state.records.get('user:cy')!.disabledBy = 'gate';
    h.wecomAdmin('cy', { enable: 0 });
    await h.mailbox.delete(id);
    await h.syncSubject(`mailbox:graph:${id}`, 'graph.updated', { source: 'mailbox' } as never);
    expect(h.account('cy')[0]).toMatchObject({ id, enabled: true });
    expect(h.wecom.users.get('cy')!.enable).toBe(1);
    expect(h.state.records.get('user:cy')).toMatchObject({ status: 'active' });
  });

  it('the grace deleter refuses a member whose disable came from the gate, even with a deadline stored', async () => {
    const h = harness();
    h.addUser({ userid: 'di' });
    h.mailbox.failCreate = { error: new MailboxError('quota', false, 'quota'), times: 1 };
    await expect(h.sync('di', 'create_user')).rejects.toThrow();
    const s = h.state.records.get('user:di')!;
    s.deleteAfter = '2026-01-01T00:00:00.000Z'; // as the old engine could leave it
    const r = await deleteDueMembers(h.deps);
    expect(r.deleted).toEqual([]);
    expect(h.wecom.users.has('di')).toBe(true);
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'refused', subject: 'user:di' });
  });

  it('reconcile reports a gated member whose mailbox exists but is disabled, with the reason', async () => {
    const h = harness();
    h.addUser({ userid: 'ed' });
    h.mailbox.failCreate = { error: new MailboxError('license quota exceeded', false, 'quota'), times: 1 };
    await expect(h.sync('ed', 'create_user')).rejects.toThrow();
    // A mail admin then creates the account by hand, disabled.
    const acc = await h.mailbox.create({ employeeId: 'ed', email: 'ed@example.com', displayName: 'ED', enabled: false });
    h.mailbox.admin(acc.id, { enabled: false });
    await h.sync('ed', 'update_user');
    expect(h.wecom.users.get('ed')!.enable).toBe(0); // row 21: waits, untouched
    const report = await reconcileAll(h.deps);
    const f = report.findings.find((x) => x.subject === 'user:ed')!;
    expect(f.class).toBe('gated');
    expect(f.detail).toMatch(/disabled/);
  });
});

describe('department renames stick', () => {
  it('the echo of a repair that wrote the new path does not revert it in a worker with an old tree', async () => {
    const h = harness();
    h.addUser({ userid: 'fu' });
    await h.sync('fu', 'create_user');
    const acc = h.account('fu')[0]!;
    expect(acc.department).toBe('技术部/研发组');
    // The worker's cached tree is warm (old names) and stays warm for its max age.
    let t = 0;
    const workerTree = new CachedDepartmentTree(() => h.wecom.listDepartments(), { maxAgeMs: 5 * 60_000, now: () => t });
    await workerTree.get();
    // Renamed in the WeCom console (no event); a reconcile repair (own fresh tree) writes the new path.
    h.wecom.departments.find((d) => d.id === 3)!.name = '平台组';
    const report = await reconcileAll(h.deps, { repair: true, apply: true, operator: 'cli:ops' });
    expect(report.findings.some((f) => f.class === 'fields-differ' && f.repair === 'applied')).toBe(true);
    expect(h.account('fu')[0]!.department).toBe('技术部/平台组');
    // The Graph notification of that write reaches the worker 10 s later.
    t += 10_000;
    await syncSubject(h.message(`mailbox:graph:${acc.id}`, 'graph.updated', { source: 'mailbox', operator: 'graph-notification' }), { ...h.deps, departments: workerTree });
    expect(h.account('fu')[0]!.department).toBe('技术部/平台组');
    expect(h.audit.records.filter((r) => r.operator === 'graph-notification' && r.action === 'update')).toEqual([]);
  });

  it('a disagreement that never resolves reloads the tree at most once per 5 s, not on every run', async () => {
    const h = harness();
    h.addUser({ userid: 'gi' });
    await h.sync('gi', 'create_user');
    const acc = h.account('gi')[0]!;
    h.mailbox.admin(acc.id, { department: '不存在/的部门' }); // an admin typed a path WeCom does not have
    let loads = 0;
    let t = 0;
    const tree = new CachedDepartmentTree(() => (loads++, h.wecom.listDepartments()), { maxAgeMs: 5 * 60_000, now: () => t });
    for (let i = 0; i < 5; i++) {
      t += 1000;
      await h.sync('gi', 'update_user', { departments: tree });
    }
    expect(loads).toBeLessThanOrEqual(2);
    expect(h.account('gi')[0]!.department).toBe('技术部/研发组'); // WeCom's path put back
  });
});
