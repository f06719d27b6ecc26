/**
 * The local stack's doors, tried as an attacker would: through a tunnel-like TCP forwarder
 * that adds proxy headers, from a non-loopback address of this machine, without the admin
 * token. And what it prints and refuses at start: the operator's secrets never shown, a
 * half-configured side refused with the names missing, `.data/` owner-only.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../bin/local/stack';

const LOCAL = resolve(import.meta.dirname, '../../bin/local.ts');
const TSX = import.meta.resolve('tsx');

/** A raw TCP forwarder on loopback, like a tunnel's local end: the stack sees a loopback peer. */
async function forwarder(targetPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((ok) => server.close(() => ok())) };
}

function nonLoopbackAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

let dir: string;
let stack: LocalStack;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'surface-'));
  stack = await startLocalStack({
    port: 0,
    host: '0.0.0.0',
    dataDir: join(dir, '.data'),
    env: { PATH: process.env.PATH },
    print: () => undefined,
    graceIntervalMs: 0,
    subscriptionIntervalMs: 0,
    auditDigestIntervalMs: 0,
  });
});

afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = () => ({ authorization: `Bearer ${stack.adminToken}` });

describe('local-only doors', () => {
  it('through a forwarder that adds proxy headers: simulators and operator endpoints refuse, public routes answer', async () => {
    const fwd = await forwarder(stack.port);
    try {
      const base = `http://127.0.0.1:${fwd.port}`;
      for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
        const h = { [header]: header === 'forwarded' ? 'for=203.0.113.9' : '203.0.113.9' };
        const sim = await fetch(`${base}/_sim/wecom/users`, { headers: h });
        expect(sim.status, header).toBe(403);
        expect(await sim.text()).not.toMatch(/mobile|userid/);
        const create = await fetch(`${base}/_sim/wecom/users`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ userid: 'evil', name: 'x' }) });
        expect(create.status).toBe(403);
        expect((await fetch(`${base}/_local/status`, { headers: { ...h, ...auth() } })).status).toBe(403);
        expect((await fetch(`${base}/_local/enqueue`, { method: 'POST', headers: { ...h, ...auth() }, body: '[]' })).status).toBe(403);
        expect((await fetch(`${base}/healthz`, { headers: h })).status).toBe(200);
        // The callback answers on its own terms (a bad signature is its 403, not the door's).
        const cb = await fetch(`${base}/wecom/callback?msg_signature=x&timestamp=1&nonce=1&echostr=abc`, { headers: h });
        expect(await cb.text()).not.toMatch(/local callers/);
      }
      expect(stack.wecomSim!.users.has('evil')).toBe(false);
      // Without proxy headers the forwarder's requests are local (and need the token for /_local).
      expect((await fetch(`${base}/_sim/wecom/users`)).status).toBe(200);
      expect((await fetch(`${base}/_local/status`)).status).toBe(401);
      expect((await fetch(`${base}/_local/status`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${base}/_local/status`, { headers: auth() })).status).toBe(200);
    } finally {
      await fwd.close();
    }
  });

  it.skipIf(!nonLoopbackAddress())('from a non-loopback address of this machine (HOST=0.0.0.0): refused', async () => {
    const base = `http://${nonLoopbackAddress()}:${stack.port}`;
    expect((await fetch(`${base}/_sim/wecom/users`)).status).toBe(403);
    expect((await fetch(`${base}/_sim/graph/v1.0/users`)).status).toBe(403);
    expect((await fetch(`${base}/_local/status`, { headers: auth() })).status).toBe(403);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('.data is owner-only: files 0600, folders 0700, fixed at every start', async () => {
    const walk = (p: string): Array<{ p: string; mode: number; dir: boolean }> => {
      const st = statSync(p);
      const me = { p, mode: st.mode & 0o777, dir: st.isDirectory() };
      return st.isDirectory() ? [me, ...readdirSync(p).flatMap((n) => walk(join(p, n)))] : [me];
    };
    const entries = walk(stack.dataDir);
    expect(entries.filter((e) => e.dir && e.mode !== 0o700)).toEqual([]);
    expect(entries.filter((e) => !e.dir && e.mode !== 0o600)).toEqual([]);
    expect(entries.some((e) => e.p.endsWith('admin-token'))).toBe(true);

    const other = mkdtempSync(join(tmpdir(), 'surface-modes-'));
    try {
      mkdirSync(join(other, '.data', 'dynamodb'), { recursive: true });
      writeFileSync(join(other, '.data', 'dynamodb', 'OLD'), 'x', { mode: 0o644 });
      chmodSync(join(other, '.data'), 0o755);
      const s2 = await startLocalStack({ port: 0, dataDir: join(other, '.data'), env: { PATH: process.env.PATH }, print: () => undefined, graceIntervalMs: 0, subscriptionIntervalMs: 0, auditDigestIntervalMs: 0 });
      await s2.close();
      expect(statSync(join(other, '.data')).mode & 0o777).toBe(0o700);
      expect(statSync(join(other, '.data', 'dynamodb', 'OLD')).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

interface Started {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `npm start`'s entry with this environment until its banner is out (or it exits). */
function runLocal(cwd: string, env: Record<string, string>): Promise<Started> {
  return new Promise((ok) => {
    const child = spawn(process.execPath, ['--import', TSX, LOCAL], { cwd, env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'ERROR', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const done = (code: number | null) => ok({ code, stdout, stderr });
    child.stdout.on('data', (d) => {
      stdout += d;
      if (/kill -9 loses nothing/.test(stdout)) {
        child.kill('SIGKILL');
        done(null);
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => done(code));
  });
}

describe('what the stack prints and refuses at start', () => {
  // Real-looking values: 43-character AES key, long secrets.
  const REAL = {
    WECOM_CORP_ID: 'ww0123456789abcdef',
    WECOM_TOKEN: 'RealTok3nFromTheConsole9',
    WECOM_ENCODING_AES_KEY: 'Ab3dEfGh1jKlMn0pQrStUvWxYz0123456789AbCdEfG',
    WECOM_CONTACTS_SECRET: 'ContactsSecretFromWeCom_0123456789abcdefghij',
    WECOM_APP_SECRET: 'AppSecretFromWeCom_0123456789abcdefghijklmnop',
  };

  it('real WeCom credentials from the environment are never printed; demo ones are, labelled', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'banner-real-'));
    try {
      const real = await runLocal(cwd, REAL);
      expect(real.code).toBeNull(); // started (we stopped it)
      const out = real.stdout + real.stderr;
      for (const v of Object.values(REAL).slice(1)) expect(out).not.toContain(v);
      expect(out).toMatch(/Token: +\(from your environment: not shown\)/);
      expect(out).toMatch(/WeCom: +REAL/);
      const demo = await runLocal(mkdtempSync(join(tmpdir(), 'banner-demo-')), {});
      expect(demo.stdout).toMatch(/Token: +\S+ +\(demo value\)/);
      expect(demo.stdout).toMatch(/EncodingAESKey: +[A-Za-z0-9]{43} +\(demo value\)/);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 60_000);

  it('partial WeCom or Graph configuration stops the stack, naming what is missing (and nothing secret)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'banner-partial-'));
    try {
      const a = await runLocal(cwd, { WECOM_CORP_ID: REAL.WECOM_CORP_ID, WECOM_CONTACTS_SECRET: REAL.WECOM_CONTACTS_SECRET });
      expect(a.code).toBe(78);
      expect(a.stderr).toMatch(/WECOM_TOKEN, WECOM_ENCODING_AES_KEY, WECOM_APP_SECRET missing/);
      expect(a.stderr).not.toContain(REAL.WECOM_CONTACTS_SECRET);
      const b = await runLocal(cwd, { GRAPH_TENANT_ID: 't', GRAPH_CLIENT_ID: 'c' });
      expect(b.code).toBe(78);
      expect(b.stderr).toMatch(/GRAPH_CLIENT_SECRET missing/);
      const c = await runLocal(cwd, { WECOM_CORP_ID: 'ww1', WECOM_TOKEN: 't', WECOM_ENCODING_AES_KEY: 'too-short' });
      expect(c.code).toBe(78);
      expect(c.stderr).toMatch(/WECOM_ENCODING_AES_KEY is not a valid EncodingAESKey/);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 60_000);

  it('callback-only mode: the three callback keys are used (a real app can verify the URL), the API stays simulated, printed as such', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cbonly-'));
    const keys = { WECOM_CORP_ID: REAL.WECOM_CORP_ID, WECOM_TOKEN: REAL.WECOM_TOKEN, WECOM_ENCODING_AES_KEY: REAL.WECOM_ENCODING_AES_KEY };
    try {
      const s = await startLocalStack({ port: 0, dataDir: join(cwd, '.data'), env: { PATH: process.env.PATH, ...keys }, print: () => undefined, graceIntervalMs: 0, subscriptionIntervalMs: 0, auditDigestIntervalMs: 0 });
      try {
        expect(s.modes.wecom).toBe('callback-only');
        expect(s.credentials).toMatchObject({ corpId: keys.WECOM_CORP_ID, token: keys.WECOM_TOKEN, encodingAESKey: keys.WECOM_ENCODING_AES_KEY });
        expect(s.fromEnv).toEqual(expect.arrayContaining(['corpId', 'token', 'encodingAESKey']));
        // The simulated console's edit reaches the callback signed with the real keys, and syncs.
        const res = await fetch(`${s.baseUrl}/_sim/wecom/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userid: 'cbuser', name: 'CB', department: [1] }) });
        expect(res.status).toBe(201);
        await s.settle();
        expect([...s.graphSim!.users.values()].some((u) => u.employeeId === 'cbuser')).toBe(true);
      } finally {
        await s.close();
      }
      const printed = await runLocal(cwd, keys);
      expect(printed.stdout).toMatch(/WeCom: +callback only/);
      expect(printed.stdout).not.toContain(keys.WECOM_TOKEN);
      expect(printed.stdout).not.toContain(keys.WECOM_ENCODING_AES_KEY);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 60_000);

  it('a side with real credentials has no simulator mounted', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'realgraph-'));
    try {
      const s = await startLocalStack({
        port: 0,
        dataDir: join(cwd, '.data'),
        env: { PATH: process.env.PATH, GRAPH_TENANT_ID: 'tenant', GRAPH_CLIENT_ID: 'client', GRAPH_CLIENT_SECRET: 'secret', GRAPH_NOTIFICATION_URL: 'https://example.invalid/mailbox/events/graph' },
        print: () => undefined,
        graceIntervalMs: 0,
        subscriptionIntervalMs: 0,
        auditDigestIntervalMs: 0,
      });
      try {
        expect(s.graphSim).toBeUndefined();
        expect((await fetch(`${s.baseUrl}/_sim/graph/v1.0/users`)).status).toBe(404);
        expect((await fetch(`${s.baseUrl}/_sim/wecom/users`)).status).toBe(200);
      } finally {
        await s.close();
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 60_000);
});
