import { describe, expect, it } from 'vitest';
import { ConfigError, parseRuntimeConfig } from '../../functions/config/runtime';
import { CachedDepartmentTree, DepartmentTree, isUnder } from '../../functions/sync/departments';
import { diffContact } from '../../functions/sync/diff';
import { toMailboxInput } from '../../functions/sync/mapping';
import { normalizeEmail, normalizeMailboxAccount, normalizePhone, normalizeWecomUser } from '../../functions/sync/normalize';
import { applyProfile } from '../../functions/sync/policy';
import type { WecomDepartment } from '../../functions/wecom/contacts';

const DEPTS: WecomDepartment[] = [
  { id: 1, name: '示例公司', parentid: 0 },
  { id: 2, name: '技术部', parentid: 1 },
  { id: 3, name: ' 研发组 ', parentid: 2 },
  { id: 4, name: '财务部', parentid: 1 },
  { id: 5, name: '技术部2', parentid: 1 },
];
const tree = new DepartmentTree(DEPTS);
const config = parseRuntimeConfig({ provider: 'graph', mailDomain: 'Example.com' });
const opts = { departments: tree, addressRule: config.addressRule, mailDomain: config.mailDomain };

describe('normalizePhone', () => {
  it.each([
    ['138 0013 8000', '+8613800138000'],
    ['+86-138-0013-8000', '+8613800138000'],
    ['0086 138 0013 8000', '+8613800138000'],
    ['(+86) 13800138000', '+8613800138000'],
    ['１３８００１３８０００', '+8613800138000'],
    ['010-6552-9988', '+861065529988'],
    ['010-65529988-123', '+861065529988;ext=123'],
    ['+852 6123 4567', '+85261234567'],
  ])('%s → %s', (raw, e164) => {
    expect(normalizePhone(raw)).toEqual({ ok: true, e164 });
  });

  it.each(['call me maybe', '123', '=1+1', '', '138001380001234567890', '1380013800'])('rejects %j with a reason that does not echo it', (raw) => {
    const r = normalizePhone(raw);
    expect(r.ok).toBe(false);
    if (!r.ok && raw) expect(r.reason).not.toContain(raw);
  });
});

describe('normalizeEmail', () => {
  it('trims and lower-cases; rejects garbage', () => {
    expect(normalizeEmail('  Zhang.San@Example.COM ')).toEqual({ ok: true, email: 'zhang.san@example.com' });
    expect(normalizeEmail('not an address').ok).toBe(false);
    expect(normalizeEmail('a@b').ok).toBe(false);
  });
});

describe('DepartmentTree', () => {
  it('resolves full paths without the root, names trimmed; root is the empty path', () => {
    expect(tree.pathOf(3)).toBe('技术部/研发组');
    expect(tree.pathOf(1)).toBe('');
    expect(tree.pathOf(99)).toBeUndefined();
    expect(tree.idOfPath('技术部/研发组')).toBe(3);
  });

  it('reports duplicate paths instead of merging them; an orphan or a cycle has no path', () => {
    const t = new DepartmentTree([...DEPTS, { id: 6, name: '研发组', parentid: 2 }, { id: 7, name: 'x', parentid: 42 }, { id: 8, name: 'a', parentid: 9 }, { id: 9, name: 'b', parentid: 8 }]);
    expect(t.duplicates()).toEqual([{ path: '技术部/研发组', ids: [3, 6] }]);
    expect(t.idOfPath('技术部/研发组')).toBeUndefined(); // ambiguous
    expect(t.pathOf(7)).toBeUndefined();
    expect(t.pathOf(8)).toBeUndefined();
  });

  it('isUnder matches whole segments', () => {
    expect(isUnder('技术部/研发组', '技术部')).toBe(true);
    expect(isUnder('技术部2', '技术部')).toBe(false);
  });

  it('cache: one load for concurrent callers, reload after invalidate or age, failed loads not cached', async () => {
    let loads = 0;
    let fail = false;
    let now = 0;
    const cache = new CachedDepartmentTree(
      async () => {
        loads++;
        if (fail) throw new Error('down');
        return DEPTS;
      },
      { maxAgeMs: 1000, now: () => now },
    );
    await Promise.all([cache.get(), cache.get(), cache.get()]);
    expect(loads).toBe(1);
    cache.invalidate();
    await cache.get();
    expect(loads).toBe(2);
    now = 5000;
    fail = true;
    await expect(cache.get()).rejects.toThrow('down');
    fail = false;
    expect((await cache.get()).pathOf(3)).toBe('技术部/研发组');
    expect(loads).toBe(4);
  });
});

describe('normalizeWecomUser', () => {
  it('builds the canonical contact: E.164, address from the rule, paths main department first', () => {
    const { contact, problems } = normalizeWecomUser(
      { userid: 'ZhangSan', name: ' 张三 ', mobile: '138 0013 8000', position: '工程师', department: [4, 3], main_department: 3, enable: 1 },
      opts,
    );
    expect(problems).toEqual([]);
    expect(contact).toEqual({
      userid: 'ZhangSan',
      name: '张三',
      email: 'zhangsan@example.com',
      mobile: '+8613800138000',
      position: '工程师',
      departments: ['技术部/研发组', '财务部'],
      enabled: true,
    });
  });

  it('absent or empty sensitive fields are unknown (undefined), never empty', () => {
    const { contact } = normalizeWecomUser({ userid: 'u', name: 'U', mobile: '', telephone: '   ' }, opts);
    expect('mobile' in contact).toBe(false);
    expect('telephone' in contact).toBe(false);
    expect(contact.position).toBeUndefined();
  });

  it('an invalid phone or unmapped department is a problem and stays unknown; the rest is kept', () => {
    const { contact, problems } = normalizeWecomUser({ userid: 'u', name: 'U', mobile: 'call me', department: [3, 77], position: 'PM' }, opts);
    expect(problems.map((p) => p.field).sort()).toEqual(['departments', 'mobile']);
    expect(contact.mobile).toBeUndefined();
    expect(contact.departments).toBeUndefined();
    expect(contact.position).toBe('PM');
    expect(JSON.stringify(problems)).not.toContain('call me');
  });

  it('a business mail on our domain is the address; another domain is a personal email', () => {
    const a = normalizeWecomUser({ userid: 'u1', biz_mail: 'Zhang.San@example.com', email: 'zs@gmail.com' }, opts).contact;
    expect(a.email).toBe('zhang.san@example.com');
    expect(a.personalEmail).toBe('zs@gmail.com');
  });

  it('disabled or departed members are not enabled', () => {
    expect(normalizeWecomUser({ userid: 'a', enable: 0 }, opts).contact.enabled).toBe(false);
    expect(normalizeWecomUser({ userid: 'b', status: 5 }, opts).contact.enabled).toBe(false);
    expect(normalizeWecomUser({ userid: 'c' }, opts).contact.enabled).toBeUndefined();
  });
});

describe('normalizeMailboxAccount', () => {
  it('uses the same phone normalization and keeps null as null', () => {
    const c = normalizeMailboxAccount({ id: 'g1', employeeId: 'u', enabled: true, mobile: '+86 138-0013-8000', jobTitle: null, email: 'U@Example.com', department: '技术部' });
    expect(c).toEqual({ userid: 'u', enabled: true, mobile: '+8613800138000', position: null, email: 'u@example.com', departments: ['技术部'] });
  });
});

describe('applyProfile', () => {
  const contact = { userid: 'u', name: 'U', mobile: '+8613800138000', telephone: '+861065529988', address: '北京', departments: ['财务部'] };

  it('fields outside the profile are dropped (unknown), not cleared', () => {
    const { contact: c } = applyProfile(contact, config.profile);
    expect('address' in c).toBe(false);
    expect(c.mobile).toBe('+8613800138000');
    expect(c.departments).toEqual(['财务部']);
  });

  it('a protected department withholds its fields (cleared), and says why', () => {
    const p = parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', profile: { protectedDepartments: ['财务部'] } }).profile;
    const r = applyProfile(contact, p);
    expect(r.contact.mobile).toBeNull();
    expect(r.contact.telephone).toBeNull();
    expect(r.contact.name).toBe('U');
    expect(r.withheld).toEqual([
      { field: 'mobile', reason: 'protected department (财务部)' },
      { field: 'telephone', reason: 'protected department (财务部)' },
    ]);
  });

  it('abroad without approval: no sensitive field; with approval: all profile fields', () => {
    const abroad = parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', profile: { targetRegion: 'IE' } }).profile;
    const r = applyProfile({ ...contact, departments: ['技术部'] }, abroad);
    expect(r.contact.mobile).toBeNull();
    expect(r.withheld.every((w) => /cross-border/.test(w.reason))).toBe(true);
    const approved = applyProfile({ ...contact, departments: ['技术部'] }, { ...abroad, crossBorderApproved: true });
    expect(approved.contact.mobile).toBe('+8613800138000');
    expect(approved.withheld).toEqual([]);
  });

  it('scope: members outside scopeDepartments (or with unknown departments) are out of scope', () => {
    const p = parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', profile: { scopeDepartments: ['技术部'] } }).profile;
    expect(applyProfile({ userid: 'a', departments: ['技术部/研发组'] }, p).outOfScope).toBeUndefined();
    expect(applyProfile({ userid: 'b', departments: ['财务部'] }, p).outOfScope).toBe(true);
    expect(applyProfile({ userid: 'c' }, p).outOfScope).toBe(true);
  });
});

describe('diffContact', () => {
  it('unknown never erases; null clears only a value; order of departments matters; authority respected', () => {
    const current = { userid: 'u', name: 'U', mobile: '+8613800138000', position: 'PM', departments: ['a', 'b'] };
    expect(diffContact({ userid: 'u', name: 'U' }, current)).toEqual([]);
    expect(diffContact({ userid: 'u', mobile: null, telephone: null }, current)).toEqual([{ field: 'mobile', old: '+8613800138000', new: null }]);
    expect(diffContact({ userid: 'u', departments: ['b', 'a'] }, current)).toHaveLength(1);
    expect(diffContact({ userid: 'u', position: 'CTO' }, current, { position: 'mailbox' })).toEqual([]);
    expect(diffContact({ userid: 'u', extattr: { a: '1', b: '2' } }, { userid: 'u', extattr: { b: '2', a: '1' } })).toEqual([]);
  });
});

describe('toMailboxInput', () => {
  it('create sends known values only; a patch sends exactly the changed keys, null clears', () => {
    const c = { userid: 'u', name: 'U', email: 'u@example.com', mobile: null, position: 'PM', departments: ['技术部/研发组', '财务部'], address: 'x' };
    expect(toMailboxInput(c)).toEqual({ displayName: 'U', email: 'u@example.com', jobTitle: 'PM', department: '技术部/研发组' });
    expect(toMailboxInput(c, [{ field: 'mobile' }, { field: 'departments' }])).toEqual({ mobile: null, department: '技术部/研发组' });
  });
});

describe('parseRuntimeConfig', () => {
  it('fills defaults', () => {
    expect(config).toMatchObject({
      mailDomain: 'example.com',
      addressRule: '{userid}@{domain}',
      offboarding: { mode: 'disable-then-delete', graceDays: 30 },
      onboarding: { gate: true },
      reconcile: { maxDeletes: 20, maxDeletePercent: 5 },
      profile: { targetRegion: 'CN', crossBorderApproved: false, protectedFields: expect.arrayContaining(['mobile', 'telephone']) },
    });
  });

  it('a bad value is an error naming its path', () => {
    expect(() => parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', profile: { fields: ['mobile', 'shoeSize'] } })).toThrow(/profile\.fields\.1/);
    expect(() => parseRuntimeConfig({ provider: 'graph', mailDomain: 'not a domain' })).toThrow(/mailDomain/);
    expect(() => parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', offboarding: { graceDays: -1 } })).toThrow(/offboarding\.graceDays/);
    expect(() => parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', typo: 1 })).toThrow(ConfigError);
    expect(() => parseRuntimeConfig('{nope')).toThrow(/not valid JSON/);
  });
});
