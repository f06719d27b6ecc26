/**
 * The loopback WeCom simulator's own contract (bin/local/sim/wecom.ts), over real HTTP:
 * the /cgi-bin JSON API (tokens per secret, the post-2022 permission split, expiry, paging,
 * hidden fields, injected errcodes) and the console routes, whose callbacks are checked with
 * the product's own cipher AND accepted by the product's real callback receiver
 * (functions/wecom/callback.ts with an in-memory inbox and queue).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWecomSim, type WecomSim } from '../../bin/local/sim/wecom';
import type { SyncMessage } from '../../functions/queue/messages';
import type { InboxEntry } from '../../functions/store/ports';
import { createCallbackReceiver } from '../../functions/wecom/callback';
import { decryptMessage, verifySignature } from '../../functions/wecom/crypto';
import { randomEncodingAESKey } from '../support/wecom-callback-client';

const CORP = { corpId: 'wwsimtest0042', contactsSecret: 'contacts-secret-111', appSecret: 'app-secret-222' };
const CB = { token: 'cbTokenSim', encodingAESKey: randomEncodingAESKey() };
const KEYS = { ...CB, corpId: CORP.corpId };

// ---------------------------------------------------------------- the callback side

interface Received {
  query: URLSearchParams;
  body: string;
  status: number;
}
let receiver: Server;
let receiverUrl: string;
let received: Received[] = [];
let enqueued: SyncMessage[] = [];
let inbox = new Map<string, InboxEntry & { enqueued: boolean }>();
let receiverDown = false;

const real = createCallbackReceiver({
  keys: KEYS,
  inbox: {
    async record(e) {
      const seen = inbox.get(e.id);
      if (seen) return seen.enqueued ? 'duplicate' : 'pending';
      inbox.set(e.id, { ...e, enqueued: false });
      return 'new';
    },
    async markEnqueued(id) {
      inbox.get(id)!.enqueued = true;
    },
    async listPending() {
      return [...inbox.values()].filter((e) => !e.enqueued);
    },
  },
  queue: { enqueue: async (m) => void enqueued.push(...m) },
});

beforeAll(async () => {
  receiver = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const url = new URL(req.url!, 'http://x');
    if (receiverDown) {
      received.push({ query: url.searchParams, body, status: 503 });
      return void res.writeHead(503).end('down');
    }
    const answer = await real({
      method: req.method!,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: {},
      body,
    });
    received.push({ query: url.searchParams, body, status: answer.statusCode });
    res.writeHead(answer.statusCode, answer.headers).end(answer.body);
  });
  await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/wecom/callback`;
});
afterAll(() => new Promise<void>((ok) => receiver.close(() => ok())));

const xml = new XMLParser({ parseTagValue: false });

/** Check one delivery as a WeCom receiver must (envelope, signature, cipher) and return the inner fields. */
function open(r: Received): Record<string, string> {
  const env = (xml.parse(r.body) as { xml: Record<string, string> }).xml;
  expect(env.ToUserName).toBe(CORP.corpId);
  expect(env).toHaveProperty('AgentID');
  expect(verifySignature(CB.token, r.query.get('timestamp')!, r.query.get('nonce')!, env.Encrypt!, r.query.get('msg_signature')!)).toBe(true);
  const inner = decryptMessage(env.Encrypt!, KEYS);
  return (xml.parse(inner) as { xml: Record<string, string> }).xml;
}
const innerText = (r: Received) => decryptMessage((xml.parse(r.body) as { xml: { Encrypt: string } }).xml.Encrypt, KEYS);

// ---------------------------------------------------------------- the simulator

let sim: WecomSim;
let srv: { baseUrl: string; close(): Promise<void> };

beforeEach(async () => {
  received = [];
  enqueued = [];
  inbox = new Map();
  receiverDown = false;
  sim = createWecomSim({ ...CORP, callback: { url: receiverUrl, ...CB } });
  srv = await sim.start();
  sim.departments.set(2, { id: 2, name: '技术部', parentid: 1 });
  sim.departments.set(3, { id: 3, name: '市场部', parentid: 1 });
});
afterEach(() => srv.close());

type Json = Record<string, unknown>;
async function cgi(path: string, token?: string, body?: unknown): Promise<Json> {
  const sep = path.includes('?') ? '&' : '?';
  const res = await fetch(`${srv.baseUrl}/cgi-bin/${path}${token ? `${sep}access_token=${token}` : ''}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  expect(res.status).toBe(200); // WeCom answers errors in the body, never with an HTTP status
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  return (await res.json()) as Json;
}
const tokenOf = async (secret: string) => (await cgi(`gettoken?corpid=${CORP.corpId}&corpsecret=${secret}`)).access_token as string;
async function manage(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${srv.baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Json };
}
const seed = (userid: string, extra: Json = {}) =>
  sim.users.set(userid, { userid, name: `N-${userid}`, department: [2], main_department: 2, enable: 1, status: 1, ...extra });

// ---------------------------------------------------------------- API

describe('WeCom simulator: /cgi-bin API', () => {
  it('gettoken issues a random token per call for either secret, and refuses a wrong corp or secret', async () => {
    const first = await cgi(`gettoken?corpid=${CORP.corpId}&corpsecret=${CORP.appSecret}`);
    expect(first).toMatchObject({ errcode: 0, expires_in: 7200 });
    expect(first.access_token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(first.access_token).not.toContain(CORP.appSecret);
    expect(await tokenOf(CORP.appSecret)).not.toBe(first.access_token);
    expect((await cgi(`gettoken?corpid=wrongcorp&corpsecret=${CORP.appSecret}`)).errcode).toBe(40013);
    expect((await cgi(`gettoken?corpid=${CORP.corpId}&corpsecret=nope`)).errcode).toBe(40001);
    expect((await cgi('user/get?userid=a', 'forged-token')).errcode).toBe(40014);
    expect((await cgi('user/get?userid=a')).errcode).toBe(40014);
    expect(sim.calls.gettoken).toBe(4);
  });

  it('contacts secret writes and lists ids but may not read details (48009); app secret reads but may not write (60011)', async () => {
    seed('a');
    seed('b');
    const contacts = await tokenOf(CORP.contactsSecret);
    const app = await tokenOf(CORP.appSecret);

    expect((await cgi('user/get?userid=a', contacts)).errcode).toBe(48009);
    expect((await cgi('department/list', contacts)).errcode).toBe(48009);
    expect((await cgi('department/get?id=2', contacts)).errcode).toBe(48009);
    expect((await cgi('user/list_id', contacts, {})).errcode).toBe(0);
    expect((await cgi('department/simplelist', contacts)).errcode).toBe(0);

    expect(await cgi('user/get?userid=a', app)).toMatchObject({ errcode: 0, userid: 'a', name: 'N-a', department: [2] });
    expect((await cgi('department/list', app)).department).toHaveLength(3);
    expect((await cgi('user/list_id', app, {})).errcode).toBe(0);
    for (const [path, body] of [
      ['user/update', { userid: 'a', enable: 0 }],
      ['user/create', { userid: 'c', name: 'C' }],
      ['user/batchdelete', { useridlist: ['a'] }],
      ['tag/addtagusers', { tagid: 1, userlist: ['a'] }],
    ] as const) {
      expect((await cgi(path, app, body)).errcode, path).toBe(60011);
    }
    expect((await cgi('user/delete?userid=a', app)).errcode).toBe(60011);
    expect(sim.users.get('a')!.enable).toBe(1); // nothing written by the refused calls
    expect(sim.users.has('c')).toBe(false);

    expect((await cgi('user/update', contacts, { userid: 'a', enable: 0 })).errcode).toBe(0);
    expect((await cgi('user/delete?userid=b', contacts)).errcode).toBe(0);
    expect(sim.users.has('b')).toBe(false);
    expect(sim.calls['user/get']).toBe(2);
    expect(sim.calls['user/update']).toBe(2);
  });

  it('expireTokens: every issued token answers 42001 until a new one is fetched', async () => {
    seed('a');
    const app = await tokenOf(CORP.appSecret);
    const contacts = await tokenOf(CORP.contactsSecret);
    sim.expireTokens();
    expect((await cgi('user/get?userid=a', app)).errcode).toBe(42001);
    expect((await cgi('user/list_id', contacts, {})).errcode).toBe(42001);
    expect((await cgi('user/get?userid=a', await tokenOf(CORP.appSecret))).errcode).toBe(0);
  });

  it('user/update merges fields; a missing member is 60111 for get, update and delete; API writes send no callback', async () => {
    seed('a', { position: 'Engineer', mobile: '+8613800138000' });
    const contacts = await tokenOf(CORP.contactsSecret);
    const app = await tokenOf(CORP.appSecret);
    expect((await cgi('user/update', contacts, { userid: 'a', enable: 0, department: [3] })).errcode).toBe(0);
    expect(sim.users.get('a')).toMatchObject({ name: 'N-a', position: 'Engineer', mobile: '+8613800138000', enable: 0, department: [3], main_department: 3 });
    expect((await cgi('user/update', contacts, { userid: 'a', department: [99] })).errcode).toBe(60003);
    expect((await cgi('user/get?userid=ghost', app)).errcode).toBe(60111);
    expect((await cgi('user/update', contacts, { userid: 'ghost', enable: 0 })).errcode).toBe(60111);
    expect((await cgi('user/delete?userid=ghost', contacts)).errcode).toBe(60111);
    expect((await cgi('user/create', contacts, { userid: 'n', name: 'New', department: [2] })).errcode).toBe(60129); // a mobile or an email is required
    expect((await cgi('user/create', contacts, { userid: 'n', name: 'New', department: [2], mobile: '+86 13800138000' })).errcode).toBe(0);
    expect((await cgi('user/create', contacts, { userid: 'n', name: 'New', email: 'n@example.com' })).errcode).toBe(60102);
    expect((await cgi('user/create', contacts, { userid: 'n2', name: 'Twin', mobile: '+86 13800138000' })).errcode).toBe(60104);
    expect((await cgi('department/create', contacts, { name: '新部门', parentid: 2 })).errcode).toBe(0);
    expect((await cgi('department/create', contacts, { name: '新部门', parentid: 2 })).errcode).toBe(60008);
    expect((await cgi('department/create', contacts, { name: 'X', parentid: 999 })).errcode).toBe(60003);
    expect(sim.users.get('n')).toMatchObject({ department: [2], main_department: 2, status: 4 });
    // WeCom does not echo API writes as callbacks.
    expect(sim.pendingCallbacks()).toBe(0);
    await sim.flushCallbacks();
    expect(received).toEqual([]);
  });

  it('user/batchdelete: one unknown id fails the whole call and deletes nothing', async () => {
    seed('a');
    seed('b');
    const contacts = await tokenOf(CORP.contactsSecret);
    expect((await cgi('user/batchdelete', contacts, { useridlist: ['a', 'ghost'] })).errcode).toBe(60111);
    expect(sim.users.size).toBe(2);
    expect((await cgi('user/batchdelete', contacts, { useridlist: ['a', 'b'] })).errcode).toBe(0);
    expect(sim.users.size).toBe(0);
  });

  it('user/list_id pages with limit and next_cursor; a member of two departments is listed once per department', async () => {
    for (let i = 0; i < 2_500; i++) seed(`u${i}`, i === 7 ? { department: [2, 3] } : {});
    const contacts = await tokenOf(CORP.contactsSecret);
    const rows: Array<{ userid: string; department: number }> = [];
    let cursor = '';
    let pages = 0;
    do {
      const r = await cgi('user/list_id', contacts, { ...(cursor ? { cursor } : {}), limit: 1000 });
      expect(r.errcode).toBe(0);
      rows.push(...(r.dept_user as typeof rows));
      cursor = r.next_cursor as string;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(rows).toHaveLength(2_501);
    expect(new Set(rows.map((r) => r.userid)).size).toBe(2_500);
    expect(rows.filter((r) => r.userid === 'u7').map((r) => r.department)).toEqual([2, 3]);
    // default limit: 1000 members (u7 is listed twice)
    const dflt = await cgi('user/list_id', contacts, {});
    expect(new Set((dflt.dept_user as typeof rows).map((r) => r.userid)).size).toBe(1000);
    expect(dflt.next_cursor).not.toBe('');
    expect((await cgi('user/list_id', contacts, { cursor: 'not-a-cursor' })).errcode).toBe(40058);
  });

  it('user/list_id: a member deleted mid-listing does not make the listing skip anyone (the cursor is not a live offset)', async () => {
    for (let i = 0; i < 30; i++) seed(`m${String(i).padStart(2, '0')}`);
    const contacts = await tokenOf(CORP.contactsSecret);
    const p1 = await cgi('user/list_id', contacts, { limit: 10 });
    sim.users.delete('m00'); // an admin removes someone from page 1 while a reconcile lists
    sim.users.delete('m01');
    const seen = (p1.dept_user as Array<{ userid: string }>).map((r) => r.userid);
    let cursor = p1.next_cursor as string;
    while (cursor) {
      const r = await cgi('user/list_id', contacts, { cursor, limit: 10 });
      seen.push(...(r.dept_user as Array<{ userid: string }>).map((x) => x.userid));
      cursor = r.next_cursor as string;
    }
    // Had the cursor been a live offset, m10 and m11 would have been skipped and a reconcile
    // would have taken two present members for leavers.
    for (let i = 2; i < 30; i++) expect(seen).toContain(`m${String(i).padStart(2, '0')}`);
  });

  it('user/list_id lists 100,000 members in 100 pages of 1,000; limit is capped at 10,000', async () => {
    for (let i = 0; i < 100_000; i++) sim.users.set(`p${i}`, { userid: `p${i}`, department: [2] });
    const contacts = await tokenOf(CORP.contactsSecret);
    const t0 = performance.now();
    let cursor = '';
    let n = 0;
    do {
      const r = await cgi('user/list_id', contacts, { ...(cursor ? { cursor } : {}), limit: 1000 });
      n += (r.dept_user as unknown[]).length;
      cursor = r.next_cursor as string;
    } while (cursor);
    expect(n).toBe(100_000);
    // limit is capped at 10,000
    const capped = await cgi('user/list_id', contacts, { limit: 50_000 });
    expect((capped.dept_user as unknown[]).length).toBe(10_000);
    expect(capped.next_cursor).not.toBe('');
    // A coarse guard against a pathological listing (measured ~0.3 s here); the reconcile bench seeds 100k.
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('departments: list (whole tree or a subtree), get, simplelist', async () => {
    sim.departments.set(4, { id: 4, name: '研发组', parentid: 2 });
    const app = await tokenOf(CORP.appSecret);
    const contacts = await tokenOf(CORP.contactsSecret);
    expect(((await cgi('department/list', app)).department as Json[]).map((d) => d.id)).toEqual([1, 2, 3, 4]);
    expect(((await cgi('department/list?id=2', app)).department as Json[]).map((d) => d.id)).toEqual([2, 4]);
    expect((await cgi('department/list?id=99', app)).errcode).toBe(60123);
    expect((await cgi('department/get?id=4', app)).department).toMatchObject({ id: 4, name: '研发组', parentid: 2 });
    expect((await cgi('department/get?id=99', app)).errcode).toBe(60123);
    const simple = (await cgi('department/simplelist', contacts)).department_id as Json[];
    expect(simple).toContainEqual({ id: 4, parentid: 2, order: 0 });
    expect(simple[0]).not.toHaveProperty('name'); // simplelist carries no names
  });

  it('sensitiveFieldsVisible false: user/get omits mobile, email, biz_mail, telephone, address (absent, not empty)', async () => {
    const hidden = createWecomSim({ ...CORP, sensitiveFieldsVisible: false });
    const h = await hidden.start();
    try {
      const full = { userid: 'a', name: 'A', position: 'PM', mobile: '+8613800138000', email: 'a@x.cn', biz_mail: 'a@corp.cn', telephone: '010-1', address: 'Road 1' };
      hidden.users.set('a', { ...full });
      const tok = ((await (await fetch(`${h.baseUrl}/cgi-bin/gettoken?corpid=${CORP.corpId}&corpsecret=${CORP.appSecret}`)).json()) as Json).access_token;
      const u = (await (await fetch(`${h.baseUrl}/cgi-bin/user/get?access_token=${tok}&userid=a`)).json()) as Json;
      expect(u).toMatchObject({ errcode: 0, userid: 'a', name: 'A', position: 'PM' });
      for (const f of ['mobile', 'email', 'biz_mail', 'telephone', 'address']) expect(u, f).not.toHaveProperty(f);
      expect(hidden.users.get('a')).toEqual(full); // hidden from the API, still stored
    } finally {
      await h.close();
    }
    seed('b', { mobile: '+8613800138001' });
    expect((await cgi('user/get?userid=b', await tokenOf(CORP.appSecret))).mobile).toBe('+8613800138001'); // default: visible
  });

  it('failNext injects an errcode for the next N calls of one API only, gettoken included', async () => {
    seed('a');
    const app = await tokenOf(CORP.appSecret);
    sim.failNext('user/get', -1, 2);
    expect((await cgi('department/list', app)).errcode).toBe(0); // another API is unaffected
    expect((await cgi('user/get?userid=a', app)).errcode).toBe(-1);
    expect((await cgi('user/get?userid=a', app)).errcode).toBe(-1);
    expect((await cgi('user/get?userid=a', app)).errcode).toBe(0);
    sim.failNext('user/get', 45009);
    expect((await cgi('user/get?userid=a', app)).errcode).toBe(45009);
    expect((await cgi('user/get?userid=a', app)).errcode).toBe(0);
    sim.failNext('gettoken', 60020);
    expect((await cgi(`gettoken?corpid=${CORP.corpId}&corpsecret=${CORP.appSecret}`)).errcode).toBe(60020);
    expect(await tokenOf(CORP.appSecret)).toBeTruthy();
  });

  it('rateLimit: per API per corp; over it the API answers 45009 until its block ends, other APIs and gettoken unaffected', async () => {
    await srv.close();
    sim = createWecomSim({ ...CORP, rateLimit: { perApi: 3, windowMs: 60_000, blockMs: 150 } });
    srv = await sim.start();
    seed('a');
    const app = await tokenOf(CORP.appSecret);
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await cgi('user/get?userid=a', app)).errcode);
    expect(codes).toEqual([0, 0, 0, 45009, 45009]);
    expect((await cgi('department/list', app)).errcode).toBe(0);
    expect(await tokenOf(CORP.appSecret)).toBeTruthy();
    expect(sim.rateLimited).toEqual({ 'user/get': 2 });
    await new Promise((t) => setTimeout(t, 200)); // the block ends; the window still counts
    expect((await cgi('user/get?userid=a', app)).errcode).toBe(45009);
  });

  it('unknown API → 40058; a body that is not JSON → 47001', async () => {
    const contacts = await tokenOf(CORP.contactsSecret);
    expect((await cgi('user/frobnicate', contacts)).errcode).toBe(40058);
    expect((await cgi('user/update', contacts, '{not json')).errcode).toBe(47001);
    expect((await cgi('user/update', contacts, '[1,2]')).errcode).toBe(47001);
  });

  it('is mountable: handle() serves the same API under a prefix of another server', async () => {
    const host = createServer((req, res) => {
      if (req.url!.startsWith('/_sim/wecom/')) return void sim.handle(req, res, req.url!.slice('/_sim/wecom'.length));
      res.writeHead(404).end();
    });
    await new Promise<void>((ok) => host.listen(0, '127.0.0.1', ok));
    try {
      const base = `http://127.0.0.1:${(host.address() as AddressInfo).port}/_sim/wecom`;
      const tok = ((await (await fetch(`${base}/cgi-bin/gettoken?corpid=${CORP.corpId}&corpsecret=${CORP.appSecret}`)).json()) as Json).access_token;
      seed('a');
      expect(((await (await fetch(`${base}/cgi-bin/user/get?access_token=${tok}&userid=a`)).json()) as Json).name).toBe('N-a');
      const created = await fetch(`${base}/users`, { method: 'POST', body: JSON.stringify({ userid: 'm', name: 'M' }) });
      expect(created.status).toBe(201);
      expect(sim.users.has('m')).toBe(true);
    } finally {
      await new Promise<void>((ok) => host.close(() => ok()));
    }
  });
});

// ---------------------------------------------------------------- console + callbacks

describe('WeCom simulator: console routes and callbacks', () => {
  it('a console create sends create_user that the real receiver accepts, with UserID and Department only', async () => {
    const r = await manage('POST', '/users', { userid: 'zs', name: '张三', mobile: '+8613800138000', email: 'zs@x.cn', department: [2, 3], position: 'Engineer' });
    expect(r).toEqual({ status: 201, json: { ok: true, userid: 'zs' } });
    expect(sim.users.get('zs')).toMatchObject({ enable: 1, status: 1, main_department: 2, department: [2, 3], mobile: '+8613800138000' });
    expect(received).toHaveLength(0); // manual: nothing until flushed
    expect(sim.pendingCallbacks()).toBe(1);

    await sim.flushCallbacks();
    expect(sim.pendingCallbacks()).toBe(0);
    expect(received).toHaveLength(1);
    expect(received[0]!.status).toBe(200);
    const inner = open(received[0]!);
    expect(inner).toMatchObject({ ToUserName: CORP.corpId, FromUserName: 'sys', MsgType: 'event', Event: 'change_contact', ChangeType: 'create_user', UserID: 'zs', Department: '2,3' });
    expect(Number(inner.CreateTime)).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(Object.keys(inner).sort()).toEqual(['ChangeType', 'CreateTime', 'Department', 'Event', 'FromUserName', 'MsgType', 'ToUserName', 'UserID']);
    const wire = innerText(received[0]!) + received[0]!.body + received[0]!.query.toString();
    expect(wire).not.toMatch(/Mobile|13800138000|zs@x\.cn|张三|Engineer/);
    expect(wire).not.toContain(CB.encodingAESKey);
    expect(enqueued.map((m) => [m.subject, m.hint])).toEqual([['user:zs', 'create_user']]);
  });

  it('console create: defaults and validation with a reason', async () => {
    expect((await manage('POST', '/users', { userid: 'd', name: 'D' })).status).toBe(201);
    expect(sim.users.get('d')).toMatchObject({ department: [1], main_department: 1, enable: 1, status: 1 });
    for (const [body, reason] of [
      [{ name: 'X' }, /userid/],
      [{ userid: 'a b', name: 'X' }, /userid/],
      [{ userid: 'x' }, /name/],
      [{ userid: 'd', name: 'Again' }, /exists/],
      [{ userid: 'y', name: 'Y', department: [99] }, /department/],
      ['{oops', /JSON/],
    ] as const) {
      const r = await manage('POST', '/users', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatch(reason);
    }
    expect([...sim.users.keys()]).toEqual(['d']);
    expect(sim.pendingCallbacks()).toBe(1); // refused edits emit nothing
  });

  it('console update sends update_user with UserID, plus Department only when it changed; GET and DELETE', async () => {
    await manage('POST', '/users', { userid: 'ls', name: '李四', department: [2] });
    await manage('POST', '/users/ls', { position: 'Architect', mobile: '+8613900139000' });
    await manage('POST', '/users/ls', { department: [3] });
    expect(sim.users.get('ls')).toMatchObject({ position: 'Architect', department: [3], main_department: 3 });
    expect(await manage('GET', '/users/ls')).toMatchObject({ status: 200, json: { userid: 'ls', position: 'Architect' } });
    expect(((await manage('GET', '/users')).json as unknown as Json[]).map((u) => u.userid)).toEqual(['ls']);
    expect((await manage('POST', '/users/ghost', { position: 'x' })).status).toBe(404);
    expect((await manage('GET', '/users/ghost')).status).toBe(404);
    expect((await manage('DELETE', '/users/ghost')).status).toBe(404);
    expect((await manage('DELETE', '/users/ls')).status).toBe(200);
    expect(sim.users.has('ls')).toBe(false);

    await sim.flushCallbacks();
    const events = received.map(open).map(({ ChangeType, UserID, Department }) => ({ ChangeType, UserID, Department }));
    expect(events).toEqual([
      { ChangeType: 'create_user', UserID: 'ls', Department: '2' },
      { ChangeType: 'update_user', UserID: 'ls', Department: undefined },
      { ChangeType: 'update_user', UserID: 'ls', Department: '3' },
      { ChangeType: 'delete_user', UserID: 'ls', Department: undefined },
    ]);
    expect(received.map(innerText).join('')).not.toMatch(/Architect|13900139000|Position|Mobile/);
    expect(received.every((r) => r.status === 200)).toBe(true);
  });

  it('departments: create → create_party, rename → nothing, move → update_party, delete → delete_party (refused while not empty)', async () => {
    const created = await manage('POST', '/departments', { name: '销售部', parentid: 1 });
    expect(created).toEqual({ status: 201, json: { ok: true, id: 4 } }); // auto id
    expect(sim.pendingCallbacks()).toBe(1);
    expect((await manage('POST', '/departments/4', { name: '大客户部' })).status).toBe(200);
    expect(sim.departments.get(4)!.name).toBe('大客户部');
    expect(sim.pendingCallbacks()).toBe(1); // WeCom sends nothing for a rename
    expect((await manage('POST', '/departments/4', { parentid: 3 })).status).toBe(200);
    expect((await manage('POST', '/departments/3', { parentid: 4 })).status).toBe(400); // a cycle
    expect((await manage('POST', '/departments', { id: 3, name: 'dup', parentid: 1 })).status).toBe(400);
    expect((await manage('POST', '/departments', { name: 'orphan', parentid: 99 })).status).toBe(400);
    await manage('POST', '/users', { userid: 'w', name: 'W', department: [4] });
    const refused = await manage('DELETE', '/departments/4');
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatch(/members/);
    expect((await manage('DELETE', '/departments/3')).status).toBe(400); // still has a child
    await manage('DELETE', '/users/w');
    expect((await manage('DELETE', '/departments/4')).status).toBe(200);
    expect(sim.departments.has(4)).toBe(false);

    await sim.flushCallbacks();
    const events = received.map(open).map(({ ChangeType, Id, ParentId }) => ({ ChangeType, Id, ParentId }));
    expect(events.filter((e) => e.ChangeType?.endsWith('_party'))).toEqual([
      { ChangeType: 'create_party', Id: '4', ParentId: '1' },
      { ChangeType: 'update_party', Id: '4', ParentId: '3' },
      { ChangeType: 'delete_party', Id: '4', ParentId: undefined },
    ]);
    expect(received.map(innerText).join('')).not.toMatch(/销售部|大客户部|<Name>/);
    expect(enqueued.filter((m) => m.subject === 'party:4')).toHaveLength(3);
  });

  it('flush reverse delivers newest first; duplicate delivers each event twice, the same message (the receiver dedupes it)', async () => {
    await manage('POST', '/users', { userid: 'a', name: 'A' });
    await manage('POST', '/users/a', { department: [2] });
    await manage('DELETE', '/users/a');
    await sim.flushCallbacks({ reverse: true, duplicate: true });
    expect(received).toHaveLength(6);
    const kinds = received.map((r) => open(r).ChangeType);
    expect(kinds.slice(0, 3)).toEqual(['delete_user', 'update_user', 'create_user']);
    expect(kinds.slice(3)).toEqual(kinds.slice(0, 3));
    // Same decrypted message (same CreateTime), different ciphertext: a dedupe on the decrypted
    // hash catches it, one on the raw body would not.
    expect(innerText(received[3]!)).toBe(innerText(received[0]!));
    expect(received[3]!.body).not.toBe(received[0]!.body);
    expect(received.every((r) => r.status === 200)).toBe(true);
    expect(enqueued).toHaveLength(3);
    expect(sim.pendingCallbacks()).toBe(0);
  });

  it('two flushes at once (e.g. the local stack settling while a test flushes) deliver each callback once', async () => {
    for (const userid of ['a', 'b', 'c']) await manage('POST', '/users', { userid, name: userid });
    await Promise.all([sim.flushCallbacks(), sim.flushCallbacks()]);
    expect(received.map((r) => open(r).UserID)).toEqual(['a', 'b', 'c']);
    expect(sim.pendingCallbacks()).toBe(0);
  });

  it('immediate delivery: the callback has arrived when the console call returns; a failed one stays pending, the edit still succeeds', async () => {
    const live = createWecomSim({ ...CORP, callback: { url: receiverUrl, ...CB }, deliver: 'immediate' });
    const s = await live.start();
    const post = (path: string, body: unknown, method = 'POST') => fetch(`${s.baseUrl}${path}`, { method, body: JSON.stringify(body) });
    try {
      expect((await post('/users', { userid: 'x', name: 'X' })).status).toBe(201);
      expect(received).toHaveLength(1);
      expect(open(received[0]!).ChangeType).toBe('create_user');
      expect(live.pendingCallbacks()).toBe(0);

      receiverDown = true; // answers 503
      expect((await post('/users/x', { department: [1] })).status).toBe(200);
      live.setCallbackUrl('http://127.0.0.1:9/nobody'); // connection refused
      expect((await fetch(`${s.baseUrl}/users/x`, { method: 'DELETE' })).status).toBe(200);
      expect(live.pendingCallbacks()).toBe(2);
      expect(live.deliveries.map((d) => d.status)).toEqual([200, 503, 0]);

      receiverDown = false;
      await live.flushCallbacks(); // still unreachable: both stay pending, once each
      expect(live.pendingCallbacks()).toBe(2);
      live.setCallbackUrl(receiverUrl);
      await live.flushCallbacks();
      expect(live.pendingCallbacks()).toBe(0);
      expect(received.filter((r) => r.status === 200).map((r) => open(r).ChangeType)).toEqual(['create_user', 'update_user', 'delete_user']);
    } finally {
      await s.close();
    }
  });

  it('setCallbackUrl keeps a query string the URL already has', async () => {
    sim.setCallbackUrl(`${receiverUrl}?tenant=t1`);
    await manage('POST', '/users', { userid: 'q', name: 'Q' });
    await sim.flushCallbacks();
    expect(received[0]!.query.get('tenant')).toBe('t1');
    expect(received[0]!.status).toBe(200);
  });

  it('without a callback configured, console edits succeed and their events are dropped (counted)', async () => {
    const quiet = createWecomSim({ ...CORP });
    const s = await quiet.start();
    try {
      expect((await fetch(`${s.baseUrl}/users`, { method: 'POST', body: JSON.stringify({ userid: 'z', name: 'Z' }) })).status).toBe(201);
      expect((await fetch(`${s.baseUrl}/users/z`, { method: 'DELETE' })).status).toBe(200);
      expect(quiet.pendingCallbacks()).toBe(0);
      expect(quiet.droppedCallbacks()).toBe(2);
      await quiet.flushCallbacks();
      expect(received).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('a malformed EncodingAESKey is refused when the simulator is created', () => {
    expect(() => createWecomSim({ ...CORP, callback: { url: receiverUrl, token: 't', encodingAESKey: 'short' } })).toThrow(/EncodingAESKey/);
  });

  it('console bodies are capped at 1 MB; unknown routes are 404', async () => {
    const big = await fetch(`${srv.baseUrl}/users`, { method: 'POST', body: JSON.stringify({ userid: 'big', name: 'x'.repeat(1_100_000) }) }).catch(() => undefined);
    if (big) expect(big.status).toBe(413); // or the connection is cut: either way nothing is created
    expect(sim.users.has('big')).toBe(false);
    expect((await manage('GET', '/nothing-here')).status).toBe(404);
  });
});
