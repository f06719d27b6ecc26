/**
 * The event-path deletion guard end to end: 30 of 40 members deleted in the simulated WeCom
 * console reach the local stack as real callbacks; the guard lets 2 mailbox disables through
 * (5 % of 40) and holds 28; `wecom-sync approvals` (a separate process, as an operator runs
 * it) lists them, and `approve --all` applies exactly those — nothing else changes.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../bin/local/stack';
import { runCli } from '../support/cli-process';
import { startTestStack } from '../support/test-stack';

const cli = (cwd: string, ...args: string[]) => runCli(cwd, args, 'ops-lead');

let cwd: string;
let stack: LocalStack;
const ids = Array.from({ length: 40 }, (_, i) => `g${String(i).padStart(2, '0')}`);

const accounts = () => [...stack.graphSim!.users.values()].filter((u) => u.employeeId && ids.includes(u.employeeId));
const enabledIds = () => accounts().filter((u) => u.accountEnabled).map((u) => u.employeeId!).sort();

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'approvals-e2e-'));
  mkdirSync(join(cwd, '.data'));
  stack = await startTestStack(join(cwd, '.data'), { auditDigestIntervalMs: 0 });
  for (const userid of ids) {
    const res = await fetch(`${stack.baseUrl}/_sim/wecom/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userid, name: userid.toUpperCase(), department: [1] }),
    });
    expect(res.status).toBe(201);
  }
  await stack.settle(60_000);
  expect(enabledIds()).toHaveLength(40);
}, 120_000);

afterAll(async () => {
  await stack?.close();
  rmSync(cwd, { recursive: true, force: true });
});

describe('deletion guard on the event path, through the local stack and the CLI', () => {
  it('a bulk deletion of 30 of 40 members: 2 applied, 28 held; approve --all applies exactly those', async () => {
    const gone = ids.slice(0, 30);
    for (const userid of gone) expect((await fetch(`${stack.baseUrl}/_sim/wecom/users/${userid}`, { method: 'DELETE' })).status).toBe(200);
    await stack.settle(60_000);
    expect(enabledIds()).toHaveLength(38);

    let r = await cli(cwd, 'approvals', 'list', '--json');
    expect(r.code).toBe(0);
    const held = JSON.parse(r.stdout) as Array<{ subject: string; action: string; status: string; reason: string }>;
    expect(held).toHaveLength(28);
    expect(held.every((h) => h.action === 'disable-mailbox' && h.status === 'held')).toBe(true);
    expect(held[0]!.reason).toMatch(/deletion guard/);
    const heldIds = held.map((h) => h.subject.slice('user:'.length)).sort();
    expect(heldIds.every((u) => gone.includes(u))).toBe(true);

    r = await cli(cwd, 'approvals', 'approve', '--all');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/approved runs queued/);
    await stack.settle(60_000);
    expect(enabledIds()).toEqual(ids.slice(30));
    r = await cli(cwd, 'approvals', 'list', '--json');
    expect(JSON.parse(r.stdout)).toEqual([]);

    // Each decision is audited with who decided.
    r = await cli(cwd, 'audit', '--subject', `user:${heldIds[0]}`, '--json');
    const records = (JSON.parse(r.stdout) as { records: Array<{ action: string; operator: string }> }).records;
    expect(records.map((x) => x.action)).toEqual(expect.arrayContaining(['held', 'approve', 'disable']));
    expect(records.find((x) => x.action === 'approve')!.operator).toBe('cli:ops-lead');
  }, 120_000);
});
