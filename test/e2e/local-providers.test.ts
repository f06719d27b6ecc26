/**
 * `npm start` with another mailbox provider (SYNC_CONFIG.provider): the demo per provider, on
 * the stack as `npm start` builds it (in memory, a free port). A member created in the
 * simulated WeCom console reaches the provider's simulator as an account; the account disabled
 * in that simulator reaches WeCom — Google through a users.watch push delivered to
 * /mailbox/events/google, Exmail through its operation log read by the feed upkeep (the
 * stack's `upkeep()`, what its interval runs). LDAP has no simulator: a start without its
 * settings stops naming them, and never a value.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeMailbox, LocalConfigError, type LocalStack } from '../../bin/local/stack';
import { startTestStack } from '../support/test-stack';

const dirs: string[] = [];
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function start(dir: string, env: Record<string, string>, lines: string[] = []) {
  return startTestStack(dir, { env, print: (l) => void lines.push(l), auditDigestIntervalMs: 0, sweepIntervalMs: 0 });
}

async function http(stack: LocalStack, method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
}

/** Until `ok` holds for the simulated WeCom member (bounded), running `step` between looks. */
async function untilMember(stack: LocalStack, userid: string, ok: (m: Record<string, unknown>) => boolean, step: () => Promise<unknown>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await http(stack, 'GET', `/_sim/wecom/users/${userid}`);
    if (r.status === 200 && ok(r.json)) return r.json;
    if (Date.now() > deadline) throw new Error(`member ${userid} did not reach the expected state: ${JSON.stringify(r.json)}`);
    await step();
    await new Promise((t) => setTimeout(t, 50));
  }
}

/** No secret of the stack in the stack file (0600), whatever the provider. */
function expectNoSecretsInStackFile(stack: LocalStack, secrets: string[]) {
  const file = join(stack.dataDir, 'local-stack.json');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const text = readFileSync(file, 'utf8');
  for (const s of secrets) expect(text).not.toContain(s);
  return JSON.parse(text) as Record<string, unknown>;
}

describe('npm start with provider google (simulated)', () => {
  let stack: LocalStack;
  const lines: string[] = [];

  beforeAll(async () => {
    stack = await start(tmp('local-google-'), { SYNC_CONFIG: '{"provider":"google"}' }, lines);
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('runs the Google simulator at /_sim/google with a generated service account, and says so without secrets', () => {
    expect(stack.mailbox).toMatchObject({ provider: 'google', mode: 'simulated', simUrl: `${stack.baseUrl}/_sim/google` });
    expect(stack.modes).toMatchObject({ mailbox: 'simulated', graph: 'simulated' });
    expect(stack.googleSim).toBeDefined();
    expect(stack.graphSim).toBeUndefined();
    expect(stack.exmailSim).toBeUndefined();
    expect(stack.config.provider).toBe('google');
    expect(stack.config.google).toMatchObject({ apiBase: `${stack.baseUrl}/_sim/google`, tokenUrl: `${stack.baseUrl}/_sim/google/token`, notificationUrl: `${stack.baseUrl}/mailbox/events/google` });
    // The push channels were opened at start (one per watched event), pointing at this stack.
    expect([...stack.googleSim!.channels.values()].map((c) => c.address)).toContain(`${stack.baseUrl}/mailbox/events/google`);
    expect(stack.subscription).toBeTruthy();
    const g = stack.credentials.google!;
    const file = expectNoSecretsInStackFile(stack, [g.privateKey.split('\n')[1]!, g.clientState, stack.credentials.webhookSecret]);
    expect(file).toMatchObject({ mailbox: { provider: 'google', mode: 'simulated', simUrl: `${stack.baseUrl}/_sim/google` }, simulated: { mailbox: true } });
    // Kept for the next start (0600), as the Graph demo credentials are.
    const demo = JSON.parse(readFileSync(join(stack.dataDir, 'demo-credentials.json'), 'utf8')) as { google: { clientEmail: string } };
    expect(demo.google.clientEmail).toBe(g.clientEmail);
    const line = describeMailbox(stack);
    expect(line).toMatch(/Google Workspace.*simulated at http:\/\/127\.0\.0\.1:\d+\/_sim\/google/);
    for (const l of [line, ...lines]) {
      expect(l).not.toContain(g.clientState);
      expect(l).not.toContain('PRIVATE KEY');
    }
  });

  it('WeCom member created → Google account; suspended in the Google sim → push → WeCom member disabled', async () => {
    expect((await http(stack, 'POST', '/_sim/wecom/users', { userid: 'lisi', name: '李四', mobile: '138 0013 8001', department: [1] })).status).toBeLessThan(300);
    await stack.settle();
    const account = () => [...stack.googleSim!.users.values()].find((u) => u.externalIds?.some((e) => e.value === 'lisi'));
    expect(account()).toMatchObject({ primaryEmail: 'lisi@example.com', suspended: false });
    expect((await http(stack, 'GET', '/_sim/wecom/users/lisi')).json.enable).toBe(1);

    const before = stack.googleSim!.deliveries.length;
    // The admin console's stand-in (what the banner and README show): an administrator's edit.
    expect((await http(stack, 'GET', '/_sim/google/_console/users/lisi@example.com')).json).toMatchObject({ primaryEmail: 'lisi@example.com', suspended: false });
    const tunnelled = await fetch(`${stack.baseUrl}/_sim/google/_console/users/lisi@example.com`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' }, body: '{"enabled":false}' });
    expect(tunnelled.status).toBe(403); // local callers only, as every /_sim route
    expect(account()!.suspended).toBe(false);
    expect((await http(stack, 'POST', '/_sim/google/_console/users/lisi@example.com', { enabled: false })).status).toBe(200);
    expect(account()!.suspended).toBe(true);
    await untilMember(stack, 'lisi', (m) => m.enable === 0, () => stack.settle(2_000));
    // It came by push: a delivery to this stack's receiver, accepted.
    const pushed = stack.googleSim!.deliveries.slice(before).filter((d) => d.url === `${stack.baseUrl}/mailbox/events/google` && d.state === 'update');
    expect(pushed.length).toBeGreaterThan(0);
    expect(pushed.every((d) => d.status >= 200 && d.status < 300)).toBe(true);
    const audit = await stack.engine.audit.bySubject('user:lisi');
    expect(audit.some((a) => a.action === 'disable' && a.target === 'wecom')).toBe(true);
  }, 30_000);
});

describe('npm start with provider exmail (simulated)', () => {
  let stack: LocalStack;

  beforeAll(async () => {
    stack = await start(tmp('local-exmail-'), { SYNC_CONFIG: '{"provider":"exmail"}' });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('runs the Exmail simulator at /_sim/exmail with generated app secrets, none of them in the stack file', () => {
    expect(stack.mailbox).toMatchObject({ provider: 'exmail', mode: 'simulated', simUrl: `${stack.baseUrl}/_sim/exmail` });
    expect(stack.exmailSim).toBeDefined();
    expect(stack.graphSim).toBeUndefined();
    expect(stack.config.exmail.apiBase).toBe(`${stack.baseUrl}/_sim/exmail`);
    const x = stack.credentials.exmail!;
    expect(x.corpId).not.toBe(stack.credentials.corpId); // Exmail's corp, not WeCom's
    expectNoSecretsInStackFile(stack, [x.contactsSecret, x.logSecret, stack.credentials.webhookSecret]);
    expect(describeMailbox(stack)).toMatch(/Tencent Exmail.*simulated at http:\/\/127\.0\.0\.1:\d+\/_sim\/exmail/);
  });

  it('WeCom member created → Exmail account; disabled in the Exmail console → operation log → WeCom member disabled', async () => {
    expect((await http(stack, 'POST', '/_sim/wecom/users', { userid: 'wangwu', name: '王五', mobile: '138 0013 8002', department: [1] })).status).toBeLessThan(300);
    await stack.settle();
    const account = () => [...stack.exmailSim!.users.values()].find((u) => u.extid === 'wangwu');
    expect(account()).toMatchObject({ userid: 'wangwu@example.com', enable: 1 });
    expect((await http(stack, 'GET', '/_sim/wecom/users/wangwu')).json.enable).toBe(1);

    expect((await http(stack, 'POST', '/_sim/exmail/_console/users/wangwu@example.com', { enabled: 'no' })).status).toBe(400);
    expect((await http(stack, 'POST', '/_sim/exmail/_console/users/nobody@example.com', { enabled: false })).status).toBe(404);
    expect((await http(stack, 'POST', '/_sim/exmail/_console/users/wangwu@example.com', { enabled: false })).status).toBe(200);
    expect(account()!.enable).toBe(0);
    // The log is polled: what the stack's interval runs (every minute locally), run here at once.
    await untilMember(stack, 'wangwu', (m) => m.enable === 0, async () => {
      await stack.upkeep();
      await stack.settle(2_000);
    });
    const audit = await stack.engine.audit.bySubject('user:wangwu');
    expect(audit.some((a) => a.action === 'disable' && a.target === 'wecom')).toBe(true);
  }, 30_000);
});

describe('npm start with a real Google Workspace or Exmail', () => {
  // Transport pointed at a closed local port (SYNC_CONFIG apiBase/tokenUrl are honoured in real mode): no internet needed.
  const CLOSED = 'http://127.0.0.1:9';
  const cases = [
    {
      provider: 'google',
      settings: { apiBase: CLOSED, tokenUrl: `${CLOSED}/token` },
      env: { GOOGLE_CLIENT_EMAIL: 'sync@real-project.iam.gserviceaccount.com', GOOGLE_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\\nRealKeyMaterial0123456789\\n-----END PRIVATE KEY-----', GOOGLE_ADMIN_EMAIL: 'it-admin@example.com' },
      secrets: ['RealKeyMaterial0123456789'],
    },
    {
      provider: 'exmail',
      settings: { apiBase: CLOSED },
      env: { EXMAIL_CORP_ID: 'wm-real-corp', EXMAIL_CONTACTS_SECRET: 'RealContactsSecret0123456789', EXMAIL_LOG_SECRET: 'RealLogSecret0123456789' },
      secrets: ['RealContactsSecret0123456789', 'RealLogSecret0123456789'],
    },
  ] as const;
  for (const c of cases) {
    it(`${c.provider}: all credential variables set → real mode, no simulator mounted, the secrets neither printed nor written`, async () => {
      const lines: string[] = [];
      const stack = await start(tmp(`local-${c.provider}-real-`), { SYNC_CONFIG: JSON.stringify({ provider: c.provider, [c.provider]: c.settings }), ...c.env }, lines);
      try {
        expect(stack.mailbox).toMatchObject({ provider: c.provider, mode: 'real' });
        expect(stack.mailbox.simUrl).toBeUndefined();
        expect([stack.graphSim, stack.googleSim, stack.exmailSim]).toEqual([undefined, undefined, undefined]);
        expect(stack.fromEnv).toContain(c.provider);
        expect((await fetch(`${stack.baseUrl}/_sim/${c.provider}/cgi-bin/gettoken`)).status).toBe(404);
        expect((await fetch(`${stack.baseUrl}/_sim/${c.provider}/_console/users/a@example.com`)).status).toBe(404);
        expect(stack.config[c.provider].apiBase).toBe(CLOSED);
        expect(describeMailbox(stack)).toMatch(/REAL \(credentials from the environment\)$/);
        expectNoSecretsInStackFile(stack, [...c.secrets]);
        const demo = readFileSync(join(stack.dataDir, 'demo-credentials.json'), 'utf8');
        for (const v of c.secrets) {
          expect(demo).not.toContain(v);
          expect(lines.join('\n')).not.toContain(v);
        }
      } finally {
        await stack.close();
      }
    }, 30_000);
  }
});

describe('npm start with provider ldap (no simulator)', () => {
  it('without the bind credentials and directory settings: a LocalConfigError naming each, no value, nothing started', async () => {
    const dir = tmp('local-ldap-');
    const err = await start(dir, { SYNC_CONFIG: '{"provider":"ldap"}' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LocalConfigError);
    const msg = (err as Error).message;
    for (const name of ['LDAP_BIND_DN', 'LDAP_BIND_PASSWORD', 'ldap.urls', 'ldap.baseDn']) expect(msg).toContain(name);

    const secret = 'Sup3r-secret-bind-password';
    const partial = await start(dir, { SYNC_CONFIG: JSON.stringify({ provider: 'ldap', ldap: { urls: ['ldaps://dc.example.com'] } }), LDAP_BIND_PASSWORD: secret, LDAP_BIND_DN: 'cn=svc-sync,dc=example,dc=com' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(partial).toBeInstanceOf(LocalConfigError);
    expect((partial as Error).message).toContain('ldap.baseDn');
    expect((partial as Error).message).toMatch(/Missing: SYNC_CONFIG ldap\.baseDn\./);
    expect((partial as Error).message).not.toContain(secret);
    expect((partial as Error).message).not.toContain('svc-sync');
  });

  it('configured: starts in real mode, no mailbox simulator, a failing directory reported by name only', async () => {
    const lines: string[] = [];
    const secret = 'Sup3r-secret-bind-password';
    const stack = await start(
      tmp('local-ldap-real-'),
      { SYNC_CONFIG: JSON.stringify({ provider: 'ldap', ldap: { urls: ['ldap://127.0.0.1:1'], baseDn: 'dc=example,dc=com' } }), LDAP_BIND_DN: 'cn=svc-sync,dc=example,dc=com', LDAP_BIND_PASSWORD: secret },
      lines,
    );
    try {
      expect(stack.mailbox).toEqual({ provider: 'ldap', title: 'LDAP / Active Directory', mode: 'real' });
      expect(stack.modes.mailbox).toBe('real');
      expect(stack.simulated).toEqual({ wecom: true, graph: false });
      expect([stack.graphSim, stack.googleSim, stack.exmailSim]).toEqual([undefined, undefined, undefined]);
      expect(stack.fromEnv).toContain('ldap');
      expect(describeMailbox(stack)).toBe('mailbox (LDAP / Active Directory): REAL (credentials from the environment)');
      expect(lines.join('\n')).not.toContain(secret);
      expectNoSecretsInStackFile(stack, [secret]);
      expect(readFileSync(join(stack.dataDir, 'demo-credentials.json'), 'utf8')).not.toContain(secret);
    } finally {
      await stack.close();
    }
  }, 30_000);

  it('a partly configured simulated provider, or a planned one, stops the start the same way', async () => {
    const g = await start(tmp('local-partial-'), { SYNC_CONFIG: '{"provider":"google"}', GOOGLE_CLIENT_EMAIL: 'sa@p.iam.gserviceaccount.com' }).catch((e: unknown) => e);
    expect(g).toBeInstanceOf(LocalConfigError);
    expect((g as Error).message).toMatch(/GOOGLE_PRIVATE_KEY, GOOGLE_ADMIN_EMAIL missing/);
    const x = await start(tmp('local-partial-'), { SYNC_CONFIG: '{"provider":"exmail"}', EXMAIL_CONTACTS_SECRET: 'contacts-value' }).catch((e: unknown) => e);
    expect(x).toBeInstanceOf(LocalConfigError);
    expect((x as Error).message).toMatch(/EXMAIL_CORP_ID, EXMAIL_LOG_SECRET missing/);
    expect((x as Error).message).not.toContain('contacts-value');
    const s = await start(tmp('local-planned-'), { SYNC_CONFIG: '{"provider":"scim"}' }).catch((e: unknown) => e);
    expect(s).toBeInstanceOf(LocalConfigError);
    expect((s as Error).message).toMatch(/planned/);
  });
});
