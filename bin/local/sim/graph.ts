/**
 * Loopback Microsoft Graph: the part of the wire contract the adapter uses, for tests and the
 * local dev server (mounted under /_sim/graph). Implements the token endpoint (client
 * credentials), users (list/filter/paging, create with validation, PATCH, soft delete into
 * deletedItems), deleted items (list with the mandatory type cast, restore, hard delete),
 * delta query, security groups and membership refs, JSON batching, subscriptions with the
 * validation handshake, change + lifecycle notifications, Bearer checks, throttling
 * (429 + Retry-After) and Graph's error body shape.
 *
 * With `persistDir`, users, deleted items, groups, subscriptions and the delta state survive
 * a restart (journal.ts), so a delta link issued before it still works after it. Access
 * tokens do not: the adapter refetches one on 401.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { SimJournal } from './journal';

export interface GraphUser {
  id: string;
  accountEnabled: boolean;
  displayName: string;
  mailNickname: string;
  userPrincipalName: string;
  mail: string | null;
  mobilePhone: string | null;
  businessPhones: string[];
  jobTitle: string | null;
  department: string | null;
  employeeId: string | null;
  usageLocation: string | null;
  /** Kept only to prove one was sent; never returned. */
  passwordSet: boolean;
  deletedDateTime?: string;
}

export interface GraphGroup {
  id: string;
  displayName: string;
  mailNickname: string;
  mailEnabled: boolean;
  securityEnabled: boolean;
  description: string | null;
  members: Set<string>;
}

export interface SimSubscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | null;
  clientState: string | null;
  expirationDateTime: string;
  applicationId: string;
}

export type NotifyFn = (url: string, body: string, headers: Record<string, string>) => Promise<{ status: number; body: string }>;

export interface GraphSimOptions {
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  rateLimit?: { perSecond: number };
  /** Fraction of /v1.0 calls answered 429 with Retry-After (seeded by `random`). */
  failRate?: number;
  random?: () => number;
  /** Retry-After seconds on 429 (default 1). */
  retryAfterSeconds?: number;
  now?: () => Date;
  /** Page size of GET /users when $top is absent (Graph: 100) and of delta pages. */
  pageSize?: number;
  /** Largest $top honoured (Graph: 999); lower it to exercise paging with few users. */
  maxTop?: number;
  /** Access token lifetime in seconds (default 3599). */
  tokenLifetimeSeconds?: number;
  /** How long the validation handshake may take (Graph: 10 s). */
  validationTimeoutMs?: number;
  organizationId?: string;
  /** Keep the directory in `<persistDir>/graph.jsonl` (journal.ts): it survives a restart, even a kill -9. */
  persistDir?: string;
}

export interface RecordedRequest {
  method: string;
  route: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
}

export interface GraphSim {
  handle(req: IncomingMessage, res: ServerResponse, subpath: string): void;
  start(): Promise<{ baseUrl: string; close(): Promise<void> }>;
  users: Map<string, GraphUser>;
  deletedItems: Map<string, GraphUser>;
  groups: Map<string, GraphGroup>;
  subscriptions: Map<string, SimSubscription>;
  /** 'METHOD /route-template' → count (throttled calls included; token calls as 'POST /token'). */
  calls: Record<string, number>;
  requests: RecordedRequest[];
  deliveries: Array<{ url: string; kind: 'validation' | 'notification' | 'lifecycle'; status: number; body: string }>;
  setNotify(fn?: NotifyFn): void;
  flushNotifications(): Promise<void>;
  emitLifecycle(subscriptionId: string, event: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed'): Promise<{ status: number }>;
  /** Invalidate every issued access token (next /v1.0 call gets 401). */
  revokeTokens(): void;
  /** Invalidate every delta token (next delta call gets 410). */
  expireDeltaTokens(): void;
  /** Seed a user directly (not counted, no notification). */
  seedUser(u: Partial<GraphUser> & { userPrincipalName: string; displayName: string }): GraphUser;
  /** Permanently delete from deletedItems (fires a 'deleted' notification). */
  hardDelete(id: string): void;
  setFailRate(rate: number): void;
}

interface Res {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

const USER_PROPS = new Set([
  'accountEnabled',
  'displayName',
  'mailNickname',
  'userPrincipalName',
  'mail',
  'mobilePhone',
  'businessPhones',
  'jobTitle',
  'department',
  'employeeId',
  'usageLocation',
  'passwordProfile',
]);
/** Every user property the sim returns (a create's or restore's answer). */
const ALL_USER_PROPS = [...USER_PROPS].filter((p) => p !== 'passwordProfile').join(',');
const MAX_SUB_MINUTES = 41_760;

function gErr(status: number, code: string, message: string, extra: Record<string, unknown> = {}): Res {
  return {
    status,
    body: { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() }, ...extra } },
  };
}

export function createGraphSim(opts: GraphSimOptions = {}): GraphSim {
  const tenantId = opts.tenantId ?? 'tenant-1';
  const clientId = opts.clientId ?? 'client-1';
  const clientSecret = opts.clientSecret ?? 'secret-1';
  const organizationId = opts.organizationId ?? tenantId;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? (() => new Date());
  const pageSize = opts.pageSize ?? 100;
  let failRate = opts.failRate ?? 0;

  const journal = new SimJournal(opts.persistDir, 'graph');
  const users = journal.map<string, GraphUser>('users');
  const deletedItems = journal.map<string, GraphUser>('deletedItems');
  const groups = journal.map<string, GraphGroup>('groups', { setField: 'members' });
  const subscriptions = journal.map<string, SimSubscription>('subscriptions');
  // Delta state: seq → the user changed at that step (seq increases on every user mutation),
  // the permanently deleted ids, and the token epoch (bumped by expireDeltaTokens).
  const changeLog = journal.map<number, string>('changeLog');
  const hardDeleted = journal.set<string>('hardDeleted');
  const meta = journal.map<string, number>('meta');
  journal.load();
  let seq = changeLog.size; // seq runs 1, 2, 3… and the log is never trimmed
  let deltaEpoch = meta.get('deltaEpoch') ?? 1;
  const calls: Record<string, number> = {};
  const requests: RecordedRequest[] = [];
  const deliveries: GraphSim['deliveries'] = [];
  const tokens = new Map<string, number>(); // token → expiry ms
  const pending = new Set<Promise<unknown>>();
  let notify: NotifyFn | undefined;
  // Rate limiter: fixed one-second window.
  let windowStart = 0;
  let windowCount = 0;

  const count = (key: string) => (calls[key] = (calls[key] ?? 0) + 1);

  // ---------------------------------------------------------------- delivery

  async function deliver(url: string, body: string, headers: Record<string, string>, timeoutMs: number) {
    if (notify) return notify(url, body, headers);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const r = await fetch(url, { method: 'POST', headers, body, signal: ctl.signal });
      return { status: r.status, body: await r.text(), contentType: r.headers.get('content-type') ?? '' };
    } finally {
      clearTimeout(timer);
    }
  }

  function track<T>(p: Promise<T>): Promise<T> {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  }

  function liveSubscriptions(): SimSubscription[] {
    const t = now().getTime();
    for (const [id, s] of subscriptions) if (Date.parse(s.expirationDateTime) <= t) subscriptions.delete(id);
    return [...subscriptions.values()];
  }

  function fireChange(userId: string, changeType: 'updated' | 'deleted') {
    for (const s of liveSubscriptions()) {
      if (!/^\/?users$/i.test(s.resource) || !s.changeType.split(',').includes(changeType)) continue;
      const payload = {
        value: [
          {
            // changeNotification.id: unique per notification, the same on redelivery.
            id: randomUUID(),
            subscriptionId: s.id,
            clientState: s.clientState,
            changeType,
            resource: `Users/${userId}`,
            resourceData: { '@odata.type': '#Microsoft.Graph.User', '@odata.id': `Users/${userId}`, id: userId, organizationId },
            subscriptionExpirationDateTime: s.expirationDateTime,
            tenantId,
          },
        ],
      };
      const body = JSON.stringify(payload);
      // Asynchronous: Graph never holds the write's response for the delivery.
      track(
        new Promise((r) => setImmediate(r))
          .then(() => deliver(s.notificationUrl, body, { 'content-type': 'application/json; charset=utf-8' }, 3_000))
          .then(
            (r) => deliveries.push({ url: s.notificationUrl, kind: 'notification', status: r.status, body }),
            () => deliveries.push({ url: s.notificationUrl, kind: 'notification', status: 0, body }),
          ),
      );
    }
  }

  function logChange(id: string) {
    seq += 1;
    changeLog.set(seq, id);
  }

  async function validateEndpoint(url: string): Promise<boolean> {
    // Graph's real tokens contain spaces and punctuation: the receiver must decode and echo verbatim.
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()} +/&=`;
    const target = `${url}${url.includes('?') ? '&' : '?'}validationToken=${encodeURIComponent(token)}`;
    const timeoutMs = opts.validationTimeoutMs ?? 10_000;
    try {
      const r = await Promise.race([
        deliver(target, '', { 'content-type': 'text/plain; charset=utf-8' }, timeoutMs),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs)),
      ]);
      deliveries.push({ url, kind: 'validation', status: r.status, body: r.body });
      const ct = (r as { contentType?: string }).contentType;
      return r.status === 200 && r.body === token && (ct === undefined || ct.startsWith('text/plain'));
    } catch {
      deliveries.push({ url, kind: 'validation', status: 0, body: '' });
      return false;
    }
  }

  // ---------------------------------------------------------------- helpers

  function selectUser(u: GraphUser, select?: string): Record<string, unknown> {
    const full: Record<string, unknown> = {
      id: u.id,
      accountEnabled: u.accountEnabled,
      displayName: u.displayName,
      mailNickname: u.mailNickname,
      userPrincipalName: u.userPrincipalName,
      mail: u.mail,
      mobilePhone: u.mobilePhone,
      businessPhones: u.businessPhones,
      jobTitle: u.jobTitle,
      department: u.department,
      employeeId: u.employeeId,
      usageLocation: u.usageLocation,
      ...(u.deletedDateTime ? { deletedDateTime: u.deletedDateTime } : {}),
    };
    if (!select) {
      // Graph's default user projection does not include employeeId/department/accountEnabled.
      const { employeeId: _e, department: _d, accountEnabled: _a, usageLocation: _u, mailNickname: _m, ...dflt } = full;
      return dflt;
    }
    const out: Record<string, unknown> = { id: u.id };
    for (const k of select.split(',').map((s) => s.trim())) if (k in full) out[k] = full[k];
    return out;
  }

  function parseFilter(filter: string): { prop: string; value: string } | 'unsupported' {
    const m = /^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$/.exec(filter);
    if (!m) return 'unsupported';
    return { prop: m[1]!, value: m[2]!.replace(/''/g, "'") };
  }

  function b64(obj: unknown): string {
    return Buffer.from(JSON.stringify(obj)).toString('base64url');
  }
  function unb64<T>(s: string): T | undefined {
    try {
      return JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as T;
    } catch {
      return undefined;
    }
  }

  function validateUserPatch(body: Record<string, unknown>, forCreate: boolean): Res | undefined {
    for (const k of Object.keys(body)) {
      if (!USER_PROPS.has(k)) return gErr(400, 'Request_BadRequest', `Property '${k}' does not exist on type 'microsoft.graph.user'.`);
    }
    if ('businessPhones' in body) {
      const p = body.businessPhones;
      if (!Array.isArray(p) || p.length > 1) return gErr(400, 'Request_BadRequest', 'Only one number can be set for businessPhones.');
    }
    if ('mailNickname' in body && (typeof body.mailNickname !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(body.mailNickname))) {
      return gErr(400, 'Request_BadRequest', 'Invalid value specified for property mailNickname of resource User.');
    }
    if ('displayName' in body && (typeof body.displayName !== 'string' || !body.displayName)) {
      return gErr(400, 'Request_BadRequest', 'Invalid value specified for property displayName of resource User.');
    }
    if ('userPrincipalName' in body) {
      const upn = body.userPrincipalName;
      if (typeof upn !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(upn)) {
        return gErr(400, 'Request_BadRequest', 'Invalid value specified for property userPrincipalName of resource User.');
      }
    }
    if (forCreate) {
      for (const k of ['accountEnabled', 'displayName', 'mailNickname', 'userPrincipalName', 'passwordProfile']) {
        if (!(k in body)) return gErr(400, 'Request_BadRequest', `A value is required for property '${k}' of resource 'User'.`);
      }
      const pwd = (body.passwordProfile as { password?: unknown } | undefined)?.password;
      if (typeof pwd !== 'string' || !complexEnough(pwd)) {
        return gErr(400, 'Request_BadRequest', 'The specified password does not comply with password complexity requirements.');
      }
    }
    return undefined;
  }

  function upnTaken(upn: string, exceptId?: string): boolean {
    const l = upn.toLowerCase();
    for (const u of [...users.values(), ...deletedItems.values()]) if (u.id !== exceptId && u.userPrincipalName.toLowerCase() === l) return true;
    return false;
  }

  function conflict(prop: string): Res {
    return gErr(400, 'Request_BadRequest', `Another object with the same value for property ${prop} already exists.`, {
      details: [{ code: 'ObjectConflict', message: `Another object with the same value for property ${prop} already exists.`, target: prop }],
    });
  }

  function applyPatch(u: GraphUser, body: Record<string, unknown>) {
    for (const [k, v] of Object.entries(body)) {
      if (k === 'passwordProfile') u.passwordSet = true;
      else (u as unknown as Record<string, unknown>)[k] = v === undefined ? null : v;
    }
  }

  // ---------------------------------------------------------------- router

  async function route(method: string, path: string, query: URLSearchParams, headers: Record<string, string>, body: unknown, base: string, inBatch: boolean): Promise<Res & { routeKey: string }> {
    const r = (routeKey: string, res: Res) => ({ ...res, routeKey });
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);

    // --- token endpoint: /{tenant}/oauth2/v2.0/token
    if (!inBatch && seg.length === 4 && seg[1] === 'oauth2' && seg[2] === 'v2.0' && seg[3] === 'token' && method === 'POST') {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      if (seg[0] !== tenantId) return r('POST /token', { status: 400, body: { error: 'invalid_request', error_description: 'AADSTS90002: Tenant not found.' } });
      if (form.get('grant_type') !== 'client_credentials') return r('POST /token', { status: 400, body: { error: 'unsupported_grant_type', error_description: 'AADSTS70003' } });
      if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
        return r('POST /token', { status: 401, body: { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' } });
      }
      if (form.get('scope') !== 'https://graph.microsoft.com/.default') return r('POST /token', { status: 400, body: { error: 'invalid_scope', error_description: 'AADSTS1002012' } });
      const lifetime = opts.tokenLifetimeSeconds ?? 3599;
      const token = 'sim.' + randomBytes(24).toString('base64url');
      tokens.set(token, now().getTime() + lifetime * 1000);
      return r('POST /token', { status: 200, body: { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token } });
    }

    if (seg[0] !== 'v1.0') return r(`${method} /unknown`, gErr(404, 'Request_ResourceNotFound', 'Unknown route.'));
    const s = seg.slice(1);
    const key = routeKeyOf(method, s);

    if (!inBatch) {
      const auth = headers['authorization'] ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      const exp = tokens.get(token);
      if (!exp || exp <= now().getTime()) return r(key, gErr(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.'));
    }
    // Throttling applies to every request, batched ones included (Graph evaluates them individually).
    const t = now().getTime();
    if (opts.rateLimit) {
      if (t - windowStart >= 1000) {
        windowStart = t;
        windowCount = 0;
      }
      windowCount += 1;
      if (windowCount > opts.rateLimit.perSecond) return r(key, throttled());
    }
    if (failRate > 0 && random() < failRate) return r(key, throttled());

    return r(key, await dispatch(method, s, query, headers, body, base));
  }

  function throttled(): Res {
    const res = gErr(429, 'TooManyRequests', 'Too many requests.');
    return { ...res, headers: { 'retry-after': String(opts.retryAfterSeconds ?? 1) } };
  }

  async function dispatch(method: string, s: string[], query: URLSearchParams, headers: Record<string, string>, body: unknown, base: string): Promise<Res> {
    const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    // ---- users
    if (s[0] === 'users' && s.length === 1) {
      if (method === 'GET') {
        return listUsers(users, ['employeeId', 'mail', 'userPrincipalName', 'mailNickname', 'displayName'], query, headers, {
          link: `${base}/v1.0/users`,
          context: `${base}/v1.0/$metadata#users`,
          project: selectUser,
        });
      }
      if (method === 'POST') {
        const bad = validateUserPatch(b, true);
        if (bad) return bad;
        if (upnTaken(String(b.userPrincipalName))) return conflict('userPrincipalName');
        const u: GraphUser = {
          id: randomUUID(),
          accountEnabled: Boolean(b.accountEnabled),
          displayName: String(b.displayName),
          mailNickname: String(b.mailNickname),
          userPrincipalName: String(b.userPrincipalName),
          mail: null,
          mobilePhone: null,
          businessPhones: [],
          jobTitle: null,
          department: null,
          employeeId: null,
          usageLocation: null,
          passwordSet: false,
        };
        applyPatch(u, b);
        users.set(u.id, u);
        logChange(u.id);
        fireChange(u.id, 'updated');
        return { status: 201, body: selectUser(u, ALL_USER_PROPS) };
      }
    }
    if (s[0] === 'users' && s[1] === 'delta' && s.length === 2 && method === 'GET') return delta(query, base);
    if (s[0] === 'users' && s.length === 2) {
      const id = s[1]!;
      const u = users.get(id);
      if (!u) return gErr(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
      if (method === 'GET') return { status: 200, body: selectUser(u, query.get('$select') ?? undefined) };
      if (method === 'PATCH') {
        const bad = validateUserPatch(b, false);
        if (bad) return bad;
        if ('userPrincipalName' in b && upnTaken(String(b.userPrincipalName), id)) return conflict('userPrincipalName');
        applyPatch(u, b);
        users.set(id, u); // stored again: journals the in-place change
        logChange(id);
        fireChange(id, 'updated');
        return { status: 204 };
      }
      if (method === 'DELETE') {
        users.delete(id);
        u.deletedDateTime = now().toISOString();
        deletedItems.set(id, u);
        for (const g of groups.values()) g.members.delete(id);
        logChange(id);
        fireChange(id, 'updated'); // soft delete fires 'updated' for users
        return { status: 204 };
      }
    }
    // ---- deleted items (Graph keeps a deleted user 30 days; listing them needs the type cast)
    if (s[0] === 'directory' && s[1] === 'deletedItems' && s.length === 2 && method === 'GET') {
      return gErr(400, 'Request_BadRequest', 'The type of deleted items must be given as a cast segment, e.g. /directory/deletedItems/microsoft.graph.user.');
    }
    if (s[0] === 'directory' && s[1] === 'deletedItems' && s[2] === 'microsoft.graph.user' && s.length === 3 && method === 'GET') {
      return listUsers(deletedItems, ['employeeId', 'userPrincipalName', 'mail'], query, headers, {
        link: `${base}/v1.0/directory/deletedItems/microsoft.graph.user`,
        context: `${base}/v1.0/$metadata#directoryObjects/microsoft.graph.user`,
        project: deletedView,
      });
    }
    if (s[0] === 'directory' && s[1] === 'deletedItems' && s[3] === 'restore' && s.length === 4 && method === 'POST') return restoreUser(s[2]!);
    if (s[0] === 'directory' && s[1] === 'deletedItems' && s.length === 3) {
      const u = deletedItems.get(s[2]!);
      if (!u) return gErr(404, 'Request_ResourceNotFound', `Resource '${s[2]}' does not exist.`);
      if (method === 'GET') return { status: 200, body: deletedView(u, query.get('$select') ?? undefined) };
      if (method === 'DELETE') {
        hardDeleteUser(u.id);
        return { status: 204 };
      }
    }
    // ---- groups
    if (s[0] === 'groups' && s.length === 1) {
      if (method === 'GET') {
        let list = [...groups.values()];
        const filter = query.get('$filter');
        if (filter) {
          const f = parseFilter(filter);
          if (f === 'unsupported' || !['displayName', 'mailNickname'].includes(f.prop)) return gErr(400, 'Request_UnsupportedQuery', 'Unsupported query.');
          list = list.filter((g) => String((g as unknown as Record<string, unknown>)[f.prop]).toLowerCase() === f.value.toLowerCase());
        }
        return { status: 200, body: { value: list.map(({ members: _m, ...g }) => g) } };
      }
      if (method === 'POST') {
        for (const k of ['displayName', 'mailEnabled', 'mailNickname', 'securityEnabled']) {
          if (!(k in b)) return gErr(400, 'Request_BadRequest', `A value is required for property '${k}' of resource 'Group'.`);
        }
        const unified = Array.isArray(b.groupTypes) && b.groupTypes.includes('Unified');
        if (b.mailEnabled === true && !unified) {
          // Graph cannot create mail-enabled security groups or distribution lists.
          return gErr(400, 'Request_BadRequest', 'Creating mail-enabled security groups or distribution groups is not supported.');
        }
        const g: GraphGroup = {
          id: randomUUID(),
          displayName: String(b.displayName),
          mailNickname: String(b.mailNickname),
          mailEnabled: Boolean(b.mailEnabled),
          securityEnabled: Boolean(b.securityEnabled),
          description: typeof b.description === 'string' ? b.description : null,
          members: new Set(),
        };
        groups.set(g.id, g);
        const { members: _m, ...wire } = g;
        return { status: 201, body: wire };
      }
    }
    if (s[0] === 'groups' && s[2] === 'members') {
      const g = groups.get(s[1]!);
      if (!g) return gErr(404, 'Request_ResourceNotFound', `Resource '${s[1]}' does not exist.`);
      if (s.length === 4 && s[3] === '$ref' && method === 'POST') {
        const ref = String(b['@odata.id'] ?? '');
        const uid = ref.split('/').pop() ?? '';
        if (!users.has(uid)) return gErr(404, 'Request_ResourceNotFound', `Resource '${uid}' does not exist.`);
        if (g.members.has(uid)) return gErr(400, 'Request_BadRequest', "One or more added object references already exist for the following modified properties: 'members'.");
        g.members.add(uid);
        return { status: 204 };
      }
      if (s.length === 5 && s[4] === '$ref' && method === 'DELETE') {
        if (!g.members.delete(s[3]!)) return gErr(404, 'Request_ResourceNotFound', `Resource '${s[3]}' does not exist.`);
        return { status: 204 };
      }
    }
    // ---- $batch
    if (s[0] === '$batch' && s.length === 1 && method === 'POST') {
      const reqs = (b.requests ?? []) as Array<{ id: string; method: string; url: string; headers?: Record<string, string>; body?: unknown }>;
      if (!Array.isArray(reqs) || reqs.length === 0 || reqs.length > 20) {
        return gErr(400, 'BadRequest', 'Invalid batch payload: the number of requests must be between 1 and 20.');
      }
      const responses = [];
      for (const q of reqs) {
        const u = new URL(q.url.startsWith('/') ? q.url : `/${q.url}`, 'http://batch');
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(q.headers ?? {})) h[k.toLowerCase()] = v;
        const res = await route(q.method.toUpperCase(), `/v1.0${u.pathname}`, u.searchParams, h, q.body, base, true);
        count(res.routeKey);
        responses.push({ id: q.id, status: res.status, headers: { 'content-type': 'application/json', ...res.headers }, body: res.body ?? null });
      }
      return { status: 200, body: { responses } };
    }
    // ---- subscriptions
    if (s[0] === 'subscriptions' && s.length === 1) {
      if (method === 'GET') return { status: 200, body: { value: liveSubscriptions().map((x) => ({ ...x, clientState: null })) } };
      if (method === 'POST') return createSubscription(b);
    }
    if (s[0] === 'subscriptions' && s.length === 2) {
      liveSubscriptions();
      const sub = subscriptions.get(s[1]!);
      if (!sub) return gErr(404, 'ResourceNotFound', 'The object was not found.');
      if (method === 'GET') return { status: 200, body: { ...sub, clientState: null } };
      if (method === 'DELETE') {
        subscriptions.delete(sub.id);
        return { status: 204 };
      }
      if (method === 'PATCH') {
        const exp = checkExpiration(b.expirationDateTime);
        if (typeof exp !== 'string') return exp;
        sub.expirationDateTime = exp;
        subscriptions.set(sub.id, sub); // stored again: journals the in-place change
        return { status: 200, body: { ...sub, clientState: null } };
      }
    }
    return gErr(405, 'Request_BadRequest', 'Unsupported method or route.');
  }

  function checkExpiration(v: unknown): string | Res {
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    if (Number.isNaN(t)) return gErr(400, 'InvalidRequest', 'expirationDateTime is required.');
    const n = now().getTime();
    if (t <= n) return gErr(400, 'InvalidRequest', 'Subscription expiration must be in the future.');
    if (t > n + MAX_SUB_MINUTES * 60_000 + 1000) return gErr(400, 'InvalidRequest', `Subscription expiration can only be ${MAX_SUB_MINUTES} minutes in the future.`);
    return new Date(t).toISOString();
  }

  async function createSubscription(b: Record<string, unknown>): Promise<Res> {
    const resource = String(b.resource ?? '');
    const changeType = String(b.changeType ?? '');
    const notificationUrl = String(b.notificationUrl ?? '');
    if (!/^\/?users$/i.test(resource)) return gErr(400, 'InvalidRequest', 'Unsupported resource.');
    if (!changeType || !changeType.split(',').every((c) => c === 'updated' || c === 'deleted')) {
      return gErr(400, 'InvalidRequest', 'Unsupported changeType for resource users.');
    }
    if (typeof b.clientState === 'string' && b.clientState.length > 128) return gErr(400, 'InvalidRequest', 'clientState must be at most 128 characters.');
    if (!/^https?:\/\//.test(notificationUrl)) return gErr(400, 'InvalidRequest', 'notificationUrl must be a URL.');
    const exp = checkExpiration(b.expirationDateTime);
    if (typeof exp !== 'string') return exp;
    const lifecycle = typeof b.lifecycleNotificationUrl === 'string' ? b.lifecycleNotificationUrl : null;
    // Both endpoints must pass the validation handshake before the subscription exists.
    for (const url of new Set([notificationUrl, ...(lifecycle ? [lifecycle] : [])])) {
      if (!(await validateEndpoint(url))) {
        return gErr(400, 'ValidationError', 'Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.');
      }
    }
    const sub: SimSubscription = {
      id: randomUUID(),
      resource,
      changeType,
      notificationUrl,
      lifecycleNotificationUrl: lifecycle,
      clientState: typeof b.clientState === 'string' ? b.clientState : null,
      expirationDateTime: exp,
      applicationId: clientId,
    };
    subscriptions.set(sub.id, sub);
    return { status: 201, body: sub };
  }

  function delta(query: URLSearchParams, base: string): Res {
    type Skip = { from: number; to: number; o: number; sel?: string; e: number };
    type Tok = { seq: number; sel?: string; e: number };
    let from = 0;
    let to = seq;
    let offset = 0;
    let select = query.get('$select') ?? undefined;
    const skiptoken = query.get('$skiptoken');
    const deltatoken = query.get('$deltatoken');
    if (skiptoken) {
      const st = unb64<Skip>(skiptoken);
      if (!st || st.e !== deltaEpoch) return gErr(410, 'syncStateNotFound', 'The sync state is no longer available. Resync is required.');
      ({ from, to, o: offset } = st);
      select = st.sel;
    } else if (deltatoken) {
      const dt = unb64<Tok>(deltatoken);
      if (!dt || dt.e !== deltaEpoch) return gErr(410, 'syncStateNotFound', 'The sync state is no longer available. Resync is required.');
      from = dt.seq;
      select = dt.sel;
    }
    // Entries: initial sync = every current user; later = each id changed in (from, to], in order.
    let items: Array<Record<string, unknown>>;
    if (from === 0 && !deltatoken) {
      items = [...users.values()].map((u) => selectUser(u, select));
    } else {
      // Keys run 1…seq without gaps: look the range up instead of scanning the whole log.
      const changed = new Set<string>();
      for (let n = Math.max(from, 0) + 1; n <= Math.min(to, seq); n++) {
        const id = changeLog.get(n);
        if (id !== undefined) changed.add(id);
      }
      const ids = [...changed];
      items = ids.map((id) => {
        const u = users.get(id);
        if (u) return selectUser(u, select);
        return { id, '@removed': { reason: hardDeleted.has(id) ? 'deleted' : 'changed' } };
      });
    }
    const page = items.slice(offset, offset + pageSize);
    const out: Record<string, unknown> = { '@odata.context': `${base}/v1.0/$metadata#users(${select ?? ''})`, value: page };
    if (offset + pageSize < items.length) {
      out['@odata.nextLink'] = `${base}/v1.0/users/delta?$skiptoken=${b64({ from, to, o: offset + pageSize, sel: select, e: deltaEpoch })}`;
    } else {
      out['@odata.deltaLink'] = `${base}/v1.0/users/delta?$deltatoken=${b64({ seq: to, sel: select, e: deltaEpoch })}`;
    }
    return { status: 200, body: out };
  }

  /**
   * A listing of `source` as Graph pages one: `$filter` (eq on one of `filterable`), `$count`
   * (only with ConsistencyLevel: eventual), `$top` + nextLink, `$select` through `project`.
   */
  function listUsers(
    source: Map<string, GraphUser>,
    filterable: string[],
    query: URLSearchParams,
    headers: Record<string, string>,
    o: { link: string; context: string; project: (u: GraphUser, select?: string) => Record<string, unknown> },
  ): Res {
    const select = query.get('$select') ?? undefined;
    let list = [...source.values()];
    const filter = query.get('$filter');
    const wantCount = query.get('$count') === 'true';
    if (wantCount && (headers['consistencylevel'] ?? '').toLowerCase() !== 'eventual') {
      return gErr(400, 'Request_UnsupportedQuery', "$count requires the 'ConsistencyLevel: eventual' header.");
    }
    if (filter) {
      const f = parseFilter(filter);
      if (f === 'unsupported' || !filterable.includes(f.prop)) {
        return gErr(400, 'Request_UnsupportedQuery', 'Unsupported or invalid query filter clause specified.');
      }
      list = list.filter((u) => String((u as unknown as Record<string, unknown>)[f.prop] ?? '').toLowerCase() === f.value.toLowerCase());
    }
    const top = Math.min(opts.maxTop ?? 999, Number(query.get('$top') ?? pageSize) || pageSize);
    const skip = Number(query.get('$skiptoken') ? unb64<{ o: number }>(query.get('$skiptoken')!)?.o ?? 0 : 0);
    const page = list.slice(skip, skip + top).map((u) => o.project(u, select));
    const out: Record<string, unknown> = { '@odata.context': o.context, value: page };
    if (wantCount) out['@odata.count'] = list.length;
    if (skip + top < list.length) {
      const q = new URLSearchParams(query);
      q.set('$skiptoken', b64({ o: skip + top }));
      out['@odata.nextLink'] = `${o.link}?${q.toString()}`;
    }
    return { status: 200, body: out };
  }

  /** A deleted item as Graph shows one: typed, with its deletedDateTime whatever the $select. */
  function deletedView(u: GraphUser, select?: string): Record<string, unknown> {
    return { '@odata.type': '#microsoft.graph.user', ...selectUser(u, select), deletedDateTime: u.deletedDateTime };
  }

  /**
   * Back from deletedItems with the same id and every property as it was; logged for delta
   * and notified like any user change. Group memberships are not restored (the soft delete
   * removed them; the sync re-adds them). Refused (ObjectConflict) while another live user
   * holds the userPrincipalName.
   */
  function restoreUser(id: string): Res {
    const u = deletedItems.get(id);
    if (!u) return gErr(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    const upn = u.userPrincipalName.toLowerCase();
    for (const other of users.values()) if (other.userPrincipalName.toLowerCase() === upn) return conflict('userPrincipalName');
    deletedItems.delete(id);
    delete u.deletedDateTime;
    users.set(id, u);
    logChange(id);
    fireChange(id, 'updated');
    return { status: 200, body: { '@odata.type': '#microsoft.graph.user', ...selectUser(u, ALL_USER_PROPS) } };
  }

  function hardDeleteUser(id: string) {
    deletedItems.delete(id);
    hardDeleted.add(id);
    logChange(id);
    fireChange(id, 'deleted');
  }

  // ---------------------------------------------------------------- node:http

  function handle(req: IncomingMessage, res: ServerResponse, subpath: string): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const full = new URL(req.url ?? '/', 'http://local');
        const sub = new URL(subpath, 'http://local');
        const prefix = full.pathname.endsWith(sub.pathname) ? full.pathname.slice(0, full.pathname.length - sub.pathname.length) : '';
        const base = `http://${req.headers.host ?? '127.0.0.1'}${prefix}`;
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const ct = headers['content-type'] ?? '';
        let body: unknown = raw;
        if (ct.includes('json') && raw) {
          try {
            body = JSON.parse(raw);
          } catch {
            return send(res, gErr(400, 'BadRequest', 'Unable to read JSON request payload.'));
          }
        }
        const query = sub.search ? sub.searchParams : full.searchParams;
        const method = (req.method ?? 'GET').toUpperCase();
        const out = await route(method, sub.pathname, query, headers, body, base, false);
        count(out.routeKey);
        requests.push({ method, route: out.routeKey, path: sub.pathname, query: Object.fromEntries(query), headers, body });
        send(res, out);
      })().catch((err) => send(res, gErr(500, 'InternalServerError', String((err as Error).message))));
    });
  }

  function send(res: ServerResponse, r: Res) {
    const headers: Record<string, string> = { ...r.headers };
    if (r.body !== undefined) headers['content-type'] = 'application/json';
    res.writeHead(r.status, headers);
    res.end(r.body === undefined ? undefined : JSON.stringify(r.body));
  }

  const sim: GraphSim = {
    handle,
    async start() {
      const server = createServer((req, res) => handle(req, res, req.url ?? '/'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      return {
        baseUrl: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    },
    users,
    deletedItems,
    groups,
    subscriptions,
    calls,
    requests,
    deliveries,
    setNotify(fn) {
      notify = fn;
    },
    async flushNotifications() {
      while (pending.size) await Promise.allSettled([...pending]);
    },
    async emitLifecycle(subscriptionId, event) {
      const sub = subscriptions.get(subscriptionId);
      if (!sub) throw new Error(`no subscription ${subscriptionId}`);
      const url = sub.lifecycleNotificationUrl ?? sub.notificationUrl;
      const body = JSON.stringify({
        value: [
          {
            subscriptionId: sub.id,
            subscriptionExpirationDateTime: sub.expirationDateTime,
            tenantId,
            clientState: sub.clientState,
            lifecycleEvent: event,
            organizationId,
          },
        ],
      });
      if (event === 'subscriptionRemoved') subscriptions.delete(sub.id);
      const r = await track(deliver(url, body, { 'content-type': 'application/json; charset=utf-8' }, 3_000));
      deliveries.push({ url, kind: 'lifecycle', status: r.status, body });
      return { status: r.status };
    },
    revokeTokens() {
      tokens.clear();
    },
    expireDeltaTokens() {
      deltaEpoch += 1;
      meta.set('deltaEpoch', deltaEpoch);
    },
    seedUser(p) {
      const u: GraphUser = {
        id: p.id ?? randomUUID(),
        accountEnabled: p.accountEnabled ?? true,
        displayName: p.displayName,
        mailNickname: p.mailNickname ?? p.userPrincipalName.split('@')[0]!,
        userPrincipalName: p.userPrincipalName,
        mail: p.mail ?? null,
        mobilePhone: p.mobilePhone ?? null,
        businessPhones: p.businessPhones ?? [],
        jobTitle: p.jobTitle ?? null,
        department: p.department ?? null,
        employeeId: p.employeeId ?? null,
        usageLocation: p.usageLocation ?? null,
        passwordSet: true,
      };
      users.set(u.id, u);
      logChange(u.id);
      return u;
    },
    hardDelete(id) {
      hardDeleteUser(id);
    },
    setFailRate(rate) {
      failRate = rate;
    },
  };
  return sim;
}

/** 'GET /users/{id}'-style keys so counters don't explode per id. */
function routeKeyOf(method: string, s: string[]): string {
  const templ = s.map((p, i) => {
    if (i === 0 || p === '$ref' || p === 'members' || p === 'delta' || p === 'deletedItems' || p === '$batch' || p === 'restore') return p;
    if (p.startsWith('microsoft.graph.')) return p; // an OData type cast
    if (s[0] === 'directory' && i === 1) return p;
    return '{id}';
  });
  return `${method} /v1.0/${templ.join('/')}`;
}

function complexEnough(pwd: string): boolean {
  if (pwd.length < 8 || pwd.length > 256) return false;
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((re) => re.test(pwd)).length;
  return classes >= 3;
}
