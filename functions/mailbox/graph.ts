/**
 * Microsoft Graph adapter of the MailboxDirectory port (Entra ID users + security groups),
 * plus the Graph-only extras the sync needs: batched reads, delta query and the
 * subscription (change-notification) API.
 *
 * Wire facts this file relies on (Graph v1.0):
 * - App-only token by client credentials, scope `https://graph.microsoft.com/.default`.
 * - `employeeId` is the link to the WeCom userid; accounts without it are never touched.
 * - `$filter=employeeId eq '…'` is sent with `ConsistencyLevel: eventual` + `$count=true`
 *   (advanced query) so it works whatever the tenant's index state is.
 * - Throttling is 429 (also 503/504) with `Retry-After` in seconds.
 * - Errors are `{ error: { code, message, details? } }`. Graph's `message` can echo the
 *   values we sent (addresses, phone numbers), so only the CODE goes into our errors.
 * - Graph cannot create mail-enabled security groups or distribution lists: a department
 *   becomes a security group (mailEnabled false) plus the user's `department` attribute.
 * - DELETE /users/{id} is a soft delete: the user waits 30 days in `directory/deletedItems`,
 *   then is gone for good. Meanwhile its UPN is still taken: creating a user with it fails
 *   (400 ObjectConflict), so a returning person is restored, not created again.
 * - Listing deleted users needs the type cast (`/directory/deletedItems/microsoft.graph.user`;
 *   without it: 400), and its `$filter` is an advanced query like the one on /users
 *   (`ConsistencyLevel: eventual` + `$count=true`).
 * - `POST /directory/deletedItems/{id}/restore` (no body) → 200 with the user: the same id,
 *   mailbox and properties. Refused (400 ObjectConflict) while a live object holds its UPN.
 *   The sync sets group memberships again afterwards, whatever Graph kept of them.
 */
import { createHash, randomInt } from 'node:crypto';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { log } from '../core/log';
import { backoffMs, retryAfterMs, TokenCache } from '../core/retry';
import { MailboxError } from './directory';
import type { MailboxAccount, MailboxAccountInput, MailboxDirectory, MailboxPage } from './directory';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
/** Longest lifetime Graph grants a subscription on users (just under 29 days). */
export const MAX_USER_SUBSCRIPTION_MINUTES = 41_760;
export const MAX_CLIENT_STATE_LENGTH = 128;
/** Graph's JSON batching limit. */
export const MAX_BATCH_REQUESTS = 20;

const USER_SELECT = [
  'id',
  'employeeId',
  'accountEnabled',
  'displayName',
  'mailNickname',
  'userPrincipalName',
  'mail',
  'mobilePhone',
  'businessPhones',
  'jobTitle',
  'department',
].join(',');

export interface GraphDirectoryOptions {
  apiBase?: string;
  tokenUrl?: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Tenant domain for userPrincipalName (`<local>@<domain>`). */
  domain: string;
  /** Set on create when given (Graph needs it before a licence can be assigned). */
  usageLocation?: string;
  fetch?: typeof fetch;
  now?: () => Date;
  /** Retries of a throttled / unavailable call before giving up (default 4). */
  maxRetries?: number;
  sleep?: (ms: number) => Promise<void>;
  /** `get` looks in /directory/deletedItems on 404 to report soft-deleted accounts (default true). */
  checkDeletedItems?: boolean;
}

/** Graph user as read with USER_SELECT (all optional: delta pages carry only some keys). */
export interface GraphUserWire {
  id: string;
  employeeId?: string | null;
  accountEnabled?: boolean | null;
  displayName?: string | null;
  mailNickname?: string | null;
  userPrincipalName?: string | null;
  mail?: string | null;
  mobilePhone?: string | null;
  businessPhones?: string[] | null;
  jobTitle?: string | null;
  department?: string | null;
  /** Only on deleted items. */
  deletedDateTime?: string | null;
  '@removed'?: { reason: string };
}

export interface GraphSubscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl?: string | null;
  clientState?: string | null;
  expirationDateTime: string;
}

export interface CreateSubscriptionInput {
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState: string;
  expirationDateTime: string | Date;
}

export interface DeltaResult {
  /** Accounts created or changed since the last delta link. Keys absent from a delta page are undefined (unknown). */
  accounts: MailboxAccount[];
  /** Ids removed from the users collection (soft- or hard-deleted). */
  removed: string[];
  /** Subset of `removed` that Graph reports as permanently deleted. */
  permanentlyDeleted: string[];
  /** Keep it for the next call (valid about 7 days). */
  deltaLink: string;
}

/** The delta token is no longer valid (410 Gone): the caller must do a full resync. */
export class DeltaExpired extends Error {
  constructor() {
    super('Graph delta token expired; a full resync is required');
    this.name = 'DeltaExpired';
  }
}

interface CallOptions {
  /** Route template for errors and logs, e.g. 'PATCH /users/{id}': never the concrete path. */
  route: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Statuses answered to the caller instead of thrown (e.g. 404 on get). */
  accept?: number[];
}

interface CallResult {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);
/** Graph's throttling guidance: back off from half a second up to 30 s unless Retry-After says otherwise. */
const BACKOFF = { baseMs: 500, capMs: 30_000 };

export class GraphDirectory implements MailboxDirectory {
  readonly provider = 'graph';
  private readonly apiBase: string;
  private readonly tokenUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => Date;
  private readonly maxRetries: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly token: TokenCache;
  private readonly groupIds = new Map<string, string>();

  constructor(private readonly opts: GraphDirectoryOptions) {
    this.apiBase = (opts.apiBase ?? 'https://graph.microsoft.com').replace(/\/+$/, '');
    this.tokenUrl = opts.tokenUrl ?? `https://login.microsoftonline.com/${encodeURIComponent(opts.tenantId)}/oauth2/v2.0/token`;
    this.fetchFn = opts.fetch ?? fetch;
    this.now = opts.now ?? (() => new Date());
    this.token = new TokenCache(() => this.fetchToken(), () => this.now().getTime());
    this.maxRetries = opts.maxRetries ?? 4;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  // ------------------------------------------------------------------ users

  async findByEmployeeId(userid: string): Promise<MailboxAccount | undefined> {
    const filter = `employeeId eq '${escapeODataString(userid)}'`;
    const path = `/v1.0/users?$filter=${encodeURIComponent(filter)}&$count=true&$select=${USER_SELECT}`;
    const { json } = await this.call('GET', path, { route: 'GET /users?$filter=employeeId', headers: { ConsistencyLevel: 'eventual' } });
    const found = ((json?.value ?? []) as GraphUserWire[]).filter((u) => u.employeeId === userid);
    if (found.length > 1) {
      // Two accounts claim the same WeCom user: touching either could hit the wrong person.
      throw new MailboxError(`Graph: ${found.length} accounts share one employeeId`, false, 'AmbiguousEmployeeId');
    }
    return found[0] ? toAccount(found[0]) : undefined;
  }

  async get(id: string): Promise<MailboxAccount | undefined> {
    const res = await this.call('GET', `/v1.0/users/${encodeURIComponent(id)}?$select=${USER_SELECT}`, { route: 'GET /users/{id}', accept: [404] });
    if (res.status === 200) return toAccount(res.json as GraphUserWire);
    if (this.opts.checkDeletedItems === false) return undefined;
    const del = await this.call('GET', `/v1.0/directory/deletedItems/${encodeURIComponent(id)}?$select=${USER_SELECT}`, {
      route: 'GET /directory/deletedItems/{id}',
      accept: [404],
    });
    if (del.status !== 200) return undefined;
    return { ...toAccount(del.json as GraphUserWire), enabled: false, deleted: true };
  }

  /**
   * The most recently deleted account linked to `userid` that Graph can still restore (30 days
   * in deletedItems), or undefined. Every page is read: the newest may be on any.
   */
  async findDeleted(userid: string): Promise<MailboxAccount | undefined> {
    const filter = `employeeId eq '${escapeODataString(userid)}'`;
    let url: string | undefined =
      `/v1.0/directory/deletedItems/microsoft.graph.user?$filter=${encodeURIComponent(filter)}&$count=true&$select=${USER_SELECT},deletedDateTime`;
    let newest: GraphUserWire | undefined;
    const at = (u: GraphUserWire) => Date.parse(u.deletedDateTime ?? '') || 0;
    while (url) {
      const res: CallResult = await this.call('GET', url, {
        route: 'GET /directory/deletedItems/microsoft.graph.user?$filter=employeeId',
        headers: { ConsistencyLevel: 'eventual' },
      });
      // The filter is case-insensitive; the link is exact (as in findByEmployeeId).
      for (const u of (res.json?.value ?? []) as GraphUserWire[]) {
        if (u.employeeId === userid && (!newest || at(u) > at(newest))) newest = u;
      }
      url = res.json?.['@odata.nextLink'];
    }
    return newest ? { ...toAccount(newest), deleted: true } : undefined;
  }

  /**
   * Bring a soft-deleted account back: same id, same mailbox. Not idempotent on the wire (a
   * second restore finds nothing: 404), so a 404 after a retried POST whose answer was lost is
   * checked against the live users: already restored counts as done.
   */
  async restore(id: string): Promise<MailboxAccount> {
    const route = 'POST /directory/deletedItems/{id}/restore';
    const res = await this.call('POST', `/v1.0/directory/deletedItems/${encodeURIComponent(id)}/restore`, { route, accept: [404] });
    if (res.status !== 404) return toAccount(res.json as GraphUserWire);
    const live = await this.call('GET', `/v1.0/users/${encodeURIComponent(id)}?$select=${USER_SELECT}`, { route: 'GET /users/{id}', accept: [404] });
    if (live.status === 200) return toAccount(live.json as GraphUserWire);
    throw graphError(404, res.json, route);
  }

  /** Batched `get` (JSON batching, ≤ 20 per request). Ids that do not exist are absent from the map. */
  async getMany(ids: string[]): Promise<Map<string, MailboxAccount>> {
    const out = new Map<string, MailboxAccount>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += MAX_BATCH_REQUESTS) {
      let pending = unique.slice(i, i + MAX_BATCH_REQUESTS);
      for (let attempt = 0; pending.length > 0; attempt++) {
        const body = {
          requests: pending.map((id, n) => ({ id: String(n), method: 'GET', url: `/users/${encodeURIComponent(id)}?$select=${USER_SELECT}` })),
        };
        const { json } = await this.call('POST', '/v1.0/$batch', { route: 'POST /$batch', body });
        const throttled: string[] = [];
        let waitMs = 0;
        for (const r of (json?.responses ?? []) as Array<{ id: string; status: number; headers?: Record<string, string>; body?: any }>) {
          const id = pending[Number(r.id)];
          if (id === undefined) continue;
          if (r.status === 200) out.set(id, toAccount(r.body as GraphUserWire));
          else if (r.status === 404) continue;
          else if (RETRYABLE.has(r.status)) {
            throttled.push(id);
            waitMs = Math.max(waitMs, retryAfterMs(headerOf(r.headers, 'retry-after')) ?? backoffMs(attempt, BACKOFF));
          } else throw graphError(r.status, r.body, 'GET /users/{id} (batched)');
        }
        if (throttled.length === 0) break;
        if (attempt >= this.maxRetries) {
          throw new MailboxError(`Graph POST /$batch: ${throttled.length} requests still throttled`, true, 'TooManyRequests', waitMs);
        }
        await this.sleep(waitMs);
        pending = throttled;
      }
    }
    return out;
  }

  async create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }): Promise<MailboxAccount> {
    const email = input.email.trim().toLowerCase();
    const local = email.split('@')[0] ?? '';
    const body: Record<string, unknown> = {
      ...toWire(input),
      accountEnabled: input.enabled ?? true,
      userPrincipalName: `${local}@${this.opts.domain.toLowerCase()}`,
      mail: email,
      mailNickname: input.mailNickname ?? mailNicknameFrom(local),
      passwordProfile: { password: strongPassword(), forceChangePasswordNextSignIn: true },
    };
    if (this.opts.usageLocation) body.usageLocation = this.opts.usageLocation;
    const { json } = await this.call('POST', '/v1.0/users', { route: 'POST /users', body });
    return toAccount(json as GraphUserWire);
  }

  async update(id: string, patch: MailboxAccountInput): Promise<void> {
    const body = toWire(patch);
    if (patch.email !== undefined) {
      if (patch.email === null) body.mail = null;
      else {
        const email = patch.email.trim().toLowerCase();
        body.mail = email;
        body.userPrincipalName = `${email.split('@')[0]}@${this.opts.domain.toLowerCase()}`;
      }
    }
    if (Object.keys(body).length === 0) return;
    await this.call('PATCH', `/v1.0/users/${encodeURIComponent(id)}`, { route: 'PATCH /users/{id}', body });
  }

  async disable(id: string): Promise<void> {
    await this.call('PATCH', `/v1.0/users/${encodeURIComponent(id)}`, { route: 'PATCH /users/{id}', body: { accountEnabled: false } });
  }

  async enable(id: string): Promise<void> {
    await this.call('PATCH', `/v1.0/users/${encodeURIComponent(id)}`, { route: 'PATCH /users/{id}', body: { accountEnabled: true } });
  }

  /** Soft delete (Graph keeps the user in deletedItems for 30 days). Already gone counts as done. */
  async delete(id: string): Promise<void> {
    await this.call('DELETE', `/v1.0/users/${encodeURIComponent(id)}`, { route: 'DELETE /users/{id}', accept: [404] });
  }

  async listPage(cursor?: string): Promise<MailboxPage> {
    const { json } = await this.call('GET', cursor ?? `/v1.0/users?$select=${USER_SELECT}&$top=999`, { route: 'GET /users' });
    const accounts = ((json?.value ?? []) as GraphUserWire[]).map(toAccount);
    const next = json?.['@odata.nextLink'] as string | undefined;
    return next ? { accounts, next } : { accounts };
  }

  /** Users changed since `deltaLink` (or all users on the first call), following every nextLink. */
  async delta(deltaLink?: string): Promise<DeltaResult> {
    const accounts: MailboxAccount[] = [];
    const removed: string[] = [];
    const permanentlyDeleted: string[] = [];
    let url: string | undefined = deltaLink ?? `/v1.0/users/delta?$select=${USER_SELECT}`;
    for (let page = 0; url; page++) {
      if (page > 100_000) throw new MailboxError('Graph delta: too many pages', false, 'DeltaRunaway');
      const res = await this.call('GET', url, { route: 'GET /users/delta', accept: [410] });
      if (res.status === 410) throw new DeltaExpired();
      for (const u of (res.json?.value ?? []) as GraphUserWire[]) {
        if (u['@removed']) {
          removed.push(u.id);
          if (u['@removed'].reason === 'deleted') permanentlyDeleted.push(u.id);
        } else accounts.push(toAccount(u));
      }
      const next = res.json?.['@odata.nextLink'] as string | undefined;
      const done = res.json?.['@odata.deltaLink'] as string | undefined;
      if (next) url = next;
      else if (done) return { accounts, removed, permanentlyDeleted, deltaLink: done };
      else throw new MailboxError('Graph delta: page without nextLink or deltaLink', true, 'DeltaIncomplete');
    }
    throw new MailboxError('Graph delta: no deltaLink', true, 'DeltaIncomplete');
  }

  // ------------------------------------------------------------------ groups

  /**
   * A department path ↔ one security group. The lookup key is `mailNickname` =
   * 'wms-' + 24 hex of SHA-256(path), not displayName: displayName is not unique in Entra
   * (an admin's same-named group would be silently adopted), while a hashed nickname is ours,
   * stable, ASCII (mailNickname rejects the CJK of department names) and within 64 chars.
   * displayName carries the readable path.
   */
  async ensureGroup(path: string): Promise<string> {
    const cached = this.groupIds.get(path);
    if (cached) return cached;
    const nickname = groupNickname(path);
    const filter = encodeURIComponent(`mailNickname eq '${nickname}'`);
    const { json } = await this.call('GET', `/v1.0/groups?$filter=${filter}&$select=id,displayName,mailNickname`, { route: 'GET /groups?$filter' });
    // Two concurrent creators can leave duplicates; everyone then settles on the smallest id.
    const ids = ((json?.value ?? []) as Array<{ id: string }>).map((g) => g.id).sort();
    let id = ids[0];
    if (!id) {
      const created = await this.call('POST', '/v1.0/groups', {
        route: 'POST /groups',
        body: {
          displayName: path.slice(0, 256),
          mailNickname: nickname,
          mailEnabled: false,
          securityEnabled: true,
          description: 'WeCom department (managed by wecom-mailbox-sync)',
        },
      });
      id = created.json.id as string;
    }
    this.groupIds.set(path, id);
    return id;
  }

  async setGroupMembership(accountId: string, from: string[], to: string[]): Promise<void> {
    const add = [...new Set(to)];
    const remove = [...new Set(from)].filter((g) => !add.includes(g));
    for (const groupId of add) {
      const res = await this.call('POST', `/v1.0/groups/${encodeURIComponent(groupId)}/members/$ref`, {
        route: 'POST /groups/{id}/members/$ref',
        body: { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${accountId}` },
        accept: [400],
      });
      // "One or more added object references already exist" = already a member = done.
      if (res.status === 400 && !/already exist/i.test(String(res.json?.error?.message ?? ''))) {
        throw graphError(400, res.json, 'POST /groups/{id}/members/$ref');
      }
    }
    for (const groupId of remove) {
      // 404: not a member (any more) = done.
      await this.call('DELETE', `/v1.0/groups/${encodeURIComponent(groupId)}/members/${encodeURIComponent(accountId)}/$ref`, {
        route: 'DELETE /groups/{id}/members/{userId}/$ref',
        accept: [404],
      });
    }
  }

  // ------------------------------------------------------------------ subscriptions

  async createSubscription(input: CreateSubscriptionInput): Promise<GraphSubscription> {
    validateClientState(input.clientState);
    const expirationDateTime = this.checkExpiration(input.expirationDateTime);
    const body: Record<string, unknown> = {
      changeType: 'updated,deleted',
      notificationUrl: input.notificationUrl,
      resource: 'users',
      expirationDateTime,
      clientState: input.clientState,
      latestSupportedTlsVersion: 'v1_2',
    };
    if (input.lifecycleNotificationUrl) body.lifecycleNotificationUrl = input.lifecycleNotificationUrl;
    const { json } = await this.call('POST', '/v1.0/subscriptions', { route: 'POST /subscriptions', body });
    return json as GraphSubscription;
  }

  /** Extend a subscription; undefined when Graph no longer knows it (404: expired or removed). */
  async renewSubscription(id: string, expirationDateTime: string | Date): Promise<GraphSubscription | undefined> {
    const res = await this.call('PATCH', `/v1.0/subscriptions/${encodeURIComponent(id)}`, {
      route: 'PATCH /subscriptions/{id}',
      body: { expirationDateTime: this.checkExpiration(expirationDateTime) },
      accept: [404],
    });
    return res.status === 404 ? undefined : (res.json as GraphSubscription);
  }

  async listSubscriptions(): Promise<GraphSubscription[]> {
    const out: GraphSubscription[] = [];
    let url: string | undefined = '/v1.0/subscriptions';
    while (url) {
      const res: CallResult = await this.call('GET', url, { route: 'GET /subscriptions' });
      out.push(...((res.json?.value ?? []) as GraphSubscription[]));
      url = res.json?.['@odata.nextLink'];
    }
    return out;
  }

  async deleteSubscription(id: string): Promise<void> {
    await this.call('DELETE', `/v1.0/subscriptions/${encodeURIComponent(id)}`, { route: 'DELETE /subscriptions/{id}', accept: [404] });
  }

  private checkExpiration(value: string | Date): string {
    const at = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(at.getTime())) throw new MailboxError('subscription expiration is not a date', false, 'InvalidInput');
    const max = this.now().getTime() + MAX_USER_SUBSCRIPTION_MINUTES * 60_000;
    if (at.getTime() > max) {
      throw new MailboxError(`subscription expiration beyond Graph's ${MAX_USER_SUBSCRIPTION_MINUTES} minutes for users`, false, 'InvalidInput');
    }
    return at.toISOString();
  }

  // ------------------------------------------------------------------ transport

  private async fetchToken(): Promise<{ value: string; lifetimeMs: number }> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.opts.clientId,
      client_secret: this.opts.clientSecret,
      scope: GRAPH_SCOPE,
    });
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchFn(this.tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: form.toString(),
        });
      } catch {
        if (attempt >= this.maxRetries) throw new MailboxError('Graph token endpoint unreachable', true, 'NetworkError');
        await this.sleep(backoffMs(attempt, BACKOFF));
        continue;
      }
      const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
      if (res.ok && body.access_token) return { value: body.access_token, lifetimeMs: Math.max(60, Number(body.expires_in ?? 3599)) * 1000 };
      if (RETRYABLE.has(res.status) && attempt < this.maxRetries) {
        await this.sleep(retryAfterMs(res.headers.get('retry-after')) ?? backoffMs(attempt, BACKOFF));
        continue;
      }
      // `error` is an OAuth code like invalid_client; error_description is not copied (it may echo ids).
      const code = typeof body.error === 'string' ? body.error : `http_${res.status}`;
      throw new MailboxError(`Graph token request failed: ${res.status} ${code}`, RETRYABLE.has(res.status), code);
    }
  }

  private async call(method: string, pathOrUrl: string, o: CallOptions): Promise<CallResult> {
    const url = this.resolve(pathOrUrl);
    let refreshed = false;
    for (let attempt = 0; ; ) {
      const token = await this.token.get();
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json', ...o.headers };
      if (o.body !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      try {
        res = await this.fetchFn(url, { method, headers, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}) });
      } catch {
        if (attempt >= this.maxRetries) throw new MailboxError(`Graph ${o.route}: network error`, true, 'NetworkError');
        await this.sleep(backoffMs(attempt++, BACKOFF));
        continue;
      }
      if (res.status === 401 && !refreshed) {
        // Token revoked or expired early: fetch a new one, once.
        refreshed = true;
        this.token.drop(token);
        await res.body?.cancel();
        continue;
      }
      if (RETRYABLE.has(res.status)) {
        const wait = retryAfterMs(res.headers.get('retry-after')) ?? backoffMs(attempt, BACKOFF);
        const body = (await res.json().catch(() => undefined)) as { error?: { code?: string } } | undefined;
        if (attempt >= this.maxRetries) {
          const code = body?.error?.code ?? (res.status === 429 ? 'TooManyRequests' : `http_${res.status}`);
          throw new MailboxError(`Graph ${o.route} failed: ${res.status} ${code} (after ${attempt} retries)`, true, code, wait);
        }
        log.debug('graph throttled; waiting', { route: o.route, status: res.status, waitMs: wait, attempt });
        await this.sleep(wait);
        attempt++;
        continue;
      }
      const text = await res.text();
      const json = text ? safeJson(text) : undefined;
      if (res.ok || o.accept?.includes(res.status)) return { status: res.status, json };
      throw graphError(res.status, json, o.route);
    }
  }

  /**
   * Absolute links (nextLink, deltaLink) must point at our API base: the bearer token is
   * never sent anywhere else.
   */
  private resolve(pathOrUrl: string): string {
    if (!/^https?:\/\//i.test(pathOrUrl)) return this.apiBase + pathOrUrl;
    if (!pathOrUrl.startsWith(this.apiBase + '/')) {
      throw new MailboxError('Graph returned a link outside the API base', false, 'UnexpectedLink');
    }
    return pathOrUrl;
  }
}

// ------------------------------------------------------------------ helpers (exported for tests)

/** OData string literal escaping: a single quote is doubled. */
export function escapeODataString(value: string): string {
  return value.replace(/'/g, "''");
}

export function groupNickname(path: string): string {
  return 'wms-' + createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 24);
}

export function validateClientState(clientState: string): void {
  if (!clientState || clientState.length > MAX_CLIENT_STATE_LENGTH) {
    throw new MailboxError(`clientState must be 1..${MAX_CLIENT_STATE_LENGTH} characters`, false, 'InvalidInput');
  }
}

/** mailNickname allows ASCII letters, digits and a few marks, ≤ 64 chars. */
function mailNicknameFrom(local: string): string {
  const cleaned = local.replace(/[^A-Za-z0-9._-]/g, '').replace(/^\.+|\.+$/g, '').slice(0, 64);
  return cleaned || 'user' + randomInt(1e9).toString(36);
}

/** 20 chars from all four classes: meets Entra's complexity rules. Never logged or returned. */
export function strongPassword(): string {
  const sets = ['ABCDEFGHJKLMNPQRSTUVWXYZ', 'abcdefghijkmnopqrstuvwxyz', '23456789', '!@#$%^&*-_=+?'];
  const all = sets.join('');
  const chars = sets.map((s) => s[randomInt(s.length)]!);
  while (chars.length < 20) chars.push(all[randomInt(all.length)]!);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join('');
}

function toWire(input: MailboxAccountInput): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (input.employeeId !== undefined) body.employeeId = input.employeeId;
  if (input.enabled !== undefined) body.accountEnabled = input.enabled;
  if (input.displayName !== undefined) {
    if (input.displayName === null) throw new MailboxError('Graph users cannot have an empty displayName', false, 'InvalidInput');
    body.displayName = input.displayName;
  }
  if (input.mailNickname !== undefined && input.mailNickname !== null) body.mailNickname = input.mailNickname;
  if (input.mobile !== undefined) body.mobilePhone = input.mobile;
  if (input.telephone !== undefined) body.businessPhones = input.telephone === null ? [] : [input.telephone];
  if (input.jobTitle !== undefined) body.jobTitle = input.jobTitle;
  if (input.department !== undefined) body.department = input.department;
  return body;
}

/** Wire → port. A key absent from the wire object stays undefined (unknown), a null stays null. */
export function toAccount(u: GraphUserWire): MailboxAccount {
  const acc: MailboxAccount = { id: u.id, enabled: u.accountEnabled !== false };
  if (u.employeeId) acc.employeeId = u.employeeId;
  if ('displayName' in u) acc.displayName = u.displayName ?? null;
  if ('mail' in u || 'userPrincipalName' in u) {
    const addr = u.mail ?? u.userPrincipalName ?? null;
    acc.email = addr ? addr.toLowerCase() : null;
  }
  if ('mailNickname' in u) acc.mailNickname = u.mailNickname ?? null;
  if ('mobilePhone' in u) acc.mobile = canonicalPhone(u.mobilePhone);
  if ('businessPhones' in u) acc.telephone = canonicalPhone(u.businessPhones?.[0]);
  if ('jobTitle' in u) acc.jobTitle = u.jobTitle ?? null;
  if ('department' in u) acc.department = u.department ?? null;
  return acc;
}

/** Numbers typed by an admin ("+86 138 0013 8000") read back as E.164 so the diff doesn't flap. */
function canonicalPhone(value: string | null | undefined): string | null {
  if (!value || !value.trim()) return null;
  const parsed = value.trim().startsWith('+') ? parsePhoneNumberFromString(value.trim()) : undefined;
  return parsed?.isValid() ? parsed.number : value.trim();
}

function graphError(status: number, body: any, route: string): MailboxError {
  const code: string = typeof body?.error?.code === 'string' ? body.error.code : `http_${status}`;
  const detail: string | undefined = typeof body?.error?.details?.[0]?.code === 'string' ? body.error.details[0].code : undefined;
  // Deliberately without Graph's message: it may echo the values we sent.
  return new MailboxError(`Graph ${route} failed: ${status} ${code}${detail ? `/${detail}` : ''}`, RETRYABLE.has(status), code);
}

function headerOf(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
