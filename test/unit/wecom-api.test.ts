/**
 * The WeCom API client against the loopback WeCom simulator (the JSON wire contract over
 * HTTP), and the simulator's own contract: two-secret permissions, paging, token expiry,
 * callbacks that the real callback cipher accepts, post-2022 minimal content.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWecomSim, type WecomSim } from '../../bin/local/sim/wecom';
import { WecomApiClient } from '../../functions/wecom/api';
import { WecomApiError } from '../../functions/wecom/contacts';
import { decryptMessage, verifySignature } from '../../functions/wecom/crypto';
import { classifyErrcode } from '../../functions/wecom/errcodes';
import { randomEncodingAESKey } from '../support/wecom-callback-client';

const CORP = { corpId: 'wwsimcorp0001', contactsSecret: 'contacts-secret-XYZ', appSecret: 'app-secret-ABC' };
const CB = { token: 'cbtoken123', encodingAESKey: randomEncodingAESKey() };

let sim: WecomSim;
let srv: { baseUrl: string; close(): Promise<void> };
let sleeps: number[];
let client: WecomApiClient;

// A callback receiver that records what the simulator posts.
let receiver: Server;
let receiverUrl: string;
const received: Array<{ query: URLSearchParams; body: string }> = [];
let receiverStatus = 200;

beforeAll(async () => {
  receiver = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    received.push({ query: new URL(req.url!, 'http://x').searchParams, body });
    res.writeHead(receiverStatus).end('success');
  });
  await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/wecom/callback`;
});
afterAll(() => new Promise<void>((ok) => receiver.close(() => ok())));

beforeEach(async () => {
  sim = createWecomSim({ ...CORP, callback: { url: receiverUrl, ...CB } });
  srv = await sim.start();
  sleeps = [];
  client = new WecomApiClient({ apiBase: srv.baseUrl, ...CORP, sleep: async (ms) => void sleeps.push(ms) });
  received.length = 0;
  receiverStatus = 200;
  sim.departments.set(2, { id: 2, name: '技术部', parentid: 1 });
});
afterEach(() => srv.close());

const seed = (userid: string, extra: Record<string, unknown> = {}) =>
  sim.users.set(userid, { userid, name: userid, department: [2], main_department: 2, enable: 1, status: 1, mobile: '+8613800138000', ...extra });

function innerXml(i: number): string {
  const r = received[i]!;
  const encrypt = /<Encrypt><!\[CDATA\[(.*?)\]\]><\/Encrypt>/.exec(r.body)![1]!;
  expect(verifySignature(CB.token, r.query.get('timestamp')!, r.query.get('nonce')!, encrypt, r.query.get('msg_signature')!)).toBe(true);
  return decryptMessage(encrypt, { encodingAESKey: CB.encodingAESKey, corpId: CORP.corpId });
}

describe('WecomApiClient', () => {
  it('reads with the app token, writes with the contacts token; one gettoken per secret', async () => {
    seed('a');
    seed('b');
    expect((await client.getUser('a'))!.name).toBe('a');
    await client.getUser('b');
    await client.updateUser('a', { enable: 0 });
    await client.updateUser('b', { position: 'PM' });
    expect(sim.users.get('a')!.enable).toBe(0);
    expect(sim.calls.gettoken).toBe(2);
  });

  it('concurrent first calls share one gettoken', async () => {
    seed('a');
    await Promise.all(Array.from({ length: 10 }, () => client.getUser('a')));
    expect(sim.calls.gettoken).toBe(1);
  });

  it('an expired token is refreshed once and the call succeeds, without counting as a retry', async () => {
    seed('a');
    await client.getUser('a');
    sim.expireTokens();
    expect((await client.getUser('a'))!.userid).toBe('a');
    expect(sim.calls.gettoken).toBe(2);
    expect(sleeps).toEqual([]);
  });

  it('busy and rate limits back off and retry; exhausted retries are retryable errors with the block time', async () => {
    seed('a');
    sim.failNext('user/get', -1, 2);
    expect((await client.getUser('a'))!.userid).toBe('a');
    expect(sleeps).toHaveLength(2);
    sim.failNext('user/get', 45009, 10);
    const err = (await client.getUser('a').catch((e: unknown) => e)) as WecomApiError;
    expect(err).toBeInstanceOf(WecomApiError);
    expect(err).toMatchObject({ errcode: 45009, retryable: true, retryAfterMs: 60_000 });
    expect(sleeps).toHaveLength(2 + 3);
  });

  it('60111: getUser → undefined, deleteUser → success; other permanent errors fail at once with an actionable reason', async () => {
    expect(await client.getUser('ghost')).toBeUndefined();
    await expect(client.deleteUser('ghost')).resolves.toBeUndefined();
    sim.failNext('user/update', 60020);
    const err = (await client.updateUser('x', { enable: 0 }).catch((e: unknown) => e)) as WecomApiError;
    expect(err).toMatchObject({ errcode: 60020, retryable: false });
    expect(err.message).toMatch(/trusted IP/);
    expect(sleeps).toEqual([]);
  });

  it('never puts a secret or token in an error message', async () => {
    const bad = new WecomApiClient({ apiBase: srv.baseUrl, ...CORP, appSecret: 'wrong-secret-value', sleep: async () => undefined });
    const err = (await bad.getUser('a').catch((e: unknown) => e)) as WecomApiError;
    expect(err).toMatchObject({ errcode: 40001, retryable: false });
    expect(err.message).not.toContain('wrong-secret-value');
    sim.failNext('user/get', 60011);
    const err2 = (await client.getUser('a').catch((e: unknown) => e)) as Error;
    expect(err2.message).not.toMatch(/access_token=|app-secret-ABC|contacts-secret-XYZ/);
    expect(err2.message).not.toContain(srv.baseUrl);
  });

  it('list_id pages through every member once, even members of several departments', async () => {
    for (let i = 0; i < 25_001; i++) sim.users.set(`u${i}`, { userid: `u${i}`, department: i % 2 ? [1, 2] : [2] });
    const ids = await client.listUserIds();
    expect(ids).toHaveLength(25_001);
    expect(new Set(ids).size).toBe(25_001);
    expect(sim.calls['user/list_id']).toBe(3);
  });

  it('fields WeCom hides are absent (unknown), never empty strings', async () => {
    const hidden = createWecomSim({ ...CORP, sensitiveFieldsVisible: false });
    const h = await hidden.start();
    try {
      hidden.users.set('a', { userid: 'a', name: 'A', mobile: '+8613800138000', email: 'a@x.com', position: 'PM' });
      const c = new WecomApiClient({ apiBase: h.baseUrl, ...CORP });
      const u = (await c.getUser('a'))!;
      expect(u).toEqual({ userid: 'a', name: 'A', position: 'PM' });
    } finally {
      await h.close();
    }
    seed('b', { mobile: '', email: '' });
    const b = (await client.getUser('b'))!;
    expect('mobile' in b).toBe(false);
    expect('email' in b).toBe(false);
  });

  it('departments and tags', async () => {
    const list = await client.listDepartments();
    expect(list.map((d) => d.id).sort()).toEqual([1, 2]);
    seed('a');
    await client.addTagUsers(7, ['a']);
    expect([...sim.tags.get(7)!]).toEqual(['a']);
    await expect(client.addTagUsers(7, ['ghost'])).rejects.toThrow(/not tagged/);
  });

  it('errcode classification', () => {
    expect(classifyErrcode(0).kind).toBe('ok');
    expect(classifyErrcode(42001).kind).toBe('token');
    expect(classifyErrcode(45033).kind).toBe('retryable');
    expect(classifyErrcode(60111).kind).toBe('not-found');
    expect(classifyErrcode(48009)).toMatchObject({ kind: 'permanent', reason: expect.stringMatching(/app secret/) });
    expect(classifyErrcode(123456).kind).toBe('permanent');
  });
});

describe('WeCom simulator', () => {
  const api = async (path: string, init?: RequestInit) => (await fetch(`${srv.baseUrl}${path}`, init)).json() as Promise<Record<string, unknown>>;
  const tokenFor = async (secret: string) => (await api(`/cgi-bin/gettoken?corpid=${CORP.corpId}&corpsecret=${secret}`)).access_token as string;

  it('enforces the two-secret split: contacts token cannot read details (48009), app token cannot write (60011)', async () => {
    seed('a');
    const contacts = await tokenFor(CORP.contactsSecret);
    const app = await tokenFor(CORP.appSecret);
    expect((await api(`/cgi-bin/user/get?access_token=${contacts}&userid=a`)).errcode).toBe(48009);
    expect((await api(`/cgi-bin/user/get?access_token=${app}&userid=a`)).errcode).toBe(0);
    const write = { method: 'POST', body: JSON.stringify({ userid: 'a', enable: 0 }) };
    expect((await api(`/cgi-bin/user/update?access_token=${app}`, write)).errcode).toBe(60011);
    expect((await api(`/cgi-bin/user/update?access_token=${contacts}`, write)).errcode).toBe(0);
    expect((await api('/cgi-bin/user/get?access_token=forged&userid=a')).errcode).toBe(40014);
  });

  it('a console create sends an encrypted, signed create_user callback with UserID and Department only', async () => {
    const res = await fetch(`${srv.baseUrl}/users`, { method: 'POST', body: JSON.stringify({ userid: 'zs', name: '张三', mobile: '13800138000', department: [2] }) });
    expect(res.status).toBe(201);
    expect(received).toHaveLength(0); // manual delivery: nothing until flushed
    await sim.flushCallbacks();
    expect(received).toHaveLength(1);
    const xml = innerXml(0);
    expect(xml).toContain('<ChangeType><![CDATA[create_user]]></ChangeType>');
    expect(xml).toContain('<UserID><![CDATA[zs]]></UserID>');
    expect(xml).toContain('<Department><![CDATA[2]]></Department>');
    expect(xml).not.toMatch(/Mobile|13800138000|张三/);
  });

  it('a rename sends nothing; a move sends update_party; API writes send nothing', async () => {
    await fetch(`${srv.baseUrl}/departments/2`, { method: 'POST', body: JSON.stringify({ name: '研发中心' }) });
    expect(sim.pendingCallbacks()).toBe(0);
    await fetch(`${srv.baseUrl}/departments`, { method: 'POST', body: JSON.stringify({ id: 3, name: '市场部', parentid: 1 }) });
    await fetch(`${srv.baseUrl}/departments/2`, { method: 'POST', body: JSON.stringify({ parentid: 3 }) });
    expect(sim.pendingCallbacks()).toBe(2);
    seed('a');
    await client.updateUser('a', { position: 'x' });
    expect(sim.pendingCallbacks()).toBe(2);
    await sim.flushCallbacks({ reverse: true });
    expect(innerXml(0)).toContain('update_party');
    expect(innerXml(1)).toContain('create_party');
  });

  it('immediate delivery posts as the edit happens; a failed delivery stays pending for a flush', async () => {
    const live = createWecomSim({ ...CORP, callback: { url: receiverUrl, ...CB }, deliver: 'immediate' });
    const s = await live.start();
    try {
      await fetch(`${s.baseUrl}/users`, { method: 'POST', body: JSON.stringify({ userid: 'x', name: 'X' }) });
      expect(received).toHaveLength(1);
      receiverStatus = 503;
      await fetch(`${s.baseUrl}/users/x`, { method: 'DELETE' });
      expect(live.pendingCallbacks()).toBe(1);
      receiverStatus = 200;
      await live.flushCallbacks();
      expect(live.pendingCallbacks()).toBe(0);
      expect(innerXml(received.length - 1)).toContain('delete_user');
    } finally {
      await s.close();
    }
  });

  it('console input is validated with a reason', async () => {
    const bad = await fetch(`${srv.baseUrl}/users`, { method: 'POST', body: JSON.stringify({ userid: 'a b', name: 'x' }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/userid/);
    const dept = await fetch(`${srv.baseUrl}/users`, { method: 'POST', body: JSON.stringify({ userid: 'ok', name: 'x', department: [99] }) });
    expect(dept.status).toBe(400);
    expect((await fetch(`${srv.baseUrl}/users`, { method: 'POST', body: '{oops' })).status).toBe(400);
    expect(sim.users.size).toBe(0);
  });
});
