/**
 * The whole loop on loopback (see test/support/sync-loop.ts): WeCom sim management change →
 * real encrypted callback → callback handler → DynamoInbox → LocalFifoQueue → sync worker →
 * WecomApiClient / GraphDirectory against the sims → state + audit on dynalite, sensitive
 * values sealed under the loopback KMS. And back: a Graph admin disables an account → change
 * notification → mailbox-events handler → worker → WeCom member disabled → grace deleter.
 *
 * Written against the WeCom simulator's announced API (management POST /users, POST
 * /users/{id}, DELETE /users/{id} on the sim's base URL; `users`, `departments`, `calls`,
 * `flushCallbacks()`); run green against a stand-in of that API while the real simulator
 * was still being written — adjust the few helpers below if its shape differs.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  process.env.LOG_LEVEL = 'INFO'; // capture what the logger writes, to check it for personal data
});

import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { deleteDueMembers } from '../../functions/sync/grace';
import { CREDS, startLoop, type Loop } from '../support/sync-loop';

const MOBILE = '13812345678';
const MOBILE_RE = /13812345678/;

const captured: string[] = [];
const writes = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };

let loop: Loop;
let admin: GraphDirectory; // a Graph administrator's client (not the product's)

async function wecomManage(method: string, path: string, body?: unknown) {
  const res = await fetch(`${loop.wecomSrv.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`wecom sim ${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : res.json().catch(() => undefined);
}
const createMember = (u: Record<string, unknown>) => wecomManage('POST', '/users', u);
const updateMember = (id: string, patch: Record<string, unknown>) => wecomManage('POST', `/users/${id}`, patch);
const deleteMember = (id: string) => wecomManage('DELETE', `/users/${id}`);
const member = (id: string) => loop.wecomSim.users.get(id);
const accountsOf = (userid: string) => [...loop.graphSim.users.values()].filter((u) => u.employeeId === userid);
const patchesTo = (id: string) => loop.graphSim.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/users/${id}`));
const auditOf = async (userid: string) => loop.audit.bySubject(`user:${userid}`);

beforeAll(async () => {
  process.stdout.write = ((c: unknown, ...r: unknown[]) => (captured.push(String(c)), (writes.out as any)(c, ...r))) as typeof process.stdout.write;
  process.stderr.write = ((c: unknown, ...r: unknown[]) => (captured.push(String(c)), (writes.err as any)(c, ...r))) as typeof process.stderr.write;
  loop = await startLoop({
    // A handful of people, several offboardings in a few seconds: the event-path guard
    // (covered in test/unit/engine-guard.test.ts and the e2e tests) would hold them here.
    config: { profile: { protectedDepartments: ['财务部'] }, deletionGuard: { enabled: false } },
  });
  admin = new GraphDirectory({
    apiBase: loop.graphSrv.baseUrl,
    tokenUrl: `${loop.graphSrv.baseUrl}/${CREDS.tenantId}/oauth2/v2.0/token`,
    tenantId: CREDS.tenantId,
    clientId: CREDS.clientId,
    clientSecret: CREDS.clientSecret,
    domain: 'example.com',
  });
  // Departments: 1 root, 2 技术部, 3 研发组 under 技术部, 4 财务部, 5 市场部
  for (const d of [
    { id: 2, name: '技术部', parentid: 1 },
    { id: 3, name: '研发组', parentid: 2 },
    { id: 4, name: '财务部', parentid: 1 },
    { id: 5, name: '市场部', parentid: 1 },
  ]) loop.wecomSim.departments.set(d.id, d as never);
});

afterAll(async () => {
  process.stdout.write = writes.out;
  process.stderr.write = writes.err;
  await loop?.close();
});

describe('WeCom → mailbox', () => {
  it('create: the mailbox appears with employeeId; the gate disabled the member first, then enabled it', async () => {
    await createMember({ userid: 'zhangsan', name: '张三', mobile: MOBILE, department: [3], position: 'Engineer' });
    await loop.settle();
    const [acc] = accountsOf('zhangsan');
    expect(acc).toMatchObject({ employeeId: 'zhangsan', accountEnabled: true, department: '技术部/研发组', jobTitle: 'Engineer' });
    expect(acc!.mobilePhone).toBe('+8613812345678');
    expect(member('zhangsan')!.enable).toBe(1);
    const actions = (await auditOf('zhangsan')).map((a) => `${a.action}:${a.target}`);
    expect(actions.slice(0, 3)).toEqual(['disable:wecom', 'create:mailbox', 'enable:wecom']);
    expect(loop.deadLetters()).toEqual([]);
  });

  it('update one field → exactly one PATCH carrying only that field', async () => {
    const id = accountsOf('zhangsan')[0]!.id;
    const before = patchesTo(id).length;
    await updateMember('zhangsan', { position: 'Architect' });
    await loop.settle();
    const patches = patchesTo(id).slice(before);
    expect(patches.map((p) => p.body)).toEqual([{ jobTitle: 'Architect' }]);
  });

  it('move department → department attribute and group membership follow', async () => {
    const id = accountsOf('zhangsan')[0]!.id;
    await updateMember('zhangsan', { department: [5] });
    await loop.settle();
    expect(loop.graphSim.users.get(id)!.department).toBe('市场部');
    const groups = [...loop.graphSim.groups.values()].filter((g) => g.members.has(id));
    expect(groups.map((g) => g.displayName)).toEqual(['市场部']);
  });

  it('duplicate and out-of-order deliveries converge (update before create): one account', async () => {
    await createMember({ userid: 'lisi', name: '李四', department: [3] });
    await updateMember('lisi', { position: 'PM' });
    // Deliver the callbacks in reverse order, twice.
    await loop.wecomSim.flushCallbacks({ reverse: true, duplicate: true } as never).catch(() => loop.wecomSim.flushCallbacks());
    await loop.settle();
    expect(accountsOf('lisi')).toHaveLength(1);
    expect(accountsOf('lisi')[0]).toMatchObject({ jobTitle: 'PM', accountEnabled: true });
  });

  it('protected department: the mobile is not sent', async () => {
    await createMember({ userid: 'caiwu', name: '财务', mobile: '13900001111', department: [4] });
    await loop.settle();
    const [acc] = accountsOf('caiwu');
    expect(acc).toMatchObject({ department: '财务部' });
    expect(acc!.mobilePhone ?? null).toBeNull();
    expect(JSON.stringify(loop.graphSim.requests)).not.toContain('13900001111');
  });

  it('delete in WeCom → mailbox disabled (not deleted); the echo costs no further write on either side', async () => {
    const id = accountsOf('lisi')[0]!.id;
    const graphWrites = () => loop.graphSim.requests.filter((r) => r.method !== 'GET' && r.path.includes(`/users/${id}`)).length;
    const g0 = graphWrites();
    const w0 = (loop.wecomSim.calls['user/update'] ?? 0) + (loop.wecomSim.calls['user/delete'] ?? 0);
    await deleteMember('lisi');
    await loop.settle();
    expect(loop.graphSim.users.get(id)!.accountEnabled).toBe(false);
    expect(graphWrites() - g0).toBe(1);
    expect((loop.wecomSim.calls['user/update'] ?? 0) + (loop.wecomSim.calls['user/delete'] ?? 0) - w0).toBe(0);
  });
});

describe('mailbox → WeCom (offboarding)', () => {
  it('Graph admin disables the account → notification → member disabled, audited, deletion scheduled', async () => {
    await createMember({ userid: 'wangwu', name: '王五', department: [3] });
    await loop.settle();
    const id = accountsOf('wangwu')[0]!.id;
    await admin.disable(id);
    await loop.settle();
    expect(member('wangwu')!.enable).toBe(0);
    const s = await loop.state.get('user:wangwu');
    expect(s).toMatchObject({ status: 'pending-delete', disabledBy: 'mailbox' });
    const last = (await auditOf('wangwu')).at(-1)!;
    expect(last).toMatchObject({ action: 'disable', target: 'wecom' });
  });

  it('re-enabled within the grace period → member re-enabled', async () => {
    const id = accountsOf('wangwu')[0]!.id;
    await admin.enable(id);
    await loop.settle();
    expect(member('wangwu')!.enable).toBe(1);
    expect((await loop.state.get('user:wangwu'))!.deleteAfter).toBeUndefined();
  });

  it('grace deleter deletes the member after the period (injected clock)', async () => {
    const id = accountsOf('wangwu')[0]!.id;
    await admin.disable(id);
    await loop.settle();
    loop.setNow(Date.now() + 31 * 86_400_000);
    try {
      const r = await deleteDueMembers(loop.engine);
      expect(r.deleted).toEqual(['wangwu']);
    } finally {
      loop.setNow(undefined);
    }
    expect(member('wangwu')).toBeUndefined();
    expect((await loop.state.get('user:wangwu'))!.status).toBe('deleted');
  });

  it('signed webhook mailbox.disabled path (by userid) offboards too', async () => {
    await createMember({ userid: 'zhaoliu', name: '赵六', department: [3] });
    await loop.settle();
    const id = accountsOf('zhaoliu')[0]!.id;
    loop.graphSim.users.get(id)!.accountEnabled = false; // changed without a notification
    const body = JSON.stringify({ type: 'mailbox.disabled', userid: 'zhaoliu', occurredAt: new Date().toISOString() });
    const { createHmac } = await import('node:crypto');
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = createHmac('sha256', CREDS.webhookSecret).update(`${ts}.${body}`).digest('hex');
    const res = await fetch(`${loop.baseUrl}/mailbox/events/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-timestamp': ts, 'x-signature': `sha256=${sig}` },
      body,
    });
    expect(res.status).toBeLessThan(300);
    await loop.settle();
    expect(member('zhaoliu')!.enable).toBe(0);
  });

  it('onboarding gate failure: Graph rejects the create → member stays gated, audit says why', async () => {
    // An unmanaged account already holds the address: Graph refuses the create.
    loop.graphSim.seedUser({ userPrincipalName: 'taken@example.com', displayName: 'Someone else', mail: 'taken@example.com' } as never);
    await createMember({ userid: 'taken', name: 'Taken', department: [3] });
    await loop.settle();
    expect(accountsOf('taken')).toHaveLength(0);
    expect(member('taken')!.enable).toBe(0);
    const failed = (await auditOf('taken')).filter((a) => a.action === 'failed');
    expect(failed[0]!.reason).toMatch(/mailbox creation failed \(member stays gated\)/);
    expect(loop.deadLetters().map((d) => d.message.subject)).toContain('user:taken');
  });
});

describe('rehire over the wire: restore before create', () => {
  it("a leaver's soft-deleted account (which still holds the address) is restored, not recreated: same id, audited 'restore'", async () => {
    await createMember({ userid: 'qianqi', name: '钱七', department: [3], position: 'Engineer' });
    await loop.settle();
    const id = accountsOf('qianqi')[0]!.id;
    // Leaves: deleted in WeCom (mailbox disabled by the sync), then the mail admins delete the account.
    await deleteMember('qianqi');
    await loop.settle();
    await admin.delete(id);
    await loop.settle();
    expect(loop.graphSim.deletedItems.has(id)).toBe(true);
    // Rehired under the same userid.
    await createMember({ userid: 'qianqi', name: '钱七', department: [5], position: 'Manager' });
    await loop.settle();
    expect(loop.graphSim.deletedItems.has(id)).toBe(false);
    const acc = loop.graphSim.users.get(id)!;
    expect(acc).toMatchObject({ employeeId: 'qianqi', accountEnabled: true, jobTitle: 'Manager', department: '市场部' });
    expect([...loop.graphSim.users.values()].filter((u) => u.employeeId === 'qianqi')).toHaveLength(1);
    expect(loop.graphSim.calls['POST /v1.0/users']).toBeGreaterThan(0);
    expect(loop.graphSim.calls['POST /v1.0/directory/deletedItems/{id}/restore']).toBe(1);
    const groups = [...loop.graphSim.groups.values()].filter((g) => g.members.has(id)).map((g) => g.displayName);
    expect(groups).toEqual(['市场部']);
    expect(member('qianqi')!.enable).toBe(1);
    const actions = (await auditOf('qianqi')).map((a) => `${a.action}:${a.target}`);
    expect(actions.slice(-4)).toEqual(['disable:wecom', 'restore:mailbox', 'update:mailbox', 'enable:wecom']);
    expect(loop.deadLetters().map((d) => d.message.subject)).not.toContain('user:qianqi');
  });
});

describe('throttling and personal data', () => {
  it('Graph throttling storm (30% 429): nothing lost, all converge, nothing parked', async () => {
    const parkedBefore = loop.deadLetters().length;
    loop.graphSim.setFailRate(0.3);
    try {
      for (let i = 0; i < 15; i++) await createMember({ userid: `storm${i}`, name: `S${i}`, department: [3] });
      await loop.settle(25_000);
    } finally {
      loop.graphSim.setFailRate(0);
    }
    for (let i = 0; i < 15; i++) {
      expect(accountsOf(`storm${i}`)).toHaveLength(1);
      expect(member(`storm${i}`)!.enable).toBe(1);
    }
    expect(loop.deadLetters().length).toBe(parkedBefore);
  });

  it('no mobile in clear in any DynamoDB item, the audit trail, or the logs', async () => {
    for (const table of Object.values(loop.dyn.tables)) {
      const out = await loop.dyn.client.send(new ScanCommand({ TableName: table }));
      const text = JSON.stringify((out.Items ?? []).map((i) => unmarshall(i)), (_k, v) => (v instanceof Uint8Array ? '<bin>' : v));
      expect(text).not.toMatch(MOBILE_RE);
    }
    expect(captured.join('')).not.toMatch(MOBILE_RE);
  });
});
