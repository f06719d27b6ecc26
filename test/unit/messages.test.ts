/**
 * The one message catalogue (functions/core/messages): both languages have the same keys and
 * the same placeholders, nothing is left untranslated by accident, every key the code asks
 * for exists and every key is asked for by some code, every domain value that is shown
 * through a key family (actions, fields, drift classes, settings …) has its entry, and the
 * locale is chosen the way the CLI (LANG) and the console (Accept-Language) say.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOGUE, LOCALES, isMessageKey, localeFromEnv, localeOf, message, negotiateLocale } from '../../functions/core/messages';
import { CONTACT_FIELDS } from '../../functions/core/model';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { CSV_COLUMNS, DRIFT_CLASSES, csvHeader, reportCsv, type ReconcileReport } from '../../functions/sync/report';
import { ACTION_GROUPS, AUDIT_ACTIONS } from '../../bin/console/data/activity';
import { CONFIG_PATHS, flatten } from '../../bin/console/data/config';

const ROOT = resolve(import.meta.dirname, '../..');
const en = CATALOGUE.en;
const zh = CATALOGUE['zh-CN'];
const placeholders = (text: string) => [...text.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]).sort();

/** Where the catalogue is used: the CLI, the console, the report module. */
function sources(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : /\.(ts|js)$/.test(n) ? [p] : [];
    });
  return [...walk(join(ROOT, 'bin/cli')), ...walk(join(ROOT, 'bin/console')), join(ROOT, 'bin/wecom-sync.ts'), join(ROOT, 'functions/sync/report.ts')];
}

const FAMILIES = /^(?:cli|console|col|report|action|field|target|drift|decision|member|account|state|held|config)\./;

/**
 * `asked`: keys written out where a message is looked up (`t('…')`, `label(ctx, '…', …)`,
 * `message(l, '…')`, `key: '…'`) — each must exist. `quoted`: every quoted string in the
 * sources (a key chosen by a condition counts as used). `prefixes`: the fixed start of each
 * template key (`drift.${c}` → `drift.`), whose family must have entries.
 */
function usage(): { asked: Map<string, string>; quoted: Set<string>; prefixes: Set<string> } {
  const asked = new Map<string, string>();
  const quoted = new Set<string>();
  const prefixes = new Set<string>();
  const call = /(?:\bt|label\(ctx,|message\([\w'-]+,|\bkey:)\s*\(?\s*'([^']+)'/g;
  for (const file of sources()) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(call)) asked.set(m[1]!, relative(ROOT, file));
    for (const m of text.matchAll(/'([^'\n]+)'/g)) quoted.add(m[1]!);
    for (const m of text.matchAll(/`([a-z][A-Za-z.-]*\.)\$\{/g)) if (FAMILIES.test(m[1]!)) prefixes.add(m[1]!);
  }
  return { asked, quoted, prefixes };
}

describe('message catalogue', () => {
  it('English and Chinese have exactly the same keys, none empty', () => {
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    for (const locale of LOCALES) for (const [k, v] of Object.entries(CATALOGUE[locale])) expect(v.trim(), `${locale} ${k}`).not.toBe('');
  });

  it('each key has the same placeholders in both languages', () => {
    const differ = Object.keys(en).filter((k) => placeholders(en[k as keyof typeof en]).join() !== placeholders(zh[k as keyof typeof zh]).join());
    expect(differ).toEqual([]);
  });

  it('nothing is left in English on the Chinese side, except identifiers that read the same', () => {
    const same = Object.keys(en).filter((k) => en[k as keyof typeof en] === zh[k as keyof typeof zh]);
    expect(same.sort()).toEqual(['col.id', 'col.userid']);
  });

  it('every key the code uses exists, and every key is used (directly or by a key family)', () => {
    const { asked, quoted, prefixes } = usage();
    const missing = [...asked].filter(([k]) => !isMessageKey(k)).map(([k, f]) => `${f}: ${k}`);
    expect(missing).toEqual([]);
    expect(asked.size).toBeGreaterThan(200);
    expect([...prefixes].sort()).toEqual(expect.arrayContaining(['action.', 'col.', 'config.', 'drift.', 'field.']));
    for (const p of prefixes) expect(Object.keys(en).some((k) => k.startsWith(p)), `template key family '${p}…' has no entry`).toBe(true);
    const unused = Object.keys(en).filter((k) => !asked.has(k) && !quoted.has(k) && ![...prefixes].some((p) => k.startsWith(p)));
    expect(unused).toEqual([]);
  });

  it('every domain value shown through a key family has its entry', () => {
    const need = [
      ...AUDIT_ACTIONS.map((a) => `action.${a}`),
      ...[...CONTACT_FIELDS, 'enabled'].map((f) => `field.${f}`),
      ...DRIFT_CLASSES.map((c) => `drift.${c}`),
      ...CSV_COLUMNS.map((c) => `report.column.${c}`),
      ...ACTION_GROUPS.map((g) => `console.group.${g}`),
      ...['wecom-token:contacts', 'wecom-token:app', 'graph-token', 'graph-subscription', 'google-token', 'google-channel', 'exmail-token', 'exmail-log-token', 'ldap-bind', 'dead-letters', 'queue'].map((c) => `console.check.${c}`),
      ...['report', 'repair-dry-run', 'repair'].flatMap((m) => [`report.mode.${m}`, `cli.mode.${m}`]),
      ...['ok', 'error', 'refused', 'dry-run'].map((o) => `console.outcome.${o}`),
    ];
    expect(need.filter((k) => !isMessageKey(k))).toEqual([]);
  });

  it('every runtime setting is explained (a new setting needs its config.<path> entry in functions/core/messages)', () => {
    const defaults = Object.keys(flatten(parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com' })));
    const explained = [...CONFIG_PATHS, ...defaults].filter((p) => !isMessageKey(`config.${p}`));
    expect(explained).toEqual([]);
  });

  it('fills placeholders, and leaves a missing one visible', () => {
    expect(message('en', 'cli.dlq.redriven', { n: 3 })).toBe('3 message(s) sent back to the work queue');
    expect(message('zh-CN', 'cli.dlq.redriven', { n: 3 })).toBe('3 条消息已送回工作队列');
    expect(message('en', 'cli.dlq.redriven', {})).toBe('{n} message(s) sent back to the work queue');
  });
});

describe('choosing the language', () => {
  it('the CLI follows LC_ALL, then LC_MESSAGES, then LANG (POSIX order); zh* is Chinese', () => {
    expect(localeFromEnv({})).toBe('en');
    expect(localeFromEnv({ LANG: 'C.UTF-8' })).toBe('en');
    expect(localeFromEnv({ LANG: 'zh_CN.UTF-8' })).toBe('zh-CN');
    expect(localeFromEnv({ LANG: 'zh_CN.UTF-8', LC_ALL: 'en_US.UTF-8' })).toBe('en');
    expect(localeFromEnv({ LANG: 'en_US.UTF-8', LC_MESSAGES: 'zh_CN.GB18030' })).toBe('zh-CN');
    expect(localeOf('zh_SG')).toBe('zh-CN');
    expect(localeOf('POSIX')).toBeUndefined();
  });

  it('the console follows Accept-Language by quality, then order', () => {
    expect(negotiateLocale(undefined)).toBe('en');
    expect(negotiateLocale('zh-CN,zh;q=0.9,en;q=0.8')).toBe('zh-CN');
    expect(negotiateLocale('en-GB,en;q=0.9,zh-CN;q=0.8')).toBe('en');
    expect(negotiateLocale('fr-FR, zh;q=0.5, en;q=0.4')).toBe('zh-CN');
    expect(negotiateLocale('de, en;q=0')).toBe('en'); // fallback: nothing we speak is acceptable
    expect(negotiateLocale('zh-TW;q=0.2, en;q=0.9')).toBe('en');
  });
});

describe('reconcile report headers through the catalogue', () => {
  const report: ReconcileReport = {
    runId: 'r',
    startedAt: '2026-11-01T18:00:00.000Z',
    finishedAt: '2026-11-01T18:00:01.000Z',
    mode: 'report',
    counts: { wecomPeople: 1, mailboxAccounts: 1, managedAccounts: 1, departments: 1, inSync: 0, byClass: { 'fields-differ': 1 } },
    drift: 1,
    findings: [{ class: 'fields-differ', subject: 'user:zhangsan', userid: 'zhangsan', fields: ['position'] }],
  };

  it('English headers are the column names (unchanged for scripts); Chinese ones are translated, the cells are not', () => {
    expect(csvHeader('en')).toEqual([...CSV_COLUMNS]);
    const zhCsv = reportCsv(report, 'zh-CN').replace(/^\ufeff/, '').split('\n');
    expect(zhCsv[0]).toBe('类别,对象,UserID,邮箱账号ID,部门ID,字段,详情,修复结果,执行的操作');
    expect(zhCsv[1]).toBe('fields-differ,user:zhangsan,zhangsan,,,position,,,');
    expect(reportCsv(report)).toBe(reportCsv(report, 'en'));
  });
});
