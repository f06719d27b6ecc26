/**
 * Identity and values: the link finds the account (exactly), two accounts on one link are an
 * error, values come back canonical (lower-case address, E.164 phones, CJK untouched), an
 * update sends only the keys it names, null clears, an admin-typed phone reads back as E.164.
 */
import { expect, it } from 'vitest';
import type { Subject } from '../conformance';
import { ouyang, zhangsan } from './people';

export function accountCases(t: Subject): void {
  it('create: the account is linked, live and canonical; findByEmployeeId and get return it', async () => {
    const created = await t.dir.create(zhangsan);
    expect(created).toMatchObject({ employeeId: 'zhangsan', enabled: true, email: 'zhangsan@example.com', displayName: '张三', mobile: '+8613800138000' });
    const found = await t.dir.findByEmployeeId('zhangsan');
    expect(found).toMatchObject({ id: created.id, employeeId: 'zhangsan', telephone: '+861088886666', jobTitle: '工程师', department: '技术部/研发组' });
    expect(found?.deleted).toBeFalsy();
    expect(await t.dir.get(created.id)).toMatchObject({ id: created.id, employeeId: 'zhangsan', enabled: true });
  });

  it('the link is exact: another case or a prefix finds nothing; an unknown id is undefined', async () => {
    await t.dir.create(zhangsan);
    expect(await t.dir.findByEmployeeId('ZhangSan')).toBeUndefined();
    expect(await t.dir.findByEmployeeId('zhang')).toBeUndefined();
    expect(await t.dir.findByEmployeeId("o'brien")).toBeUndefined(); // a quote is data, not syntax
    expect(await t.dir.get('00000000-0000-0000-0000-000000000000')).toBeUndefined();
  });

  it('two accounts on one link: findByEmployeeId refuses to pick (ambiguous, not retryable)', async () => {
    await t.dir.create(zhangsan);
    await t.dir.create({ ...zhangsan, email: 'zhangsan2@example.com' });
    await expect(t.dir.findByEmployeeId('zhangsan')).rejects.toMatchObject({ kind: 'ambiguous', retryable: false });
  });

  it('unicode names and paths survive the round trip; the address comes back lower-case', async () => {
    const a = await t.dir.create(ouyang);
    expect(await t.dir.get(a.id)).toMatchObject({ displayName: '欧阳娜娜', jobTitle: '产品经理', department: '市场部', email: 'ouyang.nana@example.com' });
    await t.dir.update(a.id, { displayName: '欧阳 娜娜', department: '市场部/华东区' });
    expect(await t.dir.findByEmployeeId('ouyangnana')).toMatchObject({ displayName: '欧阳 娜娜', department: '市场部/华东区' });
  });

  it('partial update: only the keys named go on the wire; an empty patch sends nothing', async () => {
    const a = await t.dir.create(zhangsan);
    t.probe.writes();
    await t.dir.update(a.id, { jobTitle: '高级工程师' });
    expect(t.probe.writes()).toEqual([{ op: 'update', fields: ['jobTitle'] }]);
    await t.dir.update(a.id, { mobile: '+8613700137000', department: '技术部' });
    expect(t.probe.writes().map((w) => [...w.fields].sort())).toEqual([['department', 'mobile']]);
    await t.dir.update(a.id, {});
    expect(t.probe.writes()).toEqual([]);
    expect(await t.dir.get(a.id)).toMatchObject({ jobTitle: '高级工程师', mobile: '+8613700137000', department: '技术部', displayName: '张三', telephone: '+861088886666' });
  });

  it('null clears; an absent key is left alone', async () => {
    const a = await t.dir.create(zhangsan);
    await t.dir.update(a.id, { mobile: null, telephone: null, jobTitle: null });
    expect(await t.dir.get(a.id)).toMatchObject({ mobile: null, telephone: null, jobTitle: null, department: '技术部/研发组', displayName: '张三' });
  });

  it('a phone an administrator typed in the console reads back as E.164', async () => {
    const a = await t.dir.create(zhangsan);
    await t.probe.adminSetMobile(a.id, '+86 138 0013 8000');
    expect((await t.dir.get(a.id))?.mobile).toBe('+8613800138000');
    expect((await t.dir.findByEmployeeId('zhangsan'))?.mobile).toBe('+8613800138000');
  });
}
