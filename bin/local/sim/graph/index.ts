/**
 * Loopback Microsoft Graph: the part of the wire contract the adapter uses, for tests and the
 * local dev server (mounted under /_sim/graph). One module per resource: token.ts (Entra's
 * token endpoint, Bearer checks, the cloud's scope), users.ts, deleted-items.ts, groups.ts,
 * batch.ts, subscriptions.ts (with notifications and the validation handshake), delta.ts;
 * state.ts holds the tenant and its indexes, odata.ts the shared plumbing. This file wires
 * them: throttling (429/503 + Retry-After, a rate limit or a random share), routing, HTTP.
 *
 * `cloud` makes it a tenant of Microsoft 365 global or of Microsoft 365 operated by 21Vianet:
 * the token scope and the `@odata.id` host it accepts are that cloud's.
 *
 * With `persistDir`, users, deleted items, groups, subscriptions and the delta state survive a
 * restart (../journal.ts), so a delta link issued before it still works after it. Access
 * tokens do not: the adapter refetches one on 401.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { batchRoute } from './batch';
import type { NotifyFn, Route, SimContext, SimOptions } from './context';
import { deletedItems as deletedItemsModule } from './deleted-items';
import { deltaRoute } from './delta';
import { groupsRoute } from './groups';
import { gErr, Pager, type Res } from './odata';
import { newUser, openState, type GraphGroup, type GraphUser, type SimSubscription } from './state';
import { notifications, type Delivery } from './subscriptions';
import { tokenEndpoint } from './token';
import { usersRoute } from './users';
import { listenOnLoopback, readRequest, sendJson } from '../loopback';

export type { GraphGroup, GraphUser, SimSubscription } from './state';
export type { NotifyFn } from './context';

export interface GraphSimOptions {
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** The tenant's cloud (default global): its token scope and reference host. */
  cloud?: 'global' | 'china';
  rateLimit?: { perSecond: number };
  /** Fraction of /v1.0 calls answered as throttled (seeded by `random`), before anything is applied. */
  failRate?: number;
  /** The statuses a throttled call gets, picked at random (default [429]). */
  failStatuses?: number[];
  random?: () => number;
  /** Retry-After seconds on a throttled answer (default 1). */
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
  /** The answer's status (a throttled call shows 429/503 here). */
  status: number;
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
  deliveries: Delivery[];
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
  /** Throttle this share of calls from now on, with these statuses (default 429). */
  setFailRate(rate: number, statuses?: number[]): void;
}

export function createGraphSim(o: GraphSimOptions = {}): GraphSim {
  const opts: SimOptions = {
    tenantId: o.tenantId ?? 'tenant-1',
    clientId: o.clientId ?? 'client-1',
    clientSecret: o.clientSecret ?? 'secret-1',
    organizationId: o.organizationId ?? o.tenantId ?? 'tenant-1',
    cloud: o.cloud ?? 'global',
    pageSize: o.pageSize ?? 100,
    maxTop: o.maxTop ?? 999,
    tokenLifetimeSeconds: o.tokenLifetimeSeconds ?? 3599,
    validationTimeoutMs: o.validationTimeoutMs ?? 10_000,
  };
  const random = o.random ?? Math.random;
  const now = o.now ?? (() => new Date());
  let failRate = o.failRate ?? 0;
  let failStatuses = o.failStatuses ?? [429];
  const state = openState(o.persistDir);
  const calls: Record<string, number> = {};
  const requests: RecordedRequest[] = [];
  const count = (key: string) => (calls[key] = (calls[key] ?? 0) + 1);

  const base = { state, opts, now, pager: new Pager() };
  const notifier = notifications(base);
  const ctx: SimContext = {
    ...base,
    changed(id, changeType) {
      state.logChange(id);
      notifier.fireChange(id, changeType);
    },
  };
  const tokens = tokenEndpoint(opts, now);
  const deleted = deletedItemsModule(ctx);
  const routes: Route[] = [usersRoute(ctx), deltaRoute(ctx), deleted.route, groupsRoute(ctx), notifier.route];
  routes.push(batchRoute((method, path, query, headers, body, base) => route(method, path, query, headers, body, base, true), count));

  // Rate limiter: fixed one-second window.
  let windowStart = 0;
  let windowCount = 0;
  function throttled(): Res {
    const status = failStatuses[Math.floor(random() * failStatuses.length)] ?? 429;
    const res = status === 429 ? gErr(429, 'TooManyRequests', 'Too many requests.') : gErr(status, 'ServiceUnavailable', 'Service unavailable.');
    return { ...res, headers: { 'retry-after': String(o.retryAfterSeconds ?? 1) } };
  }

  async function route(method: string, path: string, query: URLSearchParams, headers: Record<string, string>, body: unknown, base: string, inBatch: boolean): Promise<Res & { routeKey: string }> {
    const r = (routeKey: string, res: Res) => ({ ...res, routeKey });
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (!inBatch && seg.length === 4 && seg[1] === 'oauth2' && seg[2] === 'v2.0' && seg[3] === 'token' && method === 'POST') {
      return r('POST /token', tokens.issue(seg[0]!, body));
    }
    if (seg[0] !== 'v1.0') return r(`${method} /unknown`, gErr(404, 'Request_ResourceNotFound', 'Unknown route.'));
    const s = seg.slice(1);
    const key = routeKeyOf(method, s);
    if (!inBatch && !tokens.valid(headers['authorization'])) return r(key, gErr(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.'));
    // Throttling applies to every request, batched ones included (Graph evaluates them individually).
    if (o.rateLimit) {
      const t = now().getTime();
      if (t - windowStart >= 1000) {
        windowStart = t;
        windowCount = 0;
      }
      if (++windowCount > o.rateLimit.perSecond) return r(key, throttled());
    }
    if (failRate > 0 && random() < failRate) return r(key, throttled());
    const req = { method, seg: s, query, headers, body: (body && typeof body === 'object' ? body : {}) as Record<string, unknown>, base };
    for (const handler of routes) {
      const res = await handler(req);
      if (res) return r(key, res);
    }
    return r(key, gErr(405, 'Request_BadRequest', 'Unsupported method or route.'));
  }

  function handle(req: IncomingMessage, res: ServerResponse, subpath: string): void {
    void (async () => {
      const { method, path, query, headers, mount, body, badJson } = await readRequest(req, subpath);
      if (badJson) return send(res, gErr(400, 'BadRequest', 'Unable to read JSON request payload.'));
      const out = await route(method, path, query, headers, body, mount, false);
      count(out.routeKey);
      requests.push({ method, route: out.routeKey, path, query: Object.fromEntries(query), headers, body, status: out.status });
      send(res, out);
    })().catch((err) => send(res, gErr(500, 'InternalServerError', String((err as Error).message))));
  }

  function send(res: ServerResponse, r: Res): void {
    sendJson(res, r, 'application/json');
  }

  return {
    handle,
    start: () => listenOnLoopback(handle),
    users: state.users,
    deletedItems: state.deletedItems,
    groups: state.groups,
    subscriptions: state.subscriptions,
    calls,
    requests,
    deliveries: notifier.deliveries,
    setNotify: notifier.setNotify,
    flushNotifications: notifier.flush,
    emitLifecycle: notifier.emitLifecycle,
    revokeTokens: tokens.revoke,
    expireDeltaTokens: state.expireDeltaTokens,
    seedUser(p) {
      const u = newUser(p);
      state.users.set(u.id, u);
      state.logChange(u.id);
      return u;
    },
    hardDelete: deleted.purge,
    setFailRate(rate, statuses) {
      failRate = rate;
      if (statuses) failStatuses = statuses;
    },
  };
}

/** 'GET /users/{id}'-style keys so counters don't explode per id. */
function routeKeyOf(method: string, s: string[]): string {
  const templ = s.map((p, i) => {
    if (i === 0 || p === '$ref' || p === 'members' || p === 'memberOf' || p === 'delta' || p === 'deletedItems' || p === '$batch' || p === 'restore') return p;
    if (p.startsWith('microsoft.graph.')) return p; // an OData type cast
    if (s[0] === 'directory' && i === 1) return p;
    return '{id}';
  });
  return `${method} /v1.0/${templ.join('/')}`;
}
