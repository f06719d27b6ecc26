/**
 * CSV export and import in the columns of the official batch-import templates — WeCom's
 * here, each mailbox system's in its provider folder (functions/mailbox/csv-template.ts; the
 * Microsoft 365 one in mailbox/graph/csv.ts) — so an operator can hand the file to the
 * system's own importer, or check a file before doing so (issue 7, "CSV import and export
 * in the official templates"). The cell rules below apply to every template.
 *
 * ## Templates followed
 *
 * WeCom (企业微信), the admin console's member file import (通讯录 → 批量导入 → 文件导入 →
 * 下载文件模板, "通讯录批量导入模板"). WeCom's help text lists the template's fields as
 * 姓名、帐号 (formerly 英文ID)、别名、职务、部门、性别、手机、座机、个人邮箱 (and its export as
 * 姓名、帐号、别名、职务、部门、性别、手机 plus custom fields); departments are full paths there.
 * Columns written, in this order:
 *   姓名 | 帐号 | 别名 | 职务 | 部门 | 性别 | 手机 | 座机 | 个人邮箱 | 地址 | 企业邮箱 | 禁用
 * Not confirmed against a downloaded template (the console serves it as .xlsx behind a login):
 *   - the exact order, and 地址 (the API's `address`),
 *   - 企业邮箱 (the API's `biz_mail`, the mailbox address), our addition so a round trip keeps it,
 *   - 禁用 (0 enabled / 1 disabled): borrowed from the API batch template (batch/syncuser,
 *     "姓名,帐号,手机号,邮箱,所在部门,职位,性别,是否部门内领导,排序,别名,地址,座机,禁用"), which
 *     takes department IDs, not paths, and is therefore not the one followed here.
 *   WeCom treats unknown columns as custom fields (扩展属性), so on import any other column
 *   becomes `extattr`; 账号 and 英文ID are accepted as spellings of 帐号.
 *   WeCom's help marks 手机 and 部门 as required in the console; this module requires only
 *   帐号 and 姓名, because since 2022 WeCom withholds mobiles from apps and an export made
 *   through the API legitimately has none.
 *
 * A mailbox template (`--template m365` …) names mailboxes, not managed people: its rows carry
 * no userid (contact.userid is ''), its importer wants its exact headings (any other column
 * is refused), a department cell holds one path, and only the address must be unique in the
 * file. What each template's columns are, and why, is in its provider folder.
 *
 * ## Decisions
 * - UTF-8 with BOM and CRLF, so Excel opens Chinese text correctly; csv-stringify quotes,
 *   csv-parse parses (a cell may hold commas, quotes and newlines).
 * - Formula injection (CSV injection): a cell whose first character, or first
 *   non-blank character, is = + - @ TAB or CR is a formula to a spreadsheet.
 *   Export neutralizes it with a leading apostrophe. Import reports it as an error
 *   (and a cell that is an apostrophe-neutralized formula too: its value is not the data).
 * - Phones are the one place a leading '+' is data. Exported phones are E.164
 *   ('+8613800138000', the issue asks for international format, and both WeCom's and
 *   Microsoft's importers read it) and are written WITHOUT the apostrophe, but only when
 *   the cell is exactly '+' and digits (optionally ' ext ' and digits): such a cell cannot
 *   express a function call or a DDE link, so a spreadsheet can at worst read it as a
 *   number. Caveat, documented for operators: Excel opened by double-click may show it as
 *   8.61E+12 and drop the '+' if the file is saved again; open it through Data → From
 *   Text/CSV with the phone columns as Text. An apostrophe would instead corrupt the value
 *   for WeCom's and Microsoft's importers. A phone that does not normalize is exported as
 *   it is and neutralized like any other cell. On import a phone cell may start with '+'
 *   (validated as a phone) or with an apostrophe (stripped, then validated).
 * - Extensions: normalizePhone gives '+861012345678;ext=123' (RFC 3966); exported as
 *   '+861012345678 ext 123', which normalizePhone reads back.
 * - Line numbers are spreadsheet rows (header = 1; a cell with a newline is still one row;
 *   blank rows count but are not reported).
 * - Error reasons never contain a cell's value (it may be a mobile or an email): they name
 *   the column and the problem, and a duplicate names the earlier line.
 */
import { parse } from 'csv-parse/sync';
// Full metadata, for the import check only (the CLI, not a hot Lambda): the default 'min'
// metadata behind normalizePhone validates by length alone and accepts a mainland mobile with
// a digit missing ('1380013800' → +861380013800) as a valid number.
import { parsePhoneNumberFromString as parseFull } from 'libphonenumber-js/max';
import { stringify } from 'csv-stringify/sync';
import type { MailboxAccount } from '../mailbox/directory';
import type { CsvCell, CsvColumnSpec, MailboxCsvTemplate } from '../mailbox/csv-template';
import { MAILBOX_CSV_TEMPLATES } from '../mailbox/csv-templates';
import type { WecomDepartment, WecomUser } from '../wecom/contacts';
import { DepartmentTree } from './departments';
import type { Contact } from '../core/model';
import { normalizeEmail, normalizeName, normalizePhone } from './normalize';

/** 'wecom', or a mailbox template's name (MAILBOX_CSV_TEMPLATES: 'm365'). */
export type CsvTemplate = string;

export interface CsvImportRow {
  /** Spreadsheet row (header = 1). */
  line: number;
  /** The WeCom userid (帐号); absent for mailbox-template rows, which carry no link. */
  userid?: string;
  /** Valid fields only; an empty or invalid cell leaves its field unknown (undefined). */
  contact: Contact;
}

export interface CsvImportError {
  /** Spreadsheet row (header = 1). */
  line: number;
  /** The column header as in the file ('' for a file-level problem). */
  field: string;
  /** Never contains the cell's value. */
  reason: string;
}

export interface CsvImportResult {
  rows: CsvImportRow[];
  errors: CsvImportError[];
}

/** WeCom console member import template (see the header comment for what is confirmed). */
export const WECOM_COLUMNS = ['姓名', '帐号', '别名', '职务', '部门', '性别', '手机', '座机', '个人邮箱', '地址', '企业邮箱', '禁用'] as const;

const BOM = '\uFEFF';
const DEPARTMENT_SEPARATOR = ';';

// ------------------------------------------------------------------ formula safety

/** What a spreadsheet takes for the start of a formula (OWASP CSV injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;

function looksLikeFormula(cell: string): boolean {
  return FORMULA_START.test(cell) || FORMULA_START.test(cell.trimStart());
}

/** A canonical phone as we write it: '+' and digits, optionally ' ext ' and digits. Nothing else. */
const SAFE_PHONE = /^\+\d{5,15}(?: ext \d{1,6})?$/;

/** A cell for export: formulas are neutralized with a leading apostrophe. */
export function neutralizeCell(value: string): string {
  return looksLikeFormula(value) ? `'${value}` : value;
}

/** A phone for export: E.164 when it normalizes (kept as '+…', see the header), else neutralized as is. */
function phoneCell(raw: string | null | undefined): string {
  if (raw === undefined || raw === null || !raw.trim()) return '';
  const phone = normalizePhone(raw);
  if (phone.ok) {
    const text = phone.e164.replace(/;ext=(\d+)$/, ' ext $1');
    if (SAFE_PHONE.test(text)) return text;
  }
  return neutralizeCell(raw);
}

function textCell(value: string | null | undefined): string {
  return value === undefined || value === null ? '' : neutralizeCell(value);
}

function toCsv(header: readonly string[], rows: string[][]): string {
  // quoted_match: csv-stringify only quotes the configured record delimiter (CRLF), so a lone
  // LF or CR inside a cell would otherwise break the row.
  return stringify([[...header], ...rows], { bom: true, record_delimiter: '\r\n', quoted_match: /[\r\n]/ });
}

// ------------------------------------------------------------------ export

/** WeCom members in the console import template; departments as full paths (main first, ';'-separated). */
export function exportWecomCsv(users: WecomUser[], departments: WecomDepartment[]): string {
  const tree = new DepartmentTree(departments);
  const rows = users.map((u) => {
    const ids = u.department ?? [];
    const main = u.main_department !== undefined && ids.includes(u.main_department) ? u.main_department : ids[0];
    const ordered = main === undefined ? [] : [main, ...ids.filter((d) => d !== main)];
    const paths: string[] = [];
    for (const id of ordered) {
      // The root ('') is no department; an id that does not resolve is left out.
      const path = tree.pathOf(id);
      if (path && !paths.includes(path)) paths.push(path);
    }
    let disabled = '';
    if (u.enable !== undefined) disabled = u.enable === 1 ? '0' : '1';
    else if (u.status !== undefined) disabled = u.status === 2 || u.status === 5 ? '1' : '0';
    return [
      textCell(u.name),
      textCell(u.userid),
      '', // 别名: not in the data we read from WeCom
      textCell(u.position),
      textCell(paths.join(DEPARTMENT_SEPARATOR)),
      '', // 性别: not read from WeCom
      phoneCell(u.mobile),
      phoneCell(u.telephone),
      textCell(u.email?.trim()),
      textCell(u.address),
      textCell(u.biz_mail?.trim()),
      disabled,
    ];
  });
  return toCsv(WECOM_COLUMNS, rows);
}

/** Mailbox accounts in a mailbox system's import template. Deleted accounts are left out. */
export function exportMailboxCsv(accounts: MailboxAccount[], template: string): string {
  const t = mailboxTemplate(template);
  const cell = (c: CsvCell) => (c === '' ? '' : c.kind === 'phone' ? phoneCell(c.value) : textCell(c.value));
  return toCsv(t.columns, accounts.filter((a) => !a.deleted).map((a) => t.row(a).map(cell)));
}

function mailboxTemplate(name: string): MailboxCsvTemplate {
  const t = MAILBOX_CSV_TEMPLATES[name];
  if (!t) throw new Error(`unknown CSV template (expected wecom or ${Object.keys(MAILBOX_CSV_TEMPLATES).join(', ')})`);
  return t;
}

// ------------------------------------------------------------------ import

type FieldKind = CsvColumnSpec['kind'];
type ColumnSpec = CsvColumnSpec;

const WECOM_SPEC: ColumnSpec[] = [
  { names: ['姓名'], key: 'name', kind: 'text', required: true },
  { names: ['帐号', '账号', '英文ID'], key: 'userid', kind: 'text', required: true },
  { names: ['别名'], key: 'alias', kind: 'text' },
  { names: ['职务'], key: 'position', kind: 'text' },
  { names: ['部门'], key: 'departments', kind: 'text' },
  { names: ['性别'], key: 'gender', kind: 'text' },
  { names: ['手机'], key: 'mobile', kind: 'phone' },
  { names: ['座机'], key: 'telephone', kind: 'phone' },
  { names: ['个人邮箱'], key: 'personalEmail', kind: 'email' },
  { names: ['地址'], key: 'address', kind: 'text' },
  { names: ['企业邮箱'], key: 'email', kind: 'email' },
  { names: ['禁用'], key: 'disabled', kind: 'text' },
];

/** WeCom userid rule (API docs): 1–64 bytes of letters, digits and _-@. starting with a letter or digit. */
const WECOM_USERID = /^[A-Za-z0-9][A-Za-z0-9_\-@.]{0,63}$/;

const PARSE_ERRORS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted cell is never closed',
  INVALID_OPENING_QUOTE: 'a quote appears inside an unquoted cell',
  CSV_INVALID_CLOSING_QUOTE: 'unexpected characters after a closing quote',
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'unexpected characters after a closing quote',
};

interface Mapped {
  /** key → column index */
  index: Map<string, number>;
  /** column index → header, for columns outside the template (WeCom custom fields). */
  extra: Map<number, string>;
  headers: string[];
}

/** The fields the import reads into a contact; any other column of a mailbox template is only checked. */
const CONTACT_KEYS = new Set(['name', 'userid', 'position', 'departments', 'mobile', 'telephone', 'email', 'personalEmail', 'address', 'gender', 'disabled', 'alias']);

function mapHeader(header: string[], spec: ColumnSpec[], template: CsvTemplate, errors: CsvImportError[]): Mapped | undefined {
  const headers = header.map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
  const index = new Map<string, number>();
  const extra = new Map<number, string>();
  const seen = new Map<string, number>();
  headers.forEach((h, i) => {
    if (!h) return;
    if (seen.has(h)) {
      errors.push({ line: 1, field: h, reason: `column appears twice (columns ${seen.get(h)! + 1} and ${i + 1})` });
      return;
    }
    seen.set(h, i);
    const col = spec.find((c) => c.names.includes(h));
    if (col) {
      if (index.has(col.key)) errors.push({ line: 1, field: h, reason: `column is a second spelling of ${col.names[0]}` });
      else index.set(col.key, i);
    } else if (template === 'wecom') {
      // WeCom's template lets a corp add its custom fields (扩展属性) as extra columns.
      if (looksLikeFormula(h)) errors.push({ line: 1, field: `column ${i + 1}`, reason: 'header starts with a spreadsheet formula character' });
      else extra.set(i, h);
    } else {
      errors.push({ line: 1, field: h, reason: `column is not in ${mailboxTemplate(template).title} (its importer needs the exact sample headings)` });
    }
  });
  const missing = spec.filter((c) => c.required && !index.has(c.key));
  for (const c of missing) {
    const accepted = c.names.length > 1 ? ` (accepted: ${c.names.join(', ')})` : '';
    errors.push({ line: 1, field: c.names[0]!, reason: `required column ${c.names[0]} is missing from the header row${accepted}` });
  }
  return missing.length ? undefined : { index, extra, headers };
}

/**
 * Parse and validate a CSV in one of the templates. Every row is checked; the result holds
 * every non-blank row (with its valid fields) and one error per problem.
 *
 * @param knownDepartmentPaths when given, a department path not in it is an error.
 */
export function importCsv(text: string, template: CsvTemplate = 'wecom', knownDepartmentPaths?: Set<string>): CsvImportResult {
  const spec = template === 'wecom' ? WECOM_SPEC : mailboxTemplate(template).spec;
  const errors: CsvImportError[] = [];
  const rows: CsvImportRow[] = [];

  let records: string[][];
  try {
    records = parse(text.startsWith(BOM) ? text.slice(1) : text, {
      bom: true,
      relax_column_count: true,
      skip_empty_lines: false,
      record_delimiter: ['\r\n', '\n', '\r'],
    }) as string[][];
  } catch (err) {
    // csv-parse's messages can quote the offending cell: report the kind and the file line only.
    const e = err as { code?: string; lines?: number };
    const what = (e.code && PARSE_ERRORS[e.code]) ?? 'the file is not valid CSV';
    return { rows, errors: [{ line: e.lines ?? 1, field: '', reason: `${what} (near text line ${e.lines ?? '?'} of the file)` }] };
  }

  const header = records[0];
  if (!header || header.every((c) => !c.trim())) {
    return { rows, errors: [{ line: 1, field: '', reason: 'the file has no header row' }] };
  }
  const mapped = mapHeader(header, spec, template, errors);
  if (!mapped) return { rows, errors };

  const firstLine = { userid: new Map<string, number>(), mobile: new Map<string, number>(), email: new Map<string, number>() };

  for (let r = 1; r < records.length; r++) {
    const record = records[r]!;
    const line = r + 1;
    if (record.every((c) => !c.trim())) continue; // a blank spreadsheet row
    if (record.length > header.length && record.slice(header.length).some((c) => c.trim())) {
      errors.push({ line, field: '', reason: `row has ${record.length} cells but the header has ${header.length} columns` });
    }
    const rowErrors: CsvImportError[] = [];
    const fail = (field: string, reason: string): void => {
      rowErrors.push({ line, field, reason });
    };
    const headerOf = (key: string): string => mapped.headers[mapped.index.get(key)!]!;

    /** The cell of a column: undefined when absent/blank or invalid (the error is recorded). */
    const cell = (key: string): string | undefined => {
      const i = mapped.index.get(key);
      if (i === undefined) return undefined;
      const col = spec.find((c) => c.key === key)!;
      return checkCell(record[i] ?? '', col.kind, headerOf(key), fail);
    };

    const contact: Contact = { userid: '' };
    let userid: string | undefined;

    const name = cell('name');
    if (name !== undefined) {
      const n = normalizeName(name);
      if (n.length > 64 && template === 'wecom') fail(headerOf('name'), 'name is longer than 64 characters');
      else contact.name = n;
    } else if (isBlank(record, mapped.index.get('name'))) fail(headerOf('name'), 'required value is empty');

    if (template === 'wecom') {
      const id = cell('userid');
      if (id !== undefined) {
        const trimmed = id.trim();
        if (!WECOM_USERID.test(trimmed) || Buffer.byteLength(trimmed) > 64) {
          fail(headerOf('userid'), 'userid must be 1-64 letters, digits or _-@. and start with a letter or digit');
        } else {
          userid = trimmed;
          contact.userid = trimmed;
          // WeCom userids are case-insensitive.
          dup(firstLine.userid, trimmed.toLowerCase(), line, headerOf('userid'), 'userid', fail);
        }
      } else if (isBlank(record, mapped.index.get('userid'))) fail(headerOf('userid'), 'required value is empty');
    }

    const position = cell('position');
    if (position !== undefined) {
      const p = normalizeName(position);
      if (p.length > 128) fail(headerOf('position'), 'position is longer than 128 characters');
      else contact.position = p;
    }

    const depts = cell('departments');
    if (depts !== undefined) {
      const column = headerOf('departments');
      const parts = template === 'wecom' ? depts.split(DEPARTMENT_SEPARATOR) : [depts];
      const paths: string[] = [];
      let bad = false;
      for (const [n, part] of parts.entries()) {
        const path = part
          .split('/')
          .map((s) => s.trim().replace(/\s+/g, ' '))
          .join('/');
        if (!path) continue;
        if (path.split('/').some((s) => !s)) {
          fail(column, 'department path has an empty segment');
          bad = true;
        } else if (knownDepartmentPaths && !knownDepartmentPaths.has(path)) {
          fail(column, `department path ${n + 1} of this cell is not a known department`);
          bad = true;
        } else if (!paths.includes(path)) paths.push(path);
      }
      // A partial list would move the person out of a department: all or nothing.
      if (!bad && paths.length) contact.departments = paths;
    }

    for (const key of ['mobile', 'telephone'] as const) {
      const v = cell(key);
      if (v === undefined) continue;
      const phone = strictPhone(v, key === 'mobile');
      if (!phone.ok) {
        fail(headerOf(key), `${key} is ${phone.reason}`);
        continue;
      }
      contact[key] = phone.e164;
      if (key === 'mobile') dup(firstLine.mobile, phone.e164, line, headerOf(key), 'mobile', fail);
    }
    if (template !== 'wecom') {
      // A mailbox template's other phone columns (Microsoft 365: Fax) are checked, not imported.
      for (const col of spec.filter((c) => c.kind === 'phone' && !CONTACT_KEYS.has(c.key))) {
        const v = cell(col.key);
        if (v === undefined) continue;
        const phone = strictPhone(v, false);
        if (!phone.ok) fail(headerOf(col.key), `${col.names[0]!.toLowerCase()} is ${phone.reason}`);
      }
    }

    for (const key of ['email', 'personalEmail'] as const) {
      const v = cell(key);
      if (v === undefined) {
        if (spec.find((c) => c.key === key)?.required && isBlank(record, mapped.index.get(key))) fail(headerOf(key), 'required value is empty');
        continue;
      }
      const email = normalizeEmail(v);
      if (!email.ok) {
        fail(headerOf(key), `${key === 'email' ? 'email' : 'personal email'} is ${email.reason}`);
        continue;
      }
      contact[key] = email.email;
      // WeCom: business and personal addresses are both unique in the corp. A mailbox
      // template: only the sign-in address is (Microsoft 365's own sample shares an alternate one).
      if (template === 'wecom' || key === 'email') dup(firstLine.email, email.email, line, headerOf(key), 'email', fail);
    }

    const address = cell('address');
    if (address !== undefined) contact.address = address.trim();

    if (template === 'wecom') {
      const gender = cell('gender');
      if (gender !== undefined && !['男', '女', '1', '2'].includes(gender.trim())) fail(headerOf('gender'), 'gender must be 男 or 女');
      const disabled = cell('disabled');
      if (disabled !== undefined) {
        const d = disabled.trim();
        if (d === '0') contact.enabled = true;
        else if (d === '1') contact.enabled = false;
        else fail(headerOf('disabled'), 'must be 0 (enabled) or 1 (disabled)');
      }
      const attrs: Record<string, string> = {};
      for (const [i, h] of mapped.extra) {
        const v = checkCell(record[i] ?? '', 'text', h, fail);
        if (v !== undefined) attrs[h] = v.trim();
      }
      if (Object.keys(attrs).length) contact.extattr = attrs;
    } else {
      // Columns of the template outside our model: checked for formulas, not imported.
      for (const col of spec.filter((c) => c.kind === 'text' && !CONTACT_KEYS.has(c.key))) cell(col.key);
    }

    errors.push(...rowErrors);
    rows.push(userid === undefined ? { line, contact } : { line, userid, contact });
  }
  return { rows, errors };
}

/** normalizePhone (the same canonical form as everywhere), then a check against the full metadata. */
function strictPhone(raw: string, mobile: boolean): { ok: true; e164: string } | { ok: false; reason: string } {
  const phone = normalizePhone(raw);
  if (!phone.ok) return phone;
  const full = parseFull(phone.e164.replace(/;ext=\d+$/, ''));
  if (!full?.isValid()) return { ok: false, reason: 'not a valid phone number' };
  const type = full.getType();
  if (mobile && type !== undefined && type !== 'MOBILE' && type !== 'FIXED_LINE_OR_MOBILE') return { ok: false, reason: 'not a mobile number' };
  return phone;
}

function isBlank(record: string[], i: number | undefined): boolean {
  return i !== undefined && !(record[i] ?? '').trim();
}

/**
 * One cell's safety check. Returns the value, or undefined when blank or refused (then the
 * reason is recorded without the value).
 */
function checkCell(raw: string, kind: FieldKind, column: string, fail: (field: string, reason: string) => void): string | undefined {
  if (!raw.trim()) return undefined;
  let value = raw;
  if (kind === 'phone') {
    // Spreadsheets often keep phones as text with a leading apostrophe; '+' is data here.
    if (value.startsWith("'")) value = value.slice(1);
    const t = value.trim();
    if (/^[=\-@]/.test(t) || /^[\t\r]/.test(value)) {
      fail(column, 'cell starts with a spreadsheet formula character');
      return undefined;
    }
    return t;
  }
  if (looksLikeFormula(value)) {
    fail(column, 'cell starts with a spreadsheet formula character (=, +, -, @, tab or CR)');
    return undefined;
  }
  if (/^'\s*[=+\-@]/.test(value)) {
    fail(column, 'cell is a neutralized formula (leading apostrophe): enter the intended value instead');
    return undefined;
  }
  return value;
}

function dup(
  first: Map<string, number>,
  key: string,
  line: number,
  column: string,
  what: string,
  fail: (field: string, reason: string) => void,
): void {
  const earlier = first.get(key);
  if (earlier === line) return; // the same value twice in one row (e.g. business = personal address)
  if (earlier !== undefined) fail(column, `duplicate ${what}: same as line ${earlier}`);
  else first.set(key, line);
}

// ------------------------------------------------------------------ named entry points

/** The Microsoft 365 template's columns and export, under the names the CLI probes for (bin/cli/commands.ts). */
export const M365_COLUMNS = mailboxTemplate('m365').columns;

export function exportM365Csv(accounts: MailboxAccount[]): string {
  return exportMailboxCsv(accounts, 'm365');
}
