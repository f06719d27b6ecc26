/**
 * Directory API JSON ↔ MailboxAccount (mailbox/google/wire.ts): where each port field lives,
 * E.164 read-back, names split for Google's required givenName / familyName, arrays written
 * whole while keeping the entries that are not ours, `null` for an emptied array, the link's
 * type, search quoting, org unit mapping.
 */
import { describe, expect, it } from 'vitest';
import { orgUnitFor } from '../../functions/mailbox/google/config';
import { quoteQueryValue, splitName, toAccount, userBody, writtenPortFields, type GoogleUserWire } from '../../functions/mailbox/google/wire';

const ORG = { type: 'organization' as const };
const CUSTOM = { type: 'custom' as const, customType: 'wecom' };

const wire: GoogleUserWire = {
  id: '104',
  primaryEmail: 'ZhangSan@Example.com',
  name: { givenName: '三', familyName: '张', fullName: '三 张', displayName: '张三' },
  suspended: false,
  externalIds: [
    { type: 'organization', value: 'E-1001' }, // an HR system's, under the default type
    { type: 'custom', customType: 'wecom', value: 'zhangsan' },
  ],
  phones: [
    { type: 'home', value: '+86 10 1234 5678' },
    { type: 'mobile', value: '+86 138 0013 8000', primary: true },
    { type: 'work', value: '+86 10 8888 6666' },
  ],
  organizations: [{ primary: true, type: 'work', title: '工程师', department: '技术部/研发组', costCenter: 'R&D' }],
  includeInGlobalAddressList: false,
};

describe('google wire', () => {
  it('reads every port field from its place; phones come back E.164; the link is the configured type', () => {
    expect(toAccount(wire, CUSTOM)).toEqual({
      id: '104',
      employeeId: 'zhangsan',
      enabled: true,
      displayName: '张三',
      email: 'zhangsan@example.com',
      mailNickname: 'zhangsan',
      mobile: '+8613800138000',
      telephone: '+861088886666',
      jobTitle: '工程师',
      department: '技术部/研发组',
      showInAddressList: false,
      kind: 'member',
    });
    expect(toAccount(wire, ORG).employeeId).toBe('E-1001');
    expect(toAccount({ ...wire, suspended: true }, CUSTOM).enabled).toBe(false);
    expect(toAccount({ ...wire, archived: true }, CUSTOM).enabled).toBe(false);
    expect(toAccount({ id: '1', primaryEmail: 'a@example.com', name: { fullName: 'A B' } }, ORG)).toMatchObject({ displayName: 'A B', mobile: null, jobTitle: null, department: null });
  });

  it('splits names: CJK surname first (two-character surnames known), Latin family name last, one word fills both', () => {
    expect(splitName('张三')).toEqual({ familyName: '张', givenName: '三' });
    expect(splitName('欧阳娜娜')).toEqual({ familyName: '欧阳', givenName: '娜娜' });
    expect(splitName('欧阳 娜娜')).toEqual({ familyName: '欧阳', givenName: '娜娜' });
    expect(splitName('Anna Maria Schmidt')).toEqual({ familyName: 'Schmidt', givenName: 'Anna Maria' });
    expect(splitName('Cher')).toEqual({ familyName: 'Cher', givenName: 'Cher' });
    expect(splitName('王')).toEqual({ familyName: '王', givenName: '王' });
    expect([...splitName('x'.repeat(80)).givenName]).toHaveLength(60);
  });

  it('arrays are written whole, keeping what is not ours; only the named keys go on the wire', () => {
    const body = userBody({ mobile: '+8613700137000', jobTitle: '高级工程师' }, { link: CUSTOM, domain: 'example.com', current: wire });
    expect(Object.keys(body).sort()).toEqual(['organizations', 'phones']);
    expect(body.phones).toEqual([
      { type: 'home', value: '+86 10 1234 5678' },
      { type: 'work', value: '+86 10 8888 6666' },
      { type: 'mobile', value: '+8613700137000', primary: true },
    ]);
    expect(body.organizations).toEqual([{ primary: true, type: 'work', title: '高级工程师', department: '技术部/研发组', costCenter: 'R&D' }]);
    expect(writtenPortFields(body, wire, CUSTOM).sort()).toEqual(['jobTitle', 'mobile']);
    const link = userBody({ employeeId: 'zhangsan2' }, { link: CUSTOM, domain: 'example.com', current: wire });
    expect(link.externalIds).toEqual([{ type: 'organization', value: 'E-1001' }, { type: 'custom', customType: 'wecom', value: 'zhangsan2' }]);
  });

  it('null clears: an emptied array is sent as null (users.update clears it), an emptied organization entry is dropped', () => {
    const bare: GoogleUserWire = { id: '1', phones: [{ type: 'mobile', value: '+8613800138000' }], organizations: [{ primary: true, type: 'work', title: 'x' }] };
    expect(userBody({ mobile: null, telephone: null, jobTitle: null }, { link: ORG, domain: 'example.com', current: bare })).toEqual({ phones: null, organizations: null });
  });

  it('the rest: suspended, the name parts, the address on the tenant domain, the address list; an empty name is refused', () => {
    expect(userBody({ enabled: false, displayName: '李四', email: 'LiSi@other.org', showInAddressList: false }, { link: ORG, domain: 'Example.com' })).toEqual({
      suspended: true,
      name: { familyName: '李', givenName: '四', displayName: '李四' },
      primaryEmail: 'lisi@example.com',
      includeInGlobalAddressList: false,
    });
    expect(() => userBody({ displayName: null }, { link: ORG, domain: 'example.com' })).toThrow(expect.objectContaining({ kind: 'invalid' }));
    expect(() => userBody({ displayName: '  ' }, { link: ORG, domain: 'example.com' })).toThrow(expect.objectContaining({ kind: 'invalid' }));
  });

  it('search values are quoted, a quote or backslash escaped', () => {
    expect(quoteQueryValue("o'brien")).toBe("'o\\'brien'");
    expect(quoteQueryValue('a\\b c')).toBe("'a\\\\b c'");
  });

  it('org units: the longest mapped prefix of the department path; nothing mapped = nothing set', () => {
    const map = { 技术部: '/Engineering', '技术部/研发组': '/Engineering/R&D' };
    expect(orgUnitFor('技术部/研发组/前端', map)).toBe('/Engineering/R&D');
    expect(orgUnitFor('技术部/运维组', map)).toBe('/Engineering');
    expect(orgUnitFor('技术部门', map)).toBeUndefined();
    expect(orgUnitFor('市场部', map)).toBeUndefined();
    expect(orgUnitFor('技术部', undefined)).toBeUndefined();
  });
});
