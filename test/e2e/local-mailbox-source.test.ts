/**
 * The README's mailbox-first demo on `npm start`, over HTTP only: with
 * SYNC_CONFIG='{"lifecycle":{"source":"mailbox"}}' a user created through Graph's create-user
 * call appears in WeCom within seconds, enabled, mobile in E.164 (WeCom's "+86 …" form); a
 * later jobTitle PATCH reaches WeCom's position; a WeCom console edit of that field is put back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../bin/local/stack';
import { startTestStack } from '../support/test-stack';

let dir: string;
let stack: LocalStack;

async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
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

/** Poll the simulated WeCom console until `ok` holds (the queue runs on its own, as in `npm start`). */
async function until(userid: string, ok: (m: Record<string, unknown>) => boolean, timeoutMs = 10_000) {
  const start = Date.now();
  for (;;) {
    const r = await http('GET', `/_sim/wecom/users/${userid}`);
    if (r.status === 200 && ok(r.json)) return { member: r.json, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`member ${userid} did not reach the expected state: ${JSON.stringify(r.json)}`);
    await new Promise((t) => setTimeout(t, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'local-mailbox-source-'));
  stack = await startTestStack(dir, { env: { SYNC_CONFIG: '{"lifecycle":{"source":"mailbox"}}', LOCAL_QUEUE_VISIBILITY_SECONDS: '5' }, sweepIntervalMs: 0 });
  await http('POST', '/_sim/wecom/departments', { id: 2, name: '技术部', parentid: 1 });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mailbox-first demo', () => {
  let accountId: string;

  it('POST /_sim/graph/v1.0/users → the member appears in WeCom within seconds, enabled, mobile in E.164', async () => {
    const token = await graphToken();
    const created = await http(
      'POST',
      '/_sim/graph/v1.0/users',
      {
        accountEnabled: true,
        displayName: '王五',
        mailNickname: 'wangwu',
        userPrincipalName: 'wangwu@example.com',
        passwordProfile: { password: 'Demo-Passw0rd!' },
        mobilePhone: '138 0013 8000',
        department: '技术部',
        jobTitle: '工程师',
      },
      { authorization: `Bearer ${token}` },
    );
    expect(created.status).toBe(201);
    accountId = String(created.json.id);
    const { member, ms } = await until('wangwu', (m) => m.enable === 1);
    // Pushed (the created notification: the delta read is off here); 10 s leaves room for a loaded CI host.
    expect(ms).toBeLessThan(10_000);
    expect(member).toMatchObject({ name: '王五', position: '工程师', mobile: '+86 13800138000', email: 'wangwu@example.com', department: [2] });
    const linked = await http('GET', `/_sim/graph/v1.0/users/${accountId}?$select=employeeId`, undefined, { authorization: `Bearer ${token}` });
    expect(linked.json.employeeId).toBe('wangwu');
  });

  it('a later PATCH of jobTitle reaches WeCom position', async () => {
    const token = await graphToken();
    expect((await http('PATCH', `/_sim/graph/v1.0/users/${accountId}`, { jobTitle: '高级工程师' }, { authorization: `Bearer ${token}` })).status).toBe(204);
    await until('wangwu', (m) => m.position === '高级工程师');
  });

  it('a WeCom console edit of a mailbox-owned field is put back, audited revert', async () => {
    expect((await http('POST', '/_sim/wecom/users/wangwu', { position: '经理' })).status).toBe(200);
    await until('wangwu', (m) => m.position === '高级工程师');
    await stack.settle();
    const audit = await stack.engine.audit.bySubject('user:wangwu');
    expect(audit.some((a) => a.action === 'revert' && a.target === 'wecom' && a.outcome === 'ok')).toBe(true);
  });
});
