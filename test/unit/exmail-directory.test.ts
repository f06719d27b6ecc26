/**
 * What the Exmail adapter does beyond the shared contract (test/mailbox/exmail.test.ts runs
 * that): departments as the native tree, the link index and when it lists again, paging a
 * listing the API does not page, the address that cannot change, phones in Exmail's national
 * form, and the wire mapping itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fromWirePhone, toAccount, toWire, toWirePhone } from '../../functions/mailbox/exmail/wire';
import { exmail } from '../../functions/mailbox/exmail/index';
import { EXMAIL_SECRET, exmailOnSim } from '../mailbox/subjects/exmail-sim';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function onSim(settings: Record<string, unknown> = {}) {
  const r = await exmailOnSim({ settings });
  close = r.server.close;
  return r;
}

const zhangsan = { employeeId: 'zhangsan', email: 'zhangsan@example.com', displayName: '张三', mobile: '+8613800138000', telephone: '+861088886666', department: '技术部/研发组' };

describe('Exmail wire', () => {
  it('mainland numbers go out national, others E.164; both read back as E.164; an extension stays as stored', () => {
    expect(toWirePhone('+8613800138000', 'CN')).toBe('13800138000');
    expect(toWirePhone('+861088886666', 'CN')).toBe('01088886666');
    expect(toWirePhone('+85291234567', 'CN')).toBe('+85291234567');
    expect(fromWirePhone('13800138000', 'CN')).toBe('+8613800138000');
    expect(fromWirePhone('010-8888 6666', 'CN')).toBe('+861088886666');
    expect(fromWirePhone('+852 9123 4567', 'CN')).toBe('+85291234567');
    expect(fromWirePhone('60000', 'CN')).toBe('60000');
    expect(fromWirePhone('', 'CN')).toBeNull();
  });

  it('only the keys named go on the wire; null clears with an empty string; a name cannot be cleared', () => {
    expect(toWire({ jobTitle: null, mobile: null, enabled: false }, 'CN')).toEqual({ position: '', mobile: '', enable: 0 });
    expect(toWire({}, 'CN')).toEqual({});
    expect(() => toWire({ displayName: null }, 'CN')).toThrow(expect.objectContaining({ kind: 'invalid' }));
  });

  it('reads: the address is the id (lower-case), extid the link, "0" disabled, an empty extid no link', () => {
    expect(toAccount({ userid: 'ZhangSan@Example.com', name: '张三', extid: 'zhangsan', enable: '0', department: [5] }, '技术部', 'CN')).toEqual({
      id: 'zhangsan@example.com',
      email: 'zhangsan@example.com',
      mailNickname: 'zhangsan',
      employeeId: 'zhangsan',
      enabled: false,
      displayName: '张三',
      department: '技术部',
      kind: 'member',
    });
    expect(toAccount({ userid: 'x@example.com', extid: '' }, null, 'CN').employeeId).toBeUndefined();
    expect(toAccount({ userid: 'x@example.com', extid: 1001 }, null, 'CN').employeeId).toBe('1001');
  });
});

describe('Exmail directory', () => {
  it('creates the department path once and puts the account in it; a root-only account has no department', async () => {
    const { sim, connection } = await onSim();
    const dir = connection.directory;
    const a = await dir.create(zhangsan);
    expect([...sim.departments.values()].map((d) => [d.name, d.parentid])).toEqual([
      ['Example Corp', 0],
      ['技术部', 1],
      ['研发组', 2],
    ]);
    expect(sim.users.get(a.id)).toMatchObject({ department: [3], extid: 'zhangsan', mobile: '13800138000', tel: '01088886666', cpwd_login: 1 });
    await dir.create({ employeeId: 'lisi', email: 'lisi@example.com', displayName: '李四', department: '技术部/研发组' });
    expect(sim.departments.size).toBe(3);
    const b = await dir.create({ employeeId: 'wangwu', email: 'wangwu@example.com', displayName: '王五' });
    expect(sim.users.get(b.id)!.department).toEqual([1]);
    expect((await dir.get(b.id))?.department).toBeNull();
    await dir.update(a.id, { department: null });
    expect(sim.users.get(a.id)!.department).toEqual([1]);
  });

  it('a department another worker creates between our read and our create (60008) is adopted, not duplicated', async () => {
    let race: (() => void) | undefined;
    const racing: typeof fetch = async (url, init) => {
      if (String(url).includes('/cgi-bin/department/create') && race) {
        race(); // the other worker's create lands first
        race = undefined;
      }
      return fetch(url, init);
    };
    const r = await exmailOnSim({ connect: { fetch: racing } });
    close = r.server.close;
    const { sim, connection } = r;
    await connection.directory.ensureGroup('市场部');
    race = () => sim.departments.set(50, { id: 50, name: '华东区', parentid: 2, order: 0 });
    expect(await connection.directory.ensureGroup('市场部/华东区')).toBe('50');
    expect(sim.requests.filter((q) => q.api === 'department/create').map((q) => q.errcode)).toEqual([0, 60008]);
    expect([...sim.departments.values()].filter((d) => d.name === '华东区')).toHaveLength(1);
  });

  it('groups are off: ensureGroup answers the department id, setGroupMembership changes nothing', async () => {
    const { sim, connection } = await onSim();
    const a = await connection.directory.create(zhangsan);
    const id = await connection.directory.ensureGroup('技术部/运维组');
    const before = sim.requests.length;
    await connection.directory.setGroupMembership(a.id, [], [id]);
    expect(sim.requests.length).toBe(before);
    expect(connection.capabilities).toEqual({ groups: false, restore: false, changes: 'poll', delta: true });
    expect(connection.directory.memberOf).toBeUndefined();
  });

  it('an address change is refused before anything is written; the same address in another case is no change', async () => {
    const { sim, connection } = await onSim();
    const a = await connection.directory.create(zhangsan);
    const writes = () => sim.requests.filter((r) => r.api === 'user/update').length;
    await expect(connection.directory.update(a.id, { email: 'zhang.san@example.com', jobTitle: 'x' })).rejects.toMatchObject({ kind: 'invalid', retryable: false, code: 'AddressChangeUnsupported' });
    expect(writes()).toBe(0);
    await connection.directory.update(a.id, { email: 'ZhangSan@Example.com' });
    expect(writes()).toBe(0);
  });

  it('created disabled: created, then disabled (user/create has no enable)', async () => {
    const { sim, connection } = await onSim();
    const a = await connection.directory.create({ ...zhangsan, enabled: false });
    expect(a.enabled).toBe(false);
    expect(sim.users.get(a.id)!.enable).toBe(0);
  });

  it('the link index: an account made in the console is found (a miss lists again), a relinked one is not', async () => {
    const { sim, connection } = await onSim({ indexTtlSeconds: 3600 });
    const dir = connection.directory;
    expect(await dir.findByEmployeeId('lisi')).toBeUndefined(); // builds the index
    sim.console.create({ userid: 'lisi@example.com', name: '李四', extid: 'lisi' });
    expect(await dir.findByEmployeeId('lisi')).toMatchObject({ id: 'lisi@example.com' });
    const lists = sim.calls['user/list'];
    expect(await dir.findByEmployeeId('lisi')).toMatchObject({ id: 'lisi@example.com' }); // a hit: one user/get, no listing
    expect(sim.calls['user/list']).toBe(lists);
    sim.console.update('lisi@example.com', { extid: 'lisi2' }); // relinked in the console
    expect(await dir.findByEmployeeId('lisi')).toBeUndefined();
    expect(await dir.findByEmployeeId('lisi2')).toMatchObject({ id: 'lisi@example.com' });
  });

  it('the adapter’s own create and delete keep the index: ambiguity is seen without listing again', async () => {
    const { sim, connection } = await onSim({ indexTtlSeconds: 3600 });
    const dir = connection.directory;
    await dir.findByEmployeeId('x');
    const lists = sim.calls['user/list'];
    const a = await dir.create(zhangsan);
    await dir.create({ ...zhangsan, email: 'zhangsan2@example.com' });
    await expect(dir.findByEmployeeId('zhangsan')).rejects.toMatchObject({ kind: 'ambiguous' });
    await dir.delete(a.id);
    expect(await dir.findByEmployeeId('zhangsan')).toMatchObject({ id: 'zhangsan2@example.com' });
    expect(sim.calls['user/list']).toBe(lists);
  });

  it('listPage: pages one listing by address; a cursor from another container lists again and goes on after the address', async () => {
    const { sim, config, connection } = await onSim({ pageSize: 2 });
    for (const n of ['d', 'a', 'c', 'b', 'e']) sim.seedUser({ userid: `${n}@example.com`, name: n.toUpperCase() });
    const first = await connection.directory.listPage();
    expect(first.accounts.map((a) => a.id)).toEqual(['a@example.com', 'b@example.com']);
    const second = await connection.directory.listPage(first.next);
    expect(second.accounts.map((a) => a.id)).toEqual(['c@example.com', 'd@example.com']);
    expect(sim.calls['user/list']).toBe(1);
    // Another container (a cold start) gets the cursor after a deletion and an addition before it.
    sim.users.delete('c@example.com');
    sim.seedUser({ userid: 'aa@example.com', name: 'AA' });
    const other = exmail.create(config, EXMAIL_SECRET, { sleep: async () => undefined });
    const third = await other.directory.listPage(second.next);
    expect(third.accounts.map((a) => a.id)).toEqual(['e@example.com']);
    expect(third.next).toBeUndefined();
    expect(sim.calls['user/list']).toBe(2);
    await expect(other.directory.listPage('not-a-cursor')).rejects.toMatchObject({ kind: 'invalid' });
  });
});
