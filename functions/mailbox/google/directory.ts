/**
 * Google Workspace adapter of the MailboxDirectory port (Admin SDK Directory API users).
 *
 * Wire facts relied on (Directory API reference and guides; sources in docs/providers/google.md):
 * - `GET /users?customer=my_customer&query=externalId:'…'` searches every externalIds value
 *   (any type, not case-sensitive, word match): the link is checked again here, exactly and
 *   for our type only; two accounts carrying it are `ambiguous`, never a guess.
 * - `PUT /users/{id}` (users.update) with only the changed keys: it has patch semantics, and
 *   unlike users.patch it can clear repeated fields (`null`); Google recommends it over patch,
 *   also "if you're mapping an external identity". Arrays are written whole (wire.ts).
 * - disable = `suspended: true` (Google's own advice for leavers: suspend rather than delete;
 *   the mailbox keeps receiving and the licence stays assigned).
 * - `DELETE /users/{id}` keeps the user restorable for 20 days (`users.undelete`, the immutable
 *   id only; `GET /users?showDeleted=true` lists them with `deletionTime`). Unlike Entra, the
 *   address is FREE again at once: a new user may take it, after which the old one cannot be
 *   restored ("You can't restore a user if the username … has been given to someone else").
 *   The contract says a soft-deleted account holds its address, so `create` checks the
 *   recently deleted users first and answers `conflict` (restore that one instead): what
 *   Entra enforces, enforced here. That read is cached for `deletedCacheMs` and dropped on
 *   our own delete / restore, so a bulk onboarding pays one listing a minute, not one per user.
 * - `POST /users/{id}/undelete` answers with an empty body; the user comes back in the org
 *   unit named in the body (deleted users lose theirs): the department's mapped one, else `/`.
 *   A second undelete finds nothing (404): checked against the live users, already restored
 *   is done. A taken address is refused (409 here; mapped to `conflict`).
 * - Listing: `maxResults` ≤ 500 and `nextPageToken`.
 * - Groups: none here (capability `groups: false`). Google Groups is another API and another
 *   scope, and a mailing list is not a department; the department is the primary
 *   organization's `department` (and optionally `orgUnitPath` through config `orgUnits`).
 *   `ensureGroup` therefore answers a stable local key without a call and
 *   `setGroupMembership` does nothing, so the engine's department steps stay harmless.
 */
import { createHash } from 'node:crypto';
import type { MailboxAccount, MailboxAccountInput, MailboxDirectory, MailboxPage } from '../directory';
import { MailboxError } from '../directory';
import { googleError, type GoogleClient } from './client';
import { orgUnitFor, type GoogleSettings } from './config';
import { hasLink, needsCurrent, primaryEmail, quoteQueryValue, toAccount, toDeletedAccount, userBody, type GoogleUserWire, type LinkSpec } from './wire';
import { initialPassword } from '../password';

/** The Directory API's largest page. */
export const MAX_RESULTS = 500;
const USERS = '/admin/directory/v1/users';
const user = (id: string) => `${USERS}/${encodeURIComponent(id)}`;

export interface GoogleDirectoryOptions {
  client: GoogleClient;
  /** Tenant domain of new primary addresses (`<local>@<domain>`). */
  domain: string;
  /** Directory customer key (default `my_customer`). */
  customer?: string;
  link?: LinkSpec;
  orgUnits?: GoogleSettings['orgUnits'];
  /** How long the recently-deleted listing is reused (default 60 s; 0 = always read). */
  deletedCacheMs?: number;
}

export class GoogleDirectory implements MailboxDirectory {
  readonly provider = 'google';
  readonly client: GoogleClient;
  private readonly customer: string;
  private readonly link: LinkSpec;
  private deleted?: { at: number; users: Promise<GoogleUserWire[]> };

  constructor(private readonly opts: GoogleDirectoryOptions) {
    this.client = opts.client;
    this.customer = opts.customer ?? 'my_customer';
    this.link = opts.link ?? { type: 'organization' };
  }

  // ------------------------------------------------------------------ reads

  async findByEmployeeId(userid: string): Promise<MailboxAccount | undefined> {
    const found: GoogleUserWire[] = [];
    let pageToken: string | undefined;
    do {
      const { json } = await this.client.call('GET', USERS, {
        route: 'GET /users?query=externalId',
        query: { customer: this.customer, query: `externalId:${quoteQueryValue(userid)}`, maxResults: MAX_RESULTS, projection: 'full', pageToken },
      });
      for (const u of (json?.users ?? []) as GoogleUserWire[]) if (hasLink(u, this.link, userid)) found.push(u);
      pageToken = json?.nextPageToken;
    } while (pageToken);
    if (found.length > 1) {
      // Two accounts claim the same WeCom user: touching either could hit the wrong person.
      throw new MailboxError(`Google: ${found.length} accounts share one link`, false, 'AmbiguousExternalId', undefined, 'ambiguous');
    }
    return found[0] ? toAccount(found[0], this.link) : undefined;
  }

  async get(id: string): Promise<MailboxAccount | undefined> {
    const res = await this.client.call('GET', user(id), { route: 'GET /users/{id}', query: { projection: 'full' }, accept: [404] });
    if (res.status === 200) return toAccount(res.json as GoogleUserWire, this.link);
    const gone = (await this.deletedUsers()).find((u) => u.id === id);
    return gone ? toDeletedAccount(gone, this.link) : undefined;
  }

  /** The most recently deleted account linked to `userid` that Google can still restore (20 days). */
  async findDeleted(userid: string): Promise<MailboxAccount | undefined> {
    const at = (u: GoogleUserWire) => Date.parse(u.deletionTime ?? '') || 0;
    const newest = (await this.deletedUsers()).filter((u) => hasLink(u, this.link, userid)).sort((a, b) => at(b) - at(a))[0];
    return newest ? toDeletedAccount(newest, this.link) : undefined;
  }

  async listPage(cursor?: string): Promise<MailboxPage> {
    const { json } = await this.client.call('GET', USERS, {
      route: 'GET /users',
      query: { customer: this.customer, maxResults: MAX_RESULTS, projection: 'full', pageToken: cursor },
    });
    const accounts = ((json?.users ?? []) as GoogleUserWire[]).map((u) => toAccount(u, this.link));
    const next = json?.nextPageToken as string | undefined;
    return next ? { accounts, next } : { accounts };
  }

  // ------------------------------------------------------------------ writes

  async create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }): Promise<MailboxAccount> {
    const address = primaryEmail(input.email, this.opts.domain);
    if ((await this.deletedUsers()).some((u) => u.primaryEmail?.toLowerCase() === address)) {
      // Google would let us take it; the old account could then never be restored.
      throw new MailboxError('Google POST /users refused: the address belongs to a recently deleted account (restore it)', false, 'DeletedAccountHoldsAddress', undefined, 'conflict');
    }
    const body: Record<string, unknown> = {
      ...userBody({ ...input, enabled: input.enabled ?? true }, { link: this.link, domain: this.opts.domain, current: { id: '' } }),
      primaryEmail: address,
      password: initialPassword(),
      changePasswordAtNextLogin: true,
    };
    const ou = orgUnitFor(input.department, this.opts.orgUnits);
    if (ou) body.orgUnitPath = ou;
    const { json } = await this.client.call('POST', USERS, { route: 'POST /users', body });
    return toAccount(json as GoogleUserWire, this.link);
  }

  async update(id: string, patch: MailboxAccountInput): Promise<void> {
    let current: GoogleUserWire | undefined;
    if (needsCurrent(patch)) {
      const res = await this.client.call('GET', user(id), { route: 'GET /users/{id}', query: { projection: 'full' }, accept: [404] });
      if (res.status === 404) throw googleError(404, res.json, 'GET /users/{id}');
      current = res.json as GoogleUserWire;
    }
    const body = userBody(patch, { link: this.link, domain: this.opts.domain, ...(current ? { current } : {}) });
    const ou = patch.department !== undefined ? orgUnitFor(patch.department, this.opts.orgUnits) : undefined;
    if (ou && ou !== current?.orgUnitPath) body.orgUnitPath = ou;
    if (Object.keys(body).length === 0) return;
    await this.putUser(id, body);
  }

  async disable(id: string): Promise<void> {
    await this.putUser(id, { suspended: true });
  }

  async enable(id: string): Promise<void> {
    await this.putUser(id, { suspended: false });
  }

  /** Restorable for 20 days. Already gone counts as done. */
  async delete(id: string): Promise<void> {
    await this.client.call('DELETE', user(id), { route: 'DELETE /users/{id}', accept: [404] });
    this.deleted = undefined;
  }

  async restore(id: string): Promise<MailboxAccount> {
    const route = 'POST /users/{id}/undelete';
    const was = (await this.deletedUsers()).find((u) => u.id === id);
    const department = was?.organizations?.find((o) => o.primary)?.department ?? was?.organizations?.[0]?.department;
    // 404 / 400: nothing deleted under that id — maybe because a retry's first attempt restored it.
    const res = await this.client.call('POST', `${user(id)}/undelete`, { route, body: { orgUnitPath: orgUnitFor(department, this.opts.orgUnits) ?? '/' }, accept: [400, 404] });
    this.deleted = undefined;
    const live = await this.client.call('GET', user(id), { route: 'GET /users/{id}', query: { projection: 'full' }, accept: [404] });
    if (live.status === 200) return toAccount(live.json as GoogleUserWire, this.link);
    throw googleError(res.status >= 400 ? res.status : 404, res.status >= 400 ? res.json : live.json, route);
  }

  // ------------------------------------------------------------------ departments (no groups: see the header)

  async ensureGroup(path: string): Promise<string> {
    return 'ou-' + createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 24);
  }

  async setGroupMembership(): Promise<void> {}

  // ------------------------------------------------------------------ internals

  private async putUser(id: string, body: Record<string, unknown>): Promise<void> {
    await this.client.call('PUT', user(id), { route: 'PUT /users/{id}', body });
  }

  /** Users deleted within Google's 20 days, read at most once per `deletedCacheMs` (see the header). */
  private deletedUsers(): Promise<GoogleUserWire[]> {
    const now = this.client.now().getTime();
    const ttl = this.opts.deletedCacheMs ?? 60_000;
    if (this.deleted && now - this.deleted.at < ttl) return this.deleted.users;
    const users = this.readDeleted();
    const entry = { at: now, users };
    this.deleted = entry;
    users.catch(() => {
      if (this.deleted === entry) this.deleted = undefined;
    });
    return users;
  }

  private async readDeleted(): Promise<GoogleUserWire[]> {
    const out: GoogleUserWire[] = [];
    let pageToken: string | undefined;
    do {
      const { json } = await this.client.call('GET', USERS, {
        route: 'GET /users?showDeleted=true',
        query: { customer: this.customer, showDeleted: 'true', maxResults: MAX_RESULTS, projection: 'full', pageToken },
      });
      out.push(...((json?.users ?? []) as GoogleUserWire[]));
      pageToken = json?.nextPageToken;
    } while (pageToken);
    return out;
  }
}
