/**
 * `wecom-sync console`: the console on 127.0.0.1 of the operator's machine, against the CLI's
 * own target. It prints a one-time sign-in URL, tries to open a browser without failing when
 * there is none, records the operator's real identity, and stops cleanly.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleCommand } from '../../bin/cli/commands';
import type { Io } from '../../bin/cli/output';
import { localTarget, type CliTarget } from '../../bin/cli/target';
import { osUser } from '../../bin/console/identity';
import type { LocalStack } from '../../bin/local/stack';
import { main } from '../../bin/wecom-sync';
import { startTestStack } from '../support/test-stack';

let cwd: string;
let stack: LocalStack;
let target: CliTarget;

beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'console-cli-'));
  mkdirSync(join(cwd, '.data'));
  stack = await startTestStack(join(cwd, '.data'), { auditDigestIntervalMs: 0 });
  target = await localTarget({ dataDir: join(cwd, '.data') });
}, 60_000);

afterAll(async () => {
  await target?.close();
  await stack?.close();
  rmSync(cwd, { recursive: true, force: true });
});

describe('wecom-sync console', () => {
  it('prints a one-time URL on 127.0.0.1, survives a missing browser opener, signs the operator in, and stops on its signal', async () => {
    const out: string[] = [];
    const io: Io = { out: (l) => void out.push(l), err: (l) => void out.push(l), tty: false };
    const stop = new AbortController();
    const running = consoleCommand(target, { port: 0, open: true, opener: join(cwd, 'no-such-opener'), signal: stop.signal }, io);
    await expect.poll(() => out.join('\n'), { timeout: 10_000 }).toMatch(/one-time sign-in link/);
    const url = /(http:\/\/127\.0\.0\.1:\d+\/console\/login\?token=[A-Za-z0-9_-]+)/.exec(out.join('\n'))![1]!;
    expect(out.join('\n')).toContain(`acting as console:${osUser()}`);

    const signIn = await fetch(url, { redirect: 'manual' });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const overview = await fetch(new URL('/console/', url), { headers: { cookie } });
    expect(overview.status).toBe(200);
    expect(await overview.text()).toContain(`console:${osUser()}`);
    expect((await fetch(url, { redirect: 'manual' })).status).toBe(401); // spent

    stop.abort();
    expect(await running).toBe(0);
    await expect(fetch(new URL('/console/', url))).rejects.toThrow();
  }, 30_000);

  it('checks --port before reaching any stack', async () => {
    const err: string[] = [];
    const io: Io = { out: () => undefined, err: (l) => void err.push(l), tty: false };
    expect(await main(['console', '--port', 'eighty'], { io, cwd: '/nonexistent' })).toBe(64);
    expect(err.join('\n')).toContain('--port is a TCP port number');
    expect(await main(['console', '--confirm'], { io, cwd: '/nonexistent' })).toBe(64);
  });
});
