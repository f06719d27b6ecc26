/**
 * The CLI speaks the terminal's language: LANG / LC_ALL / LC_MESSAGES choose the catalogue
 * (zh* → Chinese) for messages, usage errors, the help and table headers; `--json` and the
 * English output stay exactly as scripts know them. Run as a separate process, as an operator
 * runs it.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localizedReports } from '../../bin/cli/commands';
import { table, type Io } from '../../bin/cli/output';
import { MemoryReportSink, reportCsv, reportJson, type ReconcileReport } from '../../functions/sync/report';
import { HELP, main } from '../../bin/wecom-sync';

const CLI = resolve(import.meta.dirname, '../../bin/wecom-sync.ts');
const TSX = import.meta.resolve('tsx');

function run(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const { LANG: _l, LC_ALL: _a, LC_MESSAGES: _m, ...rest } = process.env;
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { env: { ...rest, VITEST: '', LOG_LEVEL: 'ERROR', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => ok({ code: code ?? -1, stdout, stderr }));
  });
}

function capture(locale?: 'zh-CN' | 'en') {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => void out.push(l), err: (l) => void err.push(l), tty: false, ...(locale ? { locale } : {}) };
  return { io, out, err };
}

describe('the CLI follows LANG', () => {
  it('LANG=zh_CN.UTF-8: the help and a usage error in Chinese; LANG=C.UTF-8: the English help, unchanged', async () => {
    const zh = await run(['--help'], { LANG: 'zh_CN.UTF-8' });
    expect(zh.code).toBe(0);
    expect(zh.stdout).toMatch(/^wecom-sync — 企业微信 ⇄ 邮箱 同步的运维命令/);
    expect(zh.stdout).toMatch(/^\s+64\s+用法错误/m);
    const bad = await run(['frobnicate'], { LC_ALL: 'zh_CN.UTF-8', LANG: 'en_US.UTF-8' });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain("未知命令 'frobnicate'");
    const c = await run(['--help'], { LANG: 'C.UTF-8' });
    expect(c.stdout.trimEnd()).toBe(HELP.trimEnd());
  }, 30_000);

  it('in process: an Io in Chinese gets Chinese usage errors; an Io without a locale stays English', async () => {
    const zh = capture('zh-CN');
    expect(await main(['audit', 'verify'], { io: zh.io, cwd: '/nonexistent' })).toBe(64);
    expect(zh.err.join('\n')).toContain('audit verify 需要 --all 或 --subject ID（二者不能同时使用）');
    const en = capture();
    expect(await main(['audit', 'verify'], { io: en.io, cwd: '/nonexistent' })).toBe(64);
    expect(en.err.join('\n')).toContain('audit verify needs --all or --subject ID (not both)');
  });

  it('table headers: the column names in English (as in --json), their labels in Chinese, still aligned', () => {
    const en = capture();
    table(en.io, [{ subject: 'user:zhangsan', status: 'held' }], ['subject', 'status']);
    expect(en.out[0]).toBe('subject        status');
    const zh = capture('zh-CN');
    table(zh.io, [{ subject: 'user:zhangsan', status: 'held' }], ['subject', 'status']);
    expect(zh.out[0]).toBe('对象           状态');
  });

  it('a reconcile run from a Chinese terminal writes its CSV with Chinese headers; the JSON is untouched', async () => {
    const report: ReconcileReport = {
      runId: 'r',
      startedAt: '2026-11-01T18:00:00.000Z',
      finishedAt: '2026-11-01T18:00:01.000Z',
      mode: 'report',
      counts: { wecomPeople: 1, mailboxAccounts: 1, managedAccounts: 1, departments: 1, inSync: 0, byClass: { 'missing-in-mailbox': 1 } },
      drift: 1,
      findings: [{ class: 'missing-in-mailbox', subject: 'user:lisi', userid: 'lisi' }],
    };
    const files = { csv: reportCsv(report), json: reportJson(report) };
    const sink = new MemoryReportSink();
    await localizedReports(sink, capture('zh-CN').io).write('n', files);
    expect(sink.written[0]!.csv.split('\n')[0]).toBe('\ufeff类别,对象,UserID,邮箱账号ID,部门ID,字段,详情,修复结果,执行的操作');
    expect(sink.written[0]!.json).toBe(files.json);
    const en = new MemoryReportSink();
    await localizedReports(en, capture().io).write('n', files);
    expect(en.written[0]!.csv).toBe(files.csv);
  });
});
