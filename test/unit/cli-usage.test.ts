/**
 * The CLI's argument handling, in process: help, exit code 64 for every kind of usage error,
 * all decided before any stack is contacted (the e2e test covers the commands themselves).
 */
import { describe, expect, it } from 'vitest';
import { HELP, main } from '../../bin/wecom-sync';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l), tty: false }, out, err };
}

describe('wecom-sync argument handling', () => {
  it('--help prints usage with the exit codes on stdout and exits 0', async () => {
    const c = capture();
    expect(await main(['--help'], { io: c.io })).toBe(0);
    expect(c.out.join('\n')).toBe(HELP.trimEnd());
    for (const code of ['0 ', '1 ', '2 ', '64 ']) expect(HELP).toMatch(new RegExp(`^\\s+${code}`, 'm'));
  });

  it.each([
    [[]],
    [['frobnicate']],
    [['reconcile', '--nope']],
    [['reconcile', '--apply']],
    [['reconcile', '--confirm']],
    [['reconcile', '--subject', 'user:a']],
    [['audit']],
    [['audit', '--subject']],
    [['dlq']],
    [['dlq', 'purge']],
    [['import-csv']],
    [['import-csv', 'a.csv', '--template', 'xls']],
    [['export-csv', '--source', 'ldap']],
    [['status', 'extra']],
    [['status', '--region', 'eu-west-1']],
    [['demo-offboard']],
    [['approvals']],
    [['approvals', 'grant']],
    [['approvals', 'approve']],
    [['approvals', 'approve', '--all', 'zhangsan']],
    [['approvals', 'reject', 'user:bad id']],
    [['approvals', 'list', '--all']],
    [['dlq', 'list', '--all']],
  ])('%j is a usage error (64), reported on stderr', async (argv) => {
    const c = capture();
    expect(await main(argv, { io: c.io, cwd: '/nonexistent' })).toBe(64);
    expect(c.out).toEqual([]);
    expect(c.err.join('\n')).toMatch(/wecom-sync/);
  });
});
