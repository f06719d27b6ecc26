/**
 * Microsoft Graph adapter of the MailboxDirectory port (Entra ID users + security groups),
 * plus the Graph-only reads the sync uses (batched gets, delta) and the subscription calls,
 * each delegated to its module so this file holds the directory only.
 *
 * Wire facts relied on (Graph v1.0):
 * - `$filter=employeeId eq '…'` is sent with `ConsistencyLevel: eventual` + `$count=true`
 *   (an advanced query) so it works whatever the tenant's index state; the filter is
 *   case-insensitive, the link is exact, so results are checked again here.
 * - Graph cannot create mail-enabled security groups or distribution lists: a department is a
 *   security group (mailEnabled false) plus the user's `department` attribute.
 * - DELETE /users/{id} is a soft delete: the user waits 30 days in `directory/deletedItems`,
 *   then is gone for good. Meanwhile its UPN is still taken: creating a user with it fails
 *   (400 ObjectConflict), so a returning person is restored, not created again.
 * - Listing deleted users needs the type cast (`/directory/deletedItems/microsoft.graph.user`;
 *   without it: 400), and its `$filter` is an advanced query like the one on /users.
 * - `POST /directory/deletedItems/{id}/restore` (no body) → 200 with the user: the same id,
 *   mailbox and properties. Refused (400 ObjectConflict) while a live object holds its UPN.
 *   Group memberships are not part of it: the sync sets them again.
 * - Group membership: `POST /groups/{id}/members/$ref` with `@odata.id` naming the directory
 *   object on the CLOUD's Graph host (config.ts), whatever host the request goes to; "One or
 *   more added object references already exist" (400) means already a member.
 */
import type { MailboxAccount, MailboxAccountInput, MailboxDirectory, MailboxPage } from '../directory';
import { MailboxError } from '../directory';
import { backoffMs, retryAfterMs } from '../../core/retry';
import { BACKOFF, GraphClient, graphError, RETRYABLE, type CallResult, type GraphClientOptions } from './client';
import { directoryObjectRef } from './config';
import { readUserDelta, type DeltaResult } from './delta';
import { GraphSubscriptions, type CreateSubscriptionInput, type GraphSubscription, type SubscriptionApi } from './subscriptions';
import { escapeODataString, groupNickname, mailNicknameFrom, toAccount, toDeletedAccount, toWire, userPrincipalName, USER_SELECT, type GraphUserWire } from './wire';
import { initialPassword } from '../password';

/** Graph's JSON batching limit. */
export const MAX_BATCH_REQUESTS = 20;

export interface GraphDirectoryOptions extends GraphClientOptions {
  /** Tenant domain for userPrincipalName (`<local>@<domain>`). */
  domain: string;
  /** Set on create when given (Graph needs it before a licence can be assigned). */
  usageLocation?: string;
  /** `get` looks in /directory/deletedItems on 404 to report soft-deleted accounts (default true). */
  checkDeletedItems?: boolean;
  /** Share a transport (and its token) with other Graph modules; built from the options otherwise. */
  client?: GraphClient;
}

const byEmployeeId = (userid: string) => encodeURIComponent(`employeeId eq '${escapeODataString(userid)}'`);

export class GraphDirectory implements MailboxDirectory, SubscriptionApi {
  readonly provider = 'graph';
  readonly client: GraphClient;
  private readonly subscriptions: GraphSubscriptions;
  private readonly groupIds = new Map<string, string>();

  constructor(private readonly opts: GraphDirectoryOptions) {
    this.client = opts.client ?? new GraphClient(opts);
    this.subscriptions = new GraphSubscriptions(this.client);
  }

  // ------------------------------------------------------------------ users

  async findByEmployeeId(userid: string): Promise<MailboxAccount | undefined> {
    const path = `/v1.0/users?$filter=${byEmployeeId(userid)}&$count=true&$select=${USER_SELECT}`;
    const { json } = await this.client.call('GET', path, { route: 'GET /users?$filter=employeeId', headers: { ConsistencyLevel: 'eventual' } });
    const found = ((json?.value ?? []) as GraphUserWire[]).filter((u) => u.employeeId === userid);
    if (found.length > 1) {
      // Two accounts claim the same WeCom user: touching either could hit the wrong person.
      throw new MailboxError(`Graph: ${found.length} accounts share one employeeId`, false, 'AmbiguousEmployeeId', undefined, 'ambiguous');
    }
    return found[0] ? toAccount(found[0]) : undefined;
  }

  async get(id: string): Promise<MailboxAccount | undefined> {
    const res = await this.client.call('GET', `/v1.0/users/${encodeURIComponent(id)}?$select=${USER_SELECT}`, { route: 'GET /users/{id}', accept: [404] });
    if (res.status === 200) return toAccount(res.json as GraphUserWire);
    if (this.opts.checkDeletedItems === false) return undefined;
    const del = await this.client.call('GET', `/v1.0/directory/deletedItems/${encodeURIComponent(id)}?$select=${USER_SELECT}`, {
      route: 'GET /directory/deletedItems/{id}',
      accept: [404],
    });
    return del.status === 200 ? toDeletedAccount(del.json as GraphUserWire) : undefined;
  }

  /** The most recently deleted account linked to `userid` that Graph can still restore. Every page is read: the newest may be on any. */
  async findDeleted(userid: string): Promise<MailboxAccount | undefined> {
    let url: string | undefined = `/v1.0/directory/deletedItems/microsoft.graph.user?$filter=${byEmployeeId(userid)}&$count=true&$select=${USER_SELECT},deletedDateTime`;
    let newest: GraphUserWire | undefined;
    const at = (u: GraphUserWire) => Date.parse(u.deletedDateTime ?? '') || 0;
    while (url) {
      const res: CallResult = await this.client.call('GET', url, {
        route: 'GET /directory/deletedItems/microsoft.graph.user?$filter=employeeId',
        headers: { ConsistencyLevel: 'eventual' },
      });
      for (const u of (res.json?.value ?? []) as GraphUserWire[]) {
        if (u.employeeId === userid && (!newest || at(u) > at(newest))) newest = u;
      }
      url = res.json?.['@odata.nextLink'];
    }
    return newest ? toDeletedAccount(newest) : undefined;
  }

  /**
   * Not idempotent on the wire (a second restore finds nothing: 404), so a 404 after a retried
   * POST whose answer was lost is checked against the live users: already restored is done.
   */
  async restore(id: string): Promise<MailboxAccount> {
    const route = 'POST /directory/deletedItems/{id}/restore';
    const res = await this.client.call('POST', `/v1.0/directory/deletedItems/${encodeURIComponent(id)}/restore`, { route, accept: [404] });
    if (res.status !== 404) return toAccount(res.json as GraphUserWire);
    const live = await this.client.call('GET', `/v1.0/users/${encodeURIComponent(id)}?$select=${USER_SELECT}`, { route: 'GET /users/{id}', accept: [404] });
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
        const body = { requests: pending.map((id, n) => ({ id: String(n), method: 'GET', url: `/users/${encodeURIComponent(id)}?$select=${USER_SELECT}` })) };
        const { json } = await this.client.call('POST', '/v1.0/$batch', { route: 'POST /$batch', body });
        const throttled: string[] = [];
        let waitMs = 0;
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
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
        if (attempt >= this.client.maxRetries) {
          throw new MailboxError(`Graph POST /$batch: ${throttled.length} requests still throttled`, true, 'TooManyRequests', waitMs, 'throttled');
        }
        await this.client.sleep(waitMs);
        pending = throttled;
      }
    }
    return out;
  }

  async create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }): Promise<MailboxAccount> {
    const email = input.email.trim().toLowerCase();
    const body: Record<string, unknown> = {
      ...toWire(input),
      accountEnabled: input.enabled ?? true,
      userPrincipalName: userPrincipalName(email, this.opts.domain),
      mail: email,
      mailNickname: input.mailNickname ?? mailNicknameFrom(email.split('@')[0] ?? ''),
      passwordProfile: { password: initialPassword(), forceChangePasswordNextSignIn: true },
    };
    if (this.opts.usageLocation) body.usageLocation = this.opts.usageLocation;
    const { json } = await this.client.call('POST', '/v1.0/users', { route: 'POST /users', body });
    return toAccount(json as GraphUserWire);
  }

  async update(id: string, patch: MailboxAccountInput): Promise<void> {
    const body = toWire(patch);
    if (patch.email !== undefined) {
      body.mail = patch.email === null ? null : patch.email.trim().toLowerCase();
      if (patch.email !== null) body.userPrincipalName = userPrincipalName(patch.email, this.opts.domain);
    }
    if (Object.keys(body).length === 0) return;
    await this.patchUser(id, body);
  }

  async disable(id: string): Promise<void> {
    await this.patchUser(id, { accountEnabled: false });
  }

  async enable(id: string): Promise<void> {
    await this.patchUser(id, { accountEnabled: true });
  }

  /** Soft delete (Graph keeps the user in deletedItems for 30 days). Already gone counts as done. */
  async delete(id: string): Promise<void> {
    await this.client.call('DELETE', `/v1.0/users/${encodeURIComponent(id)}`, { route: 'DELETE /users/{id}', accept: [404] });
  }

  async listPage(cursor?: string): Promise<MailboxPage> {
    const { json } = await this.client.call('GET', cursor ?? `/v1.0/users?$select=${USER_SELECT}&$top=999`, { route: 'GET /users' });
    const accounts = ((json?.value ?? []) as GraphUserWire[]).map(toAccount);
    const next = json?.['@odata.nextLink'] as string | undefined;
    return next ? { accounts, next } : { accounts };
  }

  private async patchUser(id: string, body: Record<string, unknown>): Promise<void> {
    await this.client.call('PATCH', `/v1.0/users/${encodeURIComponent(id)}`, { route: 'PATCH /users/{id}', body });
  }

  // ------------------------------------------------------------------ groups

  /** A department path ↔ one security group, found by its hashed mailNickname (wire.ts groupNickname). */
  async ensureGroup(path: string): Promise<string> {
    const cached = this.groupIds.get(path);
    if (cached) return cached;
    const nickname = groupNickname(path);
    const filter = encodeURIComponent(`mailNickname eq '${nickname}'`);
    const { json } = await this.client.call('GET', `/v1.0/groups?$filter=${filter}&$select=id,displayName,mailNickname`, { route: 'GET /groups?$filter' });
    // Two concurrent creators can leave duplicates; everyone then settles on the smallest id.
    let id = ((json?.value ?? []) as Array<{ id: string }>).map((g) => g.id).sort()[0];
    if (!id) {
      const created = await this.client.call('POST', '/v1.0/groups', {
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
      const route = 'POST /groups/{id}/members/$ref';
      const res = await this.client.call('POST', `/v1.0/groups/${encodeURIComponent(groupId)}/members/$ref`, {
        route,
        body: { '@odata.id': directoryObjectRef(this.client.cloud, accountId) },
        accept: [400],
      });
      // "One or more added object references already exist" = already a member = done.
      if (res.status === 400 && !/already exist/i.test(String(res.json?.error?.message ?? ''))) throw graphError(400, res.json, route);
    }
    for (const groupId of remove) {
      // 404: not a member (any more) = done.
      await this.client.call('DELETE', `/v1.0/groups/${encodeURIComponent(groupId)}/members/${encodeURIComponent(accountId)}/$ref`, {
        route: 'DELETE /groups/{id}/members/{userId}/$ref',
        accept: [404],
      });
    }
  }

  /** Direct group memberships (`lifecycle.mailboxScope.groupIds`); every page is read. Needs GroupMember.Read.All or Directory.Read.All. */
  async memberOf(accountId: string): Promise<string[]> {
    const ids: string[] = [];
    let url: string | undefined = `/v1.0/users/${encodeURIComponent(accountId)}/memberOf/microsoft.graph.group?$select=id`;
    while (url) {
      const res: CallResult = await this.client.call('GET', url, { route: 'GET /users/{id}/memberOf', accept: [404] });
      if (res.status === 404) throw new MailboxError('Graph: account not found', false, 'NotFound', undefined, 'not-found');
      for (const g of (res.json?.value ?? []) as Array<{ id?: string }>) if (g.id) ids.push(g.id);
      url = res.json?.['@odata.nextLink'];
    }
    return ids;
  }

  // ------------------------------------------------------------------ Graph-only extras (delta.ts, subscriptions.ts)

  /** Users changed since `deltaLink` (or all users on the first call). */
  delta(deltaLink?: string): Promise<DeltaResult> {
    return readUserDelta(this.client, deltaLink);
  }

  createSubscription(input: CreateSubscriptionInput): Promise<GraphSubscription> {
    return this.subscriptions.create(input);
  }

  renewSubscription(id: string, expirationDateTime: string | Date): Promise<GraphSubscription | undefined> {
    return this.subscriptions.renew(id, expirationDateTime);
  }

  listSubscriptions(): Promise<GraphSubscription[]> {
    return this.subscriptions.list();
  }

  deleteSubscription(id: string): Promise<void> {
    return this.subscriptions.delete(id);
  }
}

function headerOf(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}
