/**
 * Loopback Google Workspace: the part of Google's wire contract the adapter uses, for tests,
 * the benchmarks and the local dev server (mountable under e.g. /_sim/google). One module per
 * resource: token.ts (the JWT bearer grant, verified with the service account's public key;
 * Bearer and scope checks), users.ts (users and their search, the recently deleted list,
 * undelete), channels.ts (users.watch, channels.stop, push delivery); state.ts holds the
 * account and its indexes, context.ts the shared plumbing. This file wires them: the quota
 * (queries per minute per user, a token bucket: 403 `userRateLimitExceeded` or 429), a random
 * share of refusals (a storm), routing, HTTP.
 *
 * Paths under the mount: `POST /token` (oauth2.googleapis.com), `/admin/directory/v1/users…`
 * and `/admin/directory_v1/channels/stop` (admin.googleapis.com). Without a `publicKey` the
 * simulator makes a service account key pair and hands the private half out
 * (`serviceAccount`), as the Cloud console hands out a JSON key.
 *
 * With `persistDir`, users, deleted users and channels survive a restart (../journal.ts);
 * access tokens do not (the adapter refetches on 401).
 */
import { generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { channelsModule, type Delivery } from './channels';
import { gErr, type NotifyFn, type Res, type Route, type SimContext, type SimOptions } from './context';
import { newEtag, newUser, openState, type GoogleUser, type SimChannel, type UserTable } from './state';
import { tokenEndpoint } from './token';
import { READ_SCOPES, usersRoute, WRITE_SCOPES } from './users';
import { listenOnLoopback, readRequest, sendJson } from '../loopback';

export type { GoogleUser, SimChannel } from './state';
export type { Delivery } from './channels';
export type { NotifyFn } from './context';

export const DIRECTORY_USER_SCOPE = 'https://www.googleapis.com/auth/admin.directory.user';

export interface GoogleSimOptions {
  clientEmail?: string;
  /** The service account's public key (PEM). Absent: a key pair is generated (see `serviceAccount`). */
  publicKey?: string;
  /** The admin the service account may act as (`sub`); more in `admins`. */
  adminEmail?: string;
  admins?: string[];
  /** Scopes delegated to the client (default: admin.directory.user). */
  delegatedScopes?: string[];
  customerId?: string;
  /** Domains a primary address may use (default: any). */
  domains?: string[];
  /** Largest page (Google: 500). */
  maxResults?: number;
  tokenLifetimeSeconds?: number;
  maxChannelTtlSeconds?: number;
  undeleteDays?: number;
  /** Queries per minute per user (Google's default: 2,400); refused as `status` (default 403 userRateLimitExceeded). */
  quota?: { queriesPerMinute: number; status?: 403 | 429 };
  /** Share of Directory API calls refused before anything is applied (a storm). */
  failRate?: number;
  /** Statuses of the refusals, picked at random (default [403]: userRateLimitExceeded). */
  failStatuses?: number[];
  random?: () => number;
  /** Retry-After seconds on a 429 (default: none, as Google documents none). */
  retryAfterSeconds?: number;
  now?: () => Date;
  persistDir?: string;
}

export interface RecordedRequest {
  method: string;
  route: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  status: number;
  /** A user write's user before it (for the conformance probe). */
  before?: unknown;
}

export interface GoogleSim {
  handle(req: IncomingMessage, res: ServerResponse, subpath: string): void;
  start(): Promise<{ baseUrl: string; close(): Promise<void> }>;
  users: UserTable;
  deleted: UserTable;
  channels: Map<string, SimChannel>;
  /** 'METHOD /route-template' → count (refused calls included). */
  calls: Record<string, number>;
  requests: RecordedRequest[];
  deliveries: Delivery[];
  /** The service account the simulator trusts (the private key only when it generated the pair). */
  serviceAccount: { clientEmail: string; privateKey?: string; adminEmail: string; customerId: string };
  setNotify(fn?: NotifyFn): void;
  flushNotifications(): Promise<void>;
  revokeTokens(): void;
  /** Seed a user directly (not counted, no notification). */
  seedUser(u: Partial<GoogleUser> & { primaryEmail: string }): GoogleUser;
  /** Store a user changed directly (an administrator's console edit): fires `update`. */
  adminUpdate(id: string, change: (u: GoogleUser) => void): void;
  setFailRate(rate: number, statuses?: number[]): void;
  /** Stop (or resume) keeping every request in `requests`: a long benchmark would hold them all in memory. */
  setRecording(on: boolean): void;
}

export function createGoogleSim(o: GoogleSimOptions = {}): GoogleSim {
  let privateKey: string | undefined;
  let publicKey = o.publicKey;
  if (!publicKey) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    publicKey = pair.publicKey;
    privateKey = pair.privateKey;
  }
  const adminEmail = o.adminEmail ?? 'admin@example.com';
  const opts: SimOptions = {
    clientEmail: o.clientEmail ?? 'wecom-sync@sim-project.iam.gserviceaccount.com',
    publicKey,
    delegatedScopes: o.delegatedScopes ?? [DIRECTORY_USER_SCOPE],
    admins: [adminEmail, ...(o.admins ?? [])],
    customerId: o.customerId ?? 'C0simcust',
    domains: (o.domains ?? []).map((d) => d.toLowerCase()),
    maxResults: o.maxResults ?? 500,
    tokenLifetimeSeconds: o.tokenLifetimeSeconds ?? 3599,
    maxChannelTtlSeconds: o.maxChannelTtlSeconds ?? 21_600,
    undeleteDays: o.undeleteDays ?? 20,
  };
  const random = o.random ?? Math.random;
  const now = o.now ?? (() => new Date());
  let failRate = o.failRate ?? 0;
  let failStatuses = o.failStatuses ?? [403];
  let recording = true;
  const state = openState(o.persistDir);
  const calls: Record<string, number> = {};
  const requests: RecordedRequest[] = [];
  const base = { state, opts, now };
  const channels = channelsModule(base);
  const ctx: SimContext = { ...base, changed: (id, event) => channels.fire(id, event) };
  const tokens = tokenEndpoint(opts, now);
  const routes: Route[] = [usersRoute(ctx), channels.route];

  // The quota: a token bucket per user (the token's subject), one second of burst.
  const buckets = new Map<string, { tokens: number; at: number }>();
  function overQuota(subject: string): boolean {
    if (!o.quota) return false;
    const perMs = o.quota.queriesPerMinute / 60_000;
    const capacity = Math.max(1, o.quota.queriesPerMinute / 60);
    const t = now().getTime();
    const b = buckets.get(subject) ?? { tokens: capacity, at: t };
    b.tokens = Math.min(capacity, b.tokens + (t - b.at) * perMs);
    b.at = t;
    buckets.set(subject, b);
    if (b.tokens < 1) return true;
    b.tokens -= 1;
    return false;
  }

  function refusal(status: number): Res {
    if (status === 429) {
      const r = gErr(429, 'rateLimitExceeded', "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com'.", { status: 'RESOURCE_EXHAUSTED' });
      return o.retryAfterSeconds !== undefined ? { ...r, headers: { 'retry-after': String(o.retryAfterSeconds) } } : r;
    }
    if (status === 403) return gErr(403, 'userRateLimitExceeded', 'User Rate Limit Exceeded', { domain: 'usageLimits' });
    return gErr(status, 'backendError', 'Backend Error');
  }

  async function route(method: string, path: string, query: URLSearchParams, headers: Record<string, string>, body: unknown, mount: string): Promise<Res & { routeKey: string }> {
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    const key = routeKeyOf(method, seg);
    const r = (res: Res) => ({ ...res, routeKey: key });
    if (seg.length === 1 && seg[0] === 'token' && method === 'POST') return r(tokens.issue(body));
    if (seg[0] !== 'admin') return r(gErr(404, 'notFound', 'Not Found'));
    const scope = method === 'GET' || key === 'POST /users/watch' ? READ_SCOPES : WRITE_SCOPES;
    const auth = tokens.check(headers['authorization'], scope);
    if (!auth.ok) return r(auth.res);
    if (overQuota(auth.subject)) return r(refusal(o.quota!.status ?? 403));
    if (failRate > 0 && random() < failRate) return r(refusal(failStatuses[Math.floor(random() * failStatuses.length)] ?? 403));
    const req = { method, seg, query, headers, body: (body && typeof body === 'object' ? body : {}) as Record<string, unknown>, base: mount };
    for (const handler of routes) {
      const res = await handler(req);
      if (res) return r(res);
    }
    return r(gErr(404, 'notFound', 'Not Found'));
  }

  function handle(req: IncomingMessage, res: ServerResponse, subpath: string): void {
    void (async () => {
      const { method, path, query, headers, mount, body, badJson } = await readRequest(req, subpath);
      if (badJson) return send(res, gErr(400, 'parseError', 'Parse Error'));
      const out = await route(method, path, query, headers, body, mount);
      calls[out.routeKey] = (calls[out.routeKey] ?? 0) + 1;
      if (recording) requests.push({ method, route: out.routeKey, path, query: Object.fromEntries(query), headers, body, status: out.status, ...(out.before !== undefined ? { before: out.before } : {}) });
      send(res, out);
    })().catch((err) => send(res, gErr(500, 'backendError', String((err as Error).message))));
  }

  function send(res: ServerResponse, r: Res): void {
    sendJson(res, r, 'application/json; charset=UTF-8');
  }

  return {
    handle,
    start: () => listenOnLoopback(handle),
    users: state.users,
    deleted: state.deleted,
    channels: state.channels,
    calls,
    requests,
    deliveries: channels.deliveries,
    serviceAccount: { clientEmail: opts.clientEmail, ...(privateKey ? { privateKey } : {}), adminEmail, customerId: opts.customerId },
    setNotify: channels.setNotify,
    flushNotifications: channels.flush,
    revokeTokens: tokens.revoke,
    seedUser(p) {
      const u = newUser(p, opts.customerId, now());
      state.users.set(u);
      return u;
    },
    adminUpdate(id, change) {
      const u = state.users.get(id);
      if (!u) throw new Error(`no user ${id}`);
      const next = structuredClone(u);
      change(next);
      next.etag = newEtag(); // every change moves the etag, console edits included
      state.users.set(next);
      ctx.changed(id, 'update');
    },
    setFailRate(rate, statuses) {
      failRate = rate;
      if (statuses) failStatuses = statuses;
    },
    setRecording(on) {
      recording = on;
    },
  };
}

/** 'GET /users/{key}'-style keys so counters do not explode per id. */
function routeKeyOf(method: string, seg: string[]): string {
  if (seg[0] === 'token') return `${method} /token`;
  if (seg[0] === 'admin' && seg[1] === 'directory_v1') return `${method} /${seg.slice(2).join('/')}`;
  const rest = seg.slice(3); // after admin/directory/v1
  return `${method} /${rest.map((p, i) => (i === 1 && p !== 'watch' ? '{key}' : p)).join('/')}`;
}
