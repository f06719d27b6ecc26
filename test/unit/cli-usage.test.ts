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
    expect(HELP).toMatch(/^\s+audit verify \(--all \| --subject ID\)/m);
    expect(HELP).toMatch(/^\s+audit digest/m);
  });

  it('names the audit subcommands in its usage errors', async () => {
    const c = capture();
    expect(await main(['audit', 'verify'], { io: c.io, cwd: '/nonexistent' })).toBe(64);
    expect(c.err.join('\n')).toContain('audit verify needs --all or --subject ID (not both)');
    const d = capture();
    expect(await main(['audit', 'frobnicate'], { io: d.io, cwd: '/nonexistent' })).toBe(64);
    expect(d.err.join('\n')).toContain("unknown audit subcommand 'frobnicate'");
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
    [['audit', '--subject', 'user:a', '--all']],
    [['audit', 'verify']],
    [['audit', 'verify', '--all', '--subject', 'user:a']],
    [['audit', 'verify', '--all', '--since', '2026-01-01']],
    [['audit', 'verify', '--subject', 'user:a', '--limit', '3']],
    [['audit', 'verify', '--all', 'extra']],
    [['audit', 'digest', '--subject', 'user:a']],
    [['audit', 'digest', '--all']],
    [['audit', 'frobnicate']],
    [['status', '--all']],
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
