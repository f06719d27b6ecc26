/**
 * The operator CLI end to end: the real local stack (bin/local/stack.ts: simulators, dynalite,
 * queue, worker) writes .data/local-stack.json into a scratch directory; the CLI is spawned as
 * a separate process (`node --import tsx bin/wecom-sync.ts …`) with that directory as its
 * working directory, exactly as an operator runs it. Exit codes and --json output are checked.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../bin/local/stack';
import { runCli } from '../support/cli-process';
import { startTestStack } from '../support/test-stack';

const cli = (cwd: string, ...args: string[]) => runCli(cwd, args);

let cwd: string;
let empty: string;
let stack: LocalStack;

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'cli-e2e-'));
  empty = mkdtempSync(join(tmpdir(), 'cli-empty-'));
  mkdirSync(join(cwd, '.data'));
  stack = await startTestStack(join(cwd, '.data'));
  const sim = stack.wecomSim!;
  sim.departments.set(1, { id: 1, name: 'Root', parentid: 0 } as never);
  sim.departments.set(2, { id: 2, name: '技术部', parentid: 1 } as never);
  for (const userid of ['zhangsan', 'lisi']) {
    const res = await fetch(`${stack.baseUrl}/_sim/wecom/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userid, name: userid.toUpperCase(), mobile: '+8613800138000'.replace('000', userid === 'lisi' ? '111' : '000'), department: [2], position: 'Engineer' }),
    });
    expect(res.status).toBeLessThan(300);
  }
  await stack.settle();
}, 60_000);

afterAll(async () => {
  await stack?.close();
  rmSync(cwd, { recursive: true, force: true });
  rmSync(empty, { recursive: true, force: true });
});

describe('wecom-sync CLI against the local stack', () => {
  it('--help documents the exit codes (0)', async () => {
    const r = await cli(empty, '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/exit codes[\s\S]*64\s+usage error/);
  });

  it('usage errors exit 64 without touching a stack', async () => {
    expect((await cli(empty, 'frobnicate')).code).toBe(64);
    expect((await cli(empty, 'audit')).code).toBe(64);
    expect((await cli(empty, 'reconcile', '--apply')).code).toBe(64);
    expect((await cli(empty, 'dlq', 'purge')).code).toBe(64);
    expect((await cli(empty, 'reconcile', '--subject', 'x')).code).toBe(64);
  }, 30_000);

  it('without a running stack: clear error, exit 1', async () => {
    const r = await cli(empty, 'status');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('local stack not running: start it with `npm start`');
  });

  it('status --json: queue, subscription, token health (0 when healthy)', async () => {
    const r = await cli(cwd, 'status', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.queue).toEqual({ depth: 0, deadLetters: 0 });
    expect(s.subscription.hoursLeft).toBeGreaterThan(24);
    expect(s.health.checks.map((c: { name: string; ok: boolean }) => `${c.name}:${c.ok}`)).toEqual(
      expect.arrayContaining(['wecom-token:contacts:true', 'wecom-token:app:true', 'graph-token:true', 'graph-subscription:true']),
    );
  }, 30_000);

  it('reconcile: 0 in sync; 2 with drift; --repair is a dry run; --repair --apply fixes it', async () => {
    let r = await cli(cwd, 'reconcile', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).drift).toBe(0);

    (stack.wecomSim!.users.get('lisi') as { position: string }).position = 'Architect'; // admin edit, no event
    r = await cli(cwd, 'reconcile', '--json');
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout);
    expect(report.findings).toContainEqual(expect.objectContaining({ class: 'fields-differ', userid: 'lisi', fields: ['position'] }));
    expect(r.stdout).not.toContain('+86138');

    r = await cli(cwd, 'reconcile', '--repair');
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('dry run: nothing was written');

    r = await cli(cwd, 'reconcile', '--repair', '--apply', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).findings.find((f: { userid?: string }) => f.userid === 'lisi').repair).toBe('applied');

    r = await cli(cwd, 'reconcile');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no drift/);
    expect(readdirSync(join(cwd, '.data', 'reports')).filter((f) => f.endsWith('.csv')).length).toBeGreaterThanOrEqual(4);
  }, 90_000);

  it('audit --json: records of a subject with the chain verified', async () => {
    const r = await cli(cwd, 'audit', '--subject', 'user:lisi', '--json');
    expect(r.code).toBe(0);
    const a = JSON.parse(r.stdout);
    expect(a.chain.ok).toBe(true);
    expect(a.records.map((x: { action: string }) => x.action)).toContain('create');
    expect(a.records.some((x: { operator: string; outcome: string }) => x.operator === 'cli:e2e' && x.outcome === 'ok')).toBe(true);
    expect(r.stdout).not.toMatch(/\+86138\d{8}/);
    const table = await cli(cwd, 'audit', '--subject', 'user:lisi');
    expect(table.stdout).toContain('chain: verified');
  }, 30_000);

  it('dlq list / redrive', async () => {
    let r = await cli(cwd, 'dlq', 'list', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    await stack.queue.park(
      { v: 1, subject: 'user:zhangsan', source: 'wecom', eventId: 'evt-dead', operator: 'wecom-callback', receivedAt: new Date().toISOString() },
      'WeCom user/get failed: errcode 60020',
    );
    r = await cli(cwd, 'dlq', 'list', '--json');
    const [parked] = JSON.parse(r.stdout) as Array<{ id: string }>;
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ eventId: 'evt-dead', subject: 'user:zhangsan', reason: 'WeCom user/get failed: errcode 60020' })]);
    r = await cli(cwd, 'dlq', 'redrive', '--id', 'nope');
    expect(r.code).toBe(1);
    r = await cli(cwd, 'dlq', 'redrive', '--id', parked!.id, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ redriven: 1 });
    await stack.settle();
    expect(stack.queue.deadLetters).toHaveLength(0);
  }, 30_000);
  it('export-csv → import-csv: the WeCom template round-trips; --apply bootstraps a new person through the engine', async () => {
    const out = join(cwd, 'members.csv');
    let r = await cli(cwd, 'export-csv', '--source', 'wecom', '--out', out);
    expect(r.code).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text.startsWith('\ufeff')).toBe(true);
    expect(text).toContain('+8613800138000'); // international format
    expect(statSync(out).mode & 0o777).toBe(0o600);

    r = await cli(cwd, 'import-csv', out, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ people: 2, errors: [], applied: false });

    // A new person, plus a formula cell and a bad phone: refused with line numbers, nothing applied.
    const header = text.replace('\ufeff', '').split('\r\n')[0]!;
    const cols = header.split(',');
    const row = (v: Record<string, string>) => cols.map((c) => v[c] ?? '').join(',');
    const bad = join(cwd, 'bad.csv');
    writeFileSync(bad, '\ufeff' + [header, row({ 姓名: '王五', 帐号: 'wangwu', 手机: '13900139000' }), row({ 姓名: '@SUM(1)', 帐号: 'evil' }), row({ 姓名: 'x', 帐号: 'y', 手机: '123' })].join('\r\n'));
    r = await cli(cwd, 'import-csv', bad, '--apply', '--json');
    const res = JSON.parse(r.stdout) as { errors: Array<{ line: number; field: string }>; applied: boolean };
    expect(res.applied).toBe(false);
    expect(res.errors.map((e) => e.line).sort()).toEqual([3, 4]);
    expect(r.stdout).not.toContain('13900139000');

    const good = join(cwd, 'good.csv');
    writeFileSync(good, '\ufeff' + [header, row({ 姓名: '王五', 帐号: 'wangwu', 手机: '13900139000' })].join('\r\n'));
    stack.wecomSim!.users.set('wangwu', { userid: 'wangwu', name: '王五', department: [2], main_department: 2, enable: 1, status: 1 });
    r = await cli(cwd, 'import-csv', good, '--apply', '--json');
    expect(r.code).toBe(0);
    const applied = JSON.parse(r.stdout) as { applied: boolean; outcomes: Array<{ subject: string; actions: string[]; error?: string }> };
    expect(applied).toMatchObject({ applied: true, outcomes: [{ subject: 'user:wangwu' }] });
    expect(applied.outcomes[0]!.actions).toContain('create');
    expect(applied.outcomes[0]!.error).toBeUndefined();
    // The CLI created the account (audited under its operator). The stack's worker, woken by
    // Graph's notification of that create, may race it to lift the gate; either way: one
    // account, member enabled, and the CLI's outcome still reports the create it made
    // (a lost state race re-runs the subject; what the first attempt did is kept).
    const audit = await stack.engine.audit.bySubject('user:wangwu');
    expect(audit.filter((a) => a.action === 'create')).toEqual([expect.objectContaining({ operator: expect.stringMatching(/^cli:/), target: 'mailbox' })]);
    await stack.settle();
    expect([...stack.graphSim!.users.values()].filter((u) => u.employeeId === 'wangwu')).toHaveLength(1);
    expect((stack.wecomSim!.users.get('wangwu') as { enable: number }).enable).toBe(1);
  }, 60_000);
});
