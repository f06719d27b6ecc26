/**
 * A loopback WeCom: the contacts API under /cgi-bin/ (the JSON wire contract: HTTP 200 with
 * errcode/errmsg), and a management surface standing in for an administrator editing the
 * contacts in the WeCom admin console, which sends REAL callbacks (AES-encrypted, signed,
 * the XML envelope WeCom posts) to a configured URL.
 *
 * Faithful to the field facts in docs/architecture.md that the product depends on:
 * - two secrets: the contacts-sync token may write and list ids but not read details
 *   (48009); the app token may read but not write (60011);
 * - post-2022 callbacks are minimal: user events carry UserID (+ Department when it
 *   changed), party events Id/ParentId, a department rename sends NOTHING;
 * - writes through the API do not come back as callbacks;
 * - optionally, member details without mobile/email/address (sensitiveFieldsVisible false).
 *
 * Used by the tests and mounted by the local stack under /_sim/wecom. With `persistDir`, the
 * members, departments, tags and undelivered callbacks survive a restart (journal.ts); the
 * access tokens do not: the product's client refetches on 40014, as on a real token loss.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { aesKey, encryptMessage, signature } from '../../../functions/wecom/crypto';
import type { WecomDepartment, WecomUser } from '../../../functions/wecom/contacts';
import { SimJournal } from './journal';

export interface WecomSimOptions {
  corpId: string;
  contactsSecret: string;
  appSecret: string;
  callback?: { url: string; token: string; encodingAESKey: string };
  /** 'manual' (default): callbacks wait for flushCallbacks(); 'immediate': sent as the console edit happens. */
  deliver?: 'manual' | 'immediate';
  /** false: user/get omits mobile, email, biz_mail, telephone, address (apps created after mid-2022). Default true. */
  sensitiveFieldsVisible?: boolean;
  /** Access token lifetime in seconds (default 7200). */
  tokenTtlSeconds?: number;
  /** Keep the directory in `<persistDir>/wecom.jsonl` (journal.ts): it survives a restart, even a kill -9. */
  persistDir?: string;
  /**
   * What `getcallbackip` answers as `ip_list` (addresses or CIDRs). Default ['127.0.0.1']: the
   * simulator posts its callbacks from loopback, so a source check fed by it lets them in.
   */
  callbackIps?: string[];
  /**
   * WeCom's frequency limit per API per corp (DESIGN facts: 10,000 calls/min and 150,000/h;
   * a minute limit exceeded blocks the API for 60 s). Over the limit every call of that API
   * is answered 45009 until the block ends. Off by default.
   */
  rateLimit?: { perApi: number; windowMs?: number; blockMs?: number };
  /** The clock of the rate limit's windows (tests: a virtual one shared with the client). */
  now?: () => number;
}

export interface PendingCallback {
  changeType: string;
  fields: Record<string, string>;
  /** When the console edit happened (WeCom's CreateTime): a later retry or flush keeps it. */
  createTime: number;
}

export interface WecomSim {
  handle(req: IncomingMessage, res: ServerResponse, subpath: string): Promise<void>;
  start(): Promise<{ baseUrl: string; close(): Promise<void> }>;
  users: Map<string, WecomUser>;
  departments: Map<number, WecomDepartment>;
  tags: Map<number, Set<string>>;
  /** Calls per API name ('gettoken', 'user/get', …). */
  calls: Record<string, number>;
  /** Calls answered 45009 per API (rateLimit). */
  rateLimited: Record<string, number>;
  /** Callback deliveries made, the latest 1,000 (status 0 = could not connect). */
  deliveries: Array<{ changeType: string; status: number; answer: string }>;
  /**
   * Deliver the pending callbacks one by one (reverse: newest first; duplicate: every one
   * twice, as WeCom's retries do). A delivery that fails (no 200) stays pending, once.
   */
  flushCallbacks(opts?: { reverse?: boolean; duplicate?: boolean }): Promise<void>;
  pendingCallbacks(): number;
  /** Events dropped because no callback is configured (WeCom has nobody to tell). */
  droppedCallbacks(): number;
  setCallbackUrl(url: string): void;
  /** Every token issued so far is now expired (42001). */
  expireTokens(): void;
  /** The next `times` calls of `api` answer `errcode`. */
  failNext(api: string, errcode: number, times?: number): void;
  /** Change what `getcallbackip` answers (WeCom changing its callback ranges). */
  setCallbackIps(ips: string[]): void;
}

type Secret = 'app' | 'contacts';

const READ_APIS = new Set(['user/get', 'department/list', 'department/get']);
const WRITE_APIS = new Set(['user/create', 'user/update', 'user/delete', 'user/batchdelete', 'tag/addtagusers', 'department/create']);
// getcallbackip: any application's token may call it (WeCom: "权限说明: 无限定").
const BOTH_APIS = new Set(['user/list_id', 'department/simplelist', 'getcallbackip']);
const HIDDEN = ['mobile', 'email', 'biz_mail', 'telephone', 'address'] as const;
const MAX_BODY = 1024 * 1024;

const ERRMSG: Record<number, string> = {
  40001: 'invalid credential',
  40013: 'invalid corpid',
  40014: 'invalid access_token',
  42001: 'access_token expired',
  47001: 'data format error',
  45009: 'api freq out of limit',
  40058: 'invalid parameter',
  48009: 'api forbidden for this secret and ip',
  60011: 'no privilege to access/modify contact/party/agent',
  60003: 'department not found',
  60008: 'department existed',
  60102: 'UserID existed',
  60104: 'mobile existed',
  60106: 'email existed',
  60129: 'mobile and email can not be both empty',
  60111: 'userid not found',
  60123: 'invalid party id',
};

class BodyError extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new BodyError('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const cdata = (v: string) => `<![CDATA[${v.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`;

export function createWecomSim(opts: WecomSimOptions): WecomSim {
  // Fail at construction, not at the first console edit, on a malformed EncodingAESKey.
  if (opts.callback) aesKey(opts.callback.encodingAESKey);
  const journal = new SimJournal(opts.persistDir, 'wecom');
  const users = journal.map<string, WecomUser>('users');
  const departments = journal.map<number, WecomDepartment>('departments');
  const tags = journal.map<number, Set<string>>('tags', { valueIsSet: true });
  // Undelivered callbacks by sequence number, journaled like the rest: an edit whose callback
  // had not gone out before a restart is still delivered after it.
  const pending = journal.map<number, PendingCallback>('pending');
  if (!journal.load()) departments.set(1, { id: 1, name: 'Root', parentid: 0, order: 0 });
  let nextCallback = 1;
  for (const n of pending.keys()) nextCallback = Math.max(nextCallback, n + 1);
  // Callbacks being posted right now: a flush skips them, so none is sent twice at once.
  const sending = new Set<number>();
  const calls: Record<string, number> = {};
  const rateLimited: Record<string, number> = {};
  const deliveries: WecomSim['deliveries'] = [];
  const tokens = new Map<string, { secret: Secret; expiresAt: number }>();
  const failures = new Map<string, { errcode: number; times: number }>();
  let dropped = 0;
  let callbackUrl = opts.callback?.url;
  // user/list_id listings in progress: a cursor names a snapshot taken at the first page, so a
  // full listing copies the member list once (O(n)), not once per page; only a few are kept.
  const listings = new Map<string, WecomUser[]>();
  const MAX_LISTINGS = 4;
  const visible = opts.sensitiveFieldsVisible ?? true;
  let callbackIps = [...(opts.callbackIps ?? ['127.0.0.1'])];
  const ttl = opts.tokenTtlSeconds ?? 7200;

  const send = (res: ServerResponse, status: number, value: unknown) =>
    void res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(value));
  const answer = (res: ServerResponse, errcode: number, extra: Record<string, unknown> = {}) =>
    send(res, 200, { errcode, errmsg: errcode === 0 ? 'ok' : (ERRMSG[errcode] ?? 'error'), ...extra });

  // ---------------------------------------------------------------- callbacks

  async function post(cb: PendingCallback): Promise<boolean> {
    if (!opts.callback || !callbackUrl) return true; // emit() already dropped it; kept for safety
    const inner =
      `<xml><ToUserName>${cdata(opts.corpId)}</ToUserName><FromUserName>${cdata('sys')}</FromUserName>` +
      `<CreateTime>${cb.createTime}</CreateTime><MsgType>${cdata('event')}</MsgType>` +
      `<Event>${cdata('change_contact')}</Event><ChangeType>${cdata(cb.changeType)}</ChangeType>` +
      Object.entries(cb.fields)
        .map(([k, v]) => `<${k}>${cdata(v)}</${k}>`)
        .join('') +
      '</xml>';
    const encrypt = encryptMessage(inner, { encodingAESKey: opts.callback.encodingAESKey, corpId: opts.corpId });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = String(randomInt(1e9));
    const target = new URL(callbackUrl);
    target.searchParams.set('msg_signature', signature(opts.callback.token, timestamp, nonce, encrypt));
    target.searchParams.set('timestamp', timestamp);
    target.searchParams.set('nonce', nonce);
    const body = `<xml><ToUserName>${cdata(opts.corpId)}</ToUserName><Encrypt>${cdata(encrypt)}</Encrypt><AgentID>${cdata('')}</AgentID></xml>`;
    try {
      const res = await fetch(target, { method: 'POST', headers: { 'content-type': 'text/xml' }, body, signal: AbortSignal.timeout(5_000) });
      const text = await res.text();
      record({ changeType: cb.changeType, status: res.status, answer: text.slice(0, 64) });
      return res.status === 200;
    } catch {
      // Only the change type is recorded: the error could carry the URL, never needed here.
      record({ changeType: cb.changeType, status: 0, answer: '' });
      return false;
    }
  }

  function record(d: WecomSim['deliveries'][number]): void {
    deliveries.push(d);
    if (deliveries.length > 1000) deliveries.splice(0, deliveries.length - 1000);
  }

  async function emit(changeType: string, fields: Record<string, string>): Promise<void> {
    if (!opts.callback) {
      dropped++; // no callback configured: nobody to tell, as in WeCom
      return;
    }
    const cb = { changeType, fields, createTime: Math.floor(Date.now() / 1000) };
    // Pending first, even when delivered at once: a kill during the delivery leaves it pending.
    const n = nextCallback++;
    pending.set(n, cb);
    if ((opts.deliver ?? 'manual') === 'immediate') await deliverPending([[n, cb]]);
  }

  /** Post each in turn; delivered ones leave pending, a failed one stays (or comes back), once. */
  async function deliverPending(batch: Array<[number, PendingCallback]>): Promise<void> {
    for (const [n] of batch) sending.add(n);
    try {
      for (const [n, cb] of batch) {
        if (await post(cb)) pending.delete(n);
        else if (!pending.has(n)) pending.set(n, cb); // e.g. a duplicate's second copy failed
      }
    } finally {
      for (const [n] of batch) sending.delete(n);
    }
  }

  // ---------------------------------------------------------------- /cgi-bin API

  function tokenOf(query: URLSearchParams): { secret?: Secret; errcode: number } {
    const t = tokens.get(query.get('access_token') ?? '');
    if (!t) return { errcode: 40014 };
    if (Date.now() >= t.expiresAt) return { errcode: 42001 };
    return { secret: t.secret, errcode: 0 };
  }

  /** One page of user/list_id; undefined on a malformed cursor (40058). */
  function listIds(body: Record<string, unknown>) {
    const limit = Math.min(Math.max(Math.trunc(Number(body.limit ?? 1000)) || 1000, 1), 10_000);
    let listing: string;
    let start: number;
    let all: WecomUser[] | undefined;
    if (body.cursor === undefined || body.cursor === '') {
      listing = randomBytes(9).toString('base64url');
      start = 0;
    } else {
      // cursor = base64url("<listing>:<offset>")
      const m = /^([A-Za-z0-9_-]{12}):(\d{1,9})$/.exec(Buffer.from(String(body.cursor), 'base64url').toString('utf8'));
      if (!m) return undefined;
      listing = m[1]!;
      start = Number(m[2]);
      all = listings.get(listing);
    }
    // An unknown (evicted) listing restarts from a fresh snapshot at the same offset.
    if (!all) {
      all = [...users.values()];
      listings.set(listing, all);
      while (listings.size > MAX_LISTINGS) listings.delete(listings.keys().next().value!);
    }
    const end = Math.min(start + limit, all.length);
    const dept_user: Array<{ userid: string; department: number }> = [];
    for (let i = start; i < end; i++) {
      const u = all[i]!;
      // A member of several departments is listed once per department, as WeCom does.
      for (const department of u.department?.length ? u.department : [1]) dept_user.push({ userid: u.userid, department });
    }
    if (end >= all.length) listings.delete(listing);
    const next = end < all.length ? Buffer.from(`${listing}:${end}`).toString('base64url') : '';
    return { next_cursor: next, dept_user };
  }

  /** The department and everything under it (children indexed once: O(n)). */
  function subtree(rootId: number): WecomDepartment[] {
    const children = new Map<number, number[]>();
    for (const d of departments.values()) {
      if (d.id === d.parentid) continue;
      const list = children.get(d.parentid);
      if (list) list.push(d.id);
      else children.set(d.parentid, [d.id]);
    }
    const out: WecomDepartment[] = [];
    const seen = new Set<number>();
    const stack = departments.has(rootId) ? [rootId] : [];
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ ...departments.get(id)! });
      stack.push(...(children.get(id) ?? []).reverse());
    }
    return out;
  }

  /** Per API: calls in the current window, and until when it is blocked (rateLimit). */
  const windows = new Map<string, { start: number; count: number; blockedUntil: number }>();
  function overLimit(name: string): boolean {
    const limit = opts.rateLimit;
    if (!limit) return false;
    const t = (opts.now ?? Date.now)();
    const w = windows.get(name) ?? { start: t, count: 0, blockedUntil: 0 };
    windows.set(name, w);
    const refuse = () => ((rateLimited[name] = (rateLimited[name] ?? 0) + 1), true);
    if (t < w.blockedUntil) return refuse();
    if (t - w.start >= (limit.windowMs ?? 60_000)) Object.assign(w, { start: t, count: 0 });
    if (++w.count <= limit.perApi) return false;
    w.blockedUntil = t + (limit.blockMs ?? 60_000);
    return refuse();
  }

  async function api(req: IncomingMessage, res: ServerResponse, name: string, query: URLSearchParams): Promise<void> {
    calls[name] = (calls[name] ?? 0) + 1;
    if (name !== 'gettoken' && overLimit(name)) return answer(res, 45009);
    // Injected errcodes (failNext): gettoken fails before issuing, other APIs after the token
    // check (a dead token is still reported as such, as WeCom does).
    const injected = (): number | undefined => {
      const f = failures.get(name);
      if (!f || f.times <= 0) return undefined;
      f.times--;
      return f.errcode;
    };
    if (name === 'gettoken') {
      const failed = injected();
      if (failed !== undefined) return answer(res, failed);
      if (query.get('corpid') !== opts.corpId) return answer(res, 40013);
      const secret = query.get('corpsecret') === opts.appSecret ? 'app' : query.get('corpsecret') === opts.contactsSecret ? 'contacts' : undefined;
      if (!secret) return answer(res, 40001);
      const access_token = randomBytes(24).toString('base64url');
      tokens.set(access_token, { secret, expiresAt: Date.now() + ttl * 1000 });
      return answer(res, 0, { access_token, expires_in: ttl });
    }
    const auth = tokenOf(query);
    if (auth.errcode) return answer(res, auth.errcode);
    const failed = injected();
    if (failed !== undefined) return answer(res, failed);
    if (READ_APIS.has(name) && auth.secret !== 'app') return answer(res, 48009);
    if (WRITE_APIS.has(name) && auth.secret !== 'contacts') return answer(res, 60011);
    if (!READ_APIS.has(name) && !WRITE_APIS.has(name) && !BOTH_APIS.has(name)) return answer(res, 40058);

    const body = req.method === 'POST' ? parseJsonObject(await readBody(req)) : {};
    if (!body) return answer(res, 47001);

    switch (name) {
      case 'getcallbackip':
        return answer(res, 0, { ip_list: [...callbackIps] });
      case 'user/get': {
        const u = users.get(query.get('userid') ?? '');
        if (!u) return answer(res, 60111);
        const out = structuredClone(u) as unknown as Record<string, unknown>;
        if (!visible) for (const f of HIDDEN) delete out[f];
        return answer(res, 0, out);
      }
      case 'user/list_id': {
        const page = listIds(body);
        return page ? answer(res, 0, page) : answer(res, 40058);
      }
      case 'department/list': {
        const id = query.get('id');
        const list = id ? subtree(Number(id)) : [...departments.values()].map((d) => ({ ...d }));
        if (id && !list.length) return answer(res, 60123);
        return answer(res, 0, { department: list });
      }
      case 'department/simplelist':
        return answer(res, 0, { department_id: [...departments.values()].map((d) => ({ id: d.id, parentid: d.parentid, order: d.order ?? 0 })) });
      case 'department/get': {
        const d = departments.get(Number(query.get('id')));
        return d ? answer(res, 0, { department: { ...d } }) : answer(res, 60123);
      }
      case 'department/create': {
        // Writes through the API are not echoed as callbacks (docs/architecture.md).
        const name = typeof body.name === 'string' ? body.name.trim() : '';
        const parentid = Number(body.parentid);
        if (!name || name.length > 64 || /[\\:*?"<>|]/.test(name)) return answer(res, 40058);
        if (!departments.has(parentid)) return answer(res, 60003);
        // WeCom refuses a second department of the same name under one parent (60008).
        if ([...departments.values()].some((d) => d.parentid === parentid && d.name === name)) return answer(res, 60008);
        const id = body.id === undefined ? Math.max(0, ...departments.keys()) + 1 : Number(body.id);
        if (!Number.isInteger(id) || id <= 1 || departments.has(id)) return answer(res, 40058);
        departments.set(id, { id, name, parentid, order: 0 });
        return answer(res, 0, { id });
      }
      case 'user/create': {
        const userid = String(body.userid ?? '');
        if (!userid || typeof body.name !== 'string') return answer(res, 40058);
        if (users.has(userid)) return answer(res, 60102);
        // A mobile or an email is required, and each is unique in the company.
        if (!body.mobile && !body.email) return answer(res, 60129);
        if (body.mobile && [...users.values()].some((u) => u.mobile === body.mobile)) return answer(res, 60104);
        if (body.email && [...users.values()].some((u) => u.email === body.email)) return answer(res, 60106);
        const dept = validDepartments(body.department) ?? [1];
        if (!dept.length) return answer(res, 60003);
        // status 4: invited, not yet active (a member created through the API has not joined).
        users.set(userid, { enable: 1, status: 4, ...(body as Partial<WecomUser>), userid, department: dept, main_department: dept[0]! });
        return answer(res, 0);
      }
      case 'user/update': {
        const u = users.get(String(body.userid ?? ''));
        if (!u) return answer(res, 60111);
        const dept = validDepartments(body.department);
        if (dept && !dept.length) return answer(res, 60003);
        const { userid: _id, ...patch } = body as Partial<WecomUser>;
        Object.assign(u, patch);
        if (dept && !dept.includes(u.main_department ?? -1)) u.main_department = dept[0]!;
        users.set(u.userid, u); // stored again: journals the in-place change
        return answer(res, 0);
      }
      case 'user/delete': {
        const userid = query.get('userid') ?? '';
        if (!users.delete(userid)) return answer(res, 60111);
        return answer(res, 0);
      }
      case 'user/batchdelete': {
        const list = Array.isArray(body.useridlist) ? (body.useridlist as unknown[]).map(String) : [];
        if (!list.length || list.length > 200) return answer(res, 40058);
        // One bad id fails the whole call (docs/architecture.md): nothing is deleted.
        if (list.some((id) => !users.has(id))) return answer(res, 60111);
        for (const id of list) users.delete(id);
        return answer(res, 0);
      }
      case 'tag/addtagusers': {
        const tagid = Number(body.tagid);
        const list = Array.isArray(body.userlist) ? (body.userlist as unknown[]).map(String) : [];
        if (!Number.isInteger(tagid) || tagid <= 0) return answer(res, 40058);
        if (!tags.has(tagid)) tags.set(tagid, new Set());
        const set = tags.get(tagid)!; // the stored Set: with persistDir, a journaled copy
        const invalid = list.filter((id) => !users.has(id));
        for (const id of list) if (users.has(id)) set.add(id);
        return answer(res, 0, invalid.length ? { invalidlist: invalid.join('|') } : {});
      }
    }
    return answer(res, 40058);
  }

  // ---------------------------------------------------------------- console (management) routes

  function validDepartments(ids: unknown): number[] | undefined {
    if (ids === undefined) return undefined;
    if (!Array.isArray(ids) || !ids.length || !ids.every((d) => Number.isInteger(d) && departments.has(d as number))) return [];
    return ids as number[];
  }

  async function manage(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const m = /^\/(users|departments)(?:\/([^/]+))?$/.exec(path);
    if (!m) return send(res, 404, { error: 'not found' });
    const kind = m[1];
    const id = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    const method = req.method ?? 'GET';
    const body = method === 'POST' ? parseJsonObject(await readBody(req)) : {};
    if (!body) return send(res, 400, { error: 'body must be a JSON object' });

    if (kind === 'users') {
      if (method === 'GET' && id === undefined) return send(res, 200, [...users.values()]);
      if (method === 'GET') return users.has(id!) ? send(res, 200, users.get(id!)) : send(res, 404, { error: 'no such member' });
      if (method === 'POST' && id === undefined) {
        const userid = typeof body.userid === 'string' ? body.userid.trim() : '';
        if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(userid)) return send(res, 400, { error: 'userid: 1-64 letters, digits, _ - . @' });
        if (typeof body.name !== 'string' || !body.name.trim()) return send(res, 400, { error: 'name is required' });
        if (users.has(userid)) return send(res, 400, { error: 'userid already exists' });
        const dept = validDepartments(body.department) ?? [1];
        if (!dept.length) return send(res, 400, { error: 'department: a non-empty list of existing department ids' });
        const user: WecomUser = { enable: 1, status: 1, ...(body as Partial<WecomUser>), userid, department: dept, main_department: dept[0]! };
        users.set(userid, user);
        await emit('create_user', { UserID: userid, Department: dept.join(',') });
        return send(res, 201, { ok: true, userid });
      }
      if (method === 'POST') {
        const u = users.get(id!);
        if (!u) return send(res, 404, { error: 'no such member' });
        const dept = validDepartments(body.department);
        if (dept && !dept.length) return send(res, 400, { error: 'department: a non-empty list of existing department ids' });
        const before = (u.department ?? []).join(',');
        const { userid: _ignored, ...patch } = body as Partial<WecomUser>;
        Object.assign(u, patch);
        if (dept) u.main_department = dept.includes(u.main_department ?? -1) ? u.main_department! : dept[0]!;
        users.set(u.userid, u); // stored again: journals the in-place change
        const after = (u.department ?? []).join(',');
        // Post-2022 callback content (docs/architecture.md): UserID, plus Department when it changed. Other
        // changed fields (name, position, mobile…) are deliberately NOT sent: the receiver must
        // fetch them with user/get, which is what the product relies on.
        await emit('update_user', { UserID: u.userid, ...(after !== before ? { Department: after } : {}) });
        return send(res, 200, { ok: true });
      }
      if (method === 'DELETE') {
        if (!users.delete(id!)) return send(res, 404, { error: 'no such member' });
        await emit('delete_user', { UserID: id! });
        return send(res, 200, { ok: true });
      }
      return send(res, 405, { error: 'method not allowed' });
    }

    // departments
    if (method === 'GET' && id === undefined) return send(res, 200, [...departments.values()]);
    const depId = id === undefined ? undefined : Number(id);
    if (id !== undefined && !Number.isInteger(depId)) return send(res, 400, { error: 'department id must be an integer' });
    if (method === 'GET') return departments.has(depId!) ? send(res, 200, departments.get(depId!)) : send(res, 404, { error: 'no such department' });
    if (method === 'POST' && depId === undefined) {
      const name = typeof body.name === 'string' ? body.name.trim() : '';
      const parentid = body.parentid === undefined ? 1 : Number(body.parentid);
      if (!name) return send(res, 400, { error: 'name is required' });
      if (!departments.has(parentid)) return send(res, 400, { error: 'parentid: no such department' });
      const newId = body.id === undefined ? Math.max(0, ...departments.keys()) + 1 : Number(body.id);
      if (!Number.isInteger(newId) || newId <= 0 || departments.has(newId)) return send(res, 400, { error: 'id: a new positive integer' });
      departments.set(newId, { id: newId, name, parentid, order: 0 });
      await emit('create_party', { Id: String(newId), ParentId: String(parentid) });
      return send(res, 201, { ok: true, id: newId });
    }
    if (method === 'POST') {
      const d = departments.get(depId!);
      if (!d) return send(res, 404, { error: 'no such department' });
      if (body.parentid !== undefined && !departments.has(Number(body.parentid))) return send(res, 400, { error: 'parentid: no such department' });
      if (body.parentid !== undefined && subtree(d.id).some((x) => x.id === Number(body.parentid))) {
        return send(res, 400, { error: 'parentid: a department cannot move under itself' });
      }
      const moved = body.parentid !== undefined && Number(body.parentid) !== d.parentid;
      if (typeof body.name === 'string' && body.name.trim()) d.name = body.name.trim(); // a rename: WeCom sends no event
      if (moved) d.parentid = Number(body.parentid);
      departments.set(d.id, d); // stored again: journals the in-place change
      if (moved) {
        await emit('update_party', { Id: String(d.id), ParentId: String(d.parentid) });
      }
      return send(res, 200, { ok: true });
    }
    if (method === 'DELETE') {
      if (!departments.has(depId!)) return send(res, 404, { error: 'no such department' });
      if ([...departments.values()].some((c) => c.parentid === depId) || [...users.values()].some((u) => u.department?.includes(depId!))) {
        return send(res, 400, { error: 'department still has members or sub-departments' });
      }
      departments.delete(depId!);
      await emit('delete_party', { Id: String(depId) });
      return send(res, 200, { ok: true });
    }
    return send(res, 405, { error: 'method not allowed' });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, subpath: string): Promise<void> {
    const url = new URL(subpath || '/', 'http://sim.invalid');
    try {
      if (url.pathname.startsWith('/cgi-bin/')) return await api(req, res, url.pathname.slice('/cgi-bin/'.length), url.searchParams);
      return await manage(req, res, url.pathname);
    } catch (err) {
      if (res.headersSent) return void res.destroy();
      if (err instanceof BodyError) return send(res, 413, { error: err.message });
      return send(res, 500, { error: 'simulator error' });
    }
  }

  return {
    handle,
    users,
    departments,
    tags,
    calls,
    rateLimited,
    deliveries,
    async start() {
      const server = createServer((req, res) => void handle(req, res, req.url ?? '/'));
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      return {
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () =>
          new Promise<void>((ok) => {
            server.closeAllConnections();
            server.close(() => ok());
          }),
      };
    },
    async flushCallbacks(o = {}) {
      let batch = [...pending].filter(([n]) => !sending.has(n));
      if (o.reverse) batch.reverse();
      if (o.duplicate) batch = [...batch, ...batch];
      await deliverPending(batch);
    },
    pendingCallbacks: () => pending.size,
    droppedCallbacks: () => dropped,
    setCallbackUrl(url: string) {
      callbackUrl = url;
    },
    expireTokens() {
      for (const t of tokens.values()) t.expiresAt = 0;
    },
    failNext(api: string, errcode: number, times = 1) {
      failures.set(api, { errcode, times });
    },
    setCallbackIps(ips: string[]) {
      callbackIps = [...ips];
    },
  };
}
