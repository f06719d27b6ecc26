/**
 * The `npm start` demo, end to end over HTTP only, as a new user would drive it: a member
 * created in the simulated WeCom console reaches the mailbox through a real encrypted
 * callback; disabling the mailbox in the simulated Graph reaches WeCom through a real change
 * notification. Plus the operator endpoints' input validation and the stack file.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDotEnv, type LocalStack } from '../../bin/local/stack';
import { startTestStack } from '../support/test-stack';

let dir: string;
let stack: LocalStack;
const lines: string[] = [];

async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(path.startsWith('/_local/') ? { authorization: `Bearer ${stack.adminToken}` } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json: json as Record<string, unknown> };
}

async function graphToken(): Promise<string> {
  const c = stack.credentials;
  const res = await fetch(`${stack.baseUrl}/_sim/graph/${c.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, scope: 'https://graph.microsoft.com/.default' }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

async function accountOf(userid: string, token: string) {
  const q = encodeURIComponent(`employeeId eq '${userid}'`);
  const r = await http('GET', `/_sim/graph/v1.0/users?$filter=${q}&$select=id,accountEnabled,mobilePhone,displayName,department`, undefined, { authorization: `Bearer ${token}` });
  return (r.json.value as Array<Record<string, unknown>>)[0];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'local-stack-'));
  stack = await startTestStack(dir, { print: (l) => void lines.push(l) });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('local stack demo', () => {
  it('simulates both sides and writes a stack file without secrets (0600)', () => {
    expect(stack.simulated).toEqual({ wecom: true, graph: true });
    expect(stack.credentials.encodingAESKey).toMatch(/^[A-Za-z0-9]{43}$/); // what WeCom's console accepts
    const file = join(dir, 'local-stack.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    const c = stack.credentials;
    for (const secret of [c.token, c.encodingAESKey, c.appSecret, c.contactsSecret, c.clientSecret, c.webhookSecret]) expect(text).not.toContain(secret);
    expect(JSON.parse(text).config).toMatchObject({ provider: 'graph', mailDomain: 'example.com' });
    expect(stack.subscription?.subscriptionId).toBeTruthy();
  });

  it('onboarding: console create → callback → mailbox account → member enabled; mobile never in clear at rest', async () => {
    await http('POST', '/_sim/wecom/departments', { id: 2, name: '技术部', parentid: 1 });
    const created = await http('POST', '/_sim/wecom/users', { userid: 'zhangsan', name: '张三', mobile: '138 0013 8000', department: [2] });
    expect(created.status).toBeLessThan(300);
    await stack.settle();
    const token = await graphToken();
    const acc = await accountOf('zhangsan', token);
    expect(acc).toMatchObject({ accountEnabled: true, mobilePhone: '+8613800138000', displayName: '张三', department: '技术部' });
    const member = await http('GET', '/_sim/wecom/users/zhangsan');
    expect(member.json.enable).toBe(1);

    const actions = (await stack.engine.audit.bySubject('user:zhangsan')).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['disable', 'create', 'enable']));
    const scan = await stack.dynamo.client.send(new (await import('@aws-sdk/client-dynamodb')).ScanCommand({ TableName: stack.dynamo.tables.state }));
    expect(JSON.stringify(scan.Items)).not.toMatch(/13800138000/);
  });

  it('offboarding: PATCH accountEnabled=false in the Graph sim → notification → WeCom member disabled', async () => {
    const token = await graphToken();
    const acc = await accountOf('zhangsan', token);
    const patched = await http('PATCH', `/_sim/graph/v1.0/users/${acc!.id as string}`, { accountEnabled: false }, { authorization: `Bearer ${token}` });
    expect(patched.status).toBe(204);
    await stack.settle();
    expect((await http('GET', '/_sim/wecom/users/zhangsan')).json.enable).toBe(0);
    const audit = await stack.engine.audit.bySubject('user:zhangsan');
    expect(audit.some((a) => a.action === 'disable' && a.target === 'wecom' && a.operator !== undefined)).toBe(true);
  });

  it('operator endpoints reject malformed bodies with a reason and enqueue nothing', async () => {
    const before = stack.queue.depth;
    const bad = await http('POST', '/_local/enqueue', '{"not":"an array"}');
    expect(bad.status).toBe(400);
    expect(String(bad.json.error)).toMatch(/array/);
    const item = await http('POST', '/_local/enqueue', [{ v: 1, subject: 'nobody' }]);
    expect(item.status).toBe(400);
    expect(String(item.json.error)).toMatch(/item 0/);
    expect((await http('POST', '/_local/dlq/redrive', 'nope')).status).toBe(400);
    expect(stack.queue.depth).toBe(before);
  });
});

describe('.env', () => {
  it('fills what the environment does not set (quotes and comments handled); the environment wins', () => {
    const file = join(dir, '.env');
    writeFileSync(file, '# real WeCom\nWECOM_CORP_ID="ww123"\nMAIL_DOMAIN=corp.example  # inline comment\nPORT=4000\n');
    const env = withDotEnv({ PORT: '5000' }, file);
    expect(env).toMatchObject({ WECOM_CORP_ID: 'ww123', MAIL_DOMAIN: 'corp.example', PORT: '5000' });
    expect(withDotEnv({ A: '1' }, join(dir, 'missing.env'))).toEqual({ A: '1' });
  });
});
