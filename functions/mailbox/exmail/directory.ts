/**
 * Tencent Exmail adapter of the MailboxDirectory port (members of the 通讯录管理 app).
 *
 * Wire facts relied on (see wire.ts and client.ts for the fields and the errcodes):
 * - The account's id is its address (`userid`). `user/get?userid=` reads one; 60111 = gone.
 * - `user/list?department_id=1&fetch_child=1` lists every member with its fields (extid,
 *   enable, department …) in ONE answer: the API has no paging and no search by extid. So:
 *   - `listPage` pages a listing client-side: sorted by address, the cursor names the listing
 *     (kept in memory for the next page) and the last address; a cursor from another container
 *     lists again and goes on after that address, so every account that lived throughout
 *     appears once.
 *   - `findByEmployeeId` answers from a link index (extid → addresses) built from the same
 *     listing and kept `indexTtlMs`; each hit is re-read (`user/get`) and must still carry the
 *     link, a miss or a stale hit lists again before answering "none", and the adapter's own
 *     creates and deletes update the index. What it can miss: a second account given the same
 *     extid by someone else within the TTL (ambiguity is then found at the next listing).
 * - `user/create` needs a department (the root, 1, when the person has none) and a password:
 *   a random one with `cpwd_login: 1`, never returned or logged. It has no `enable`: an account
 *   created disabled is created, then disabled.
 * - `user/update` changes only the fields sent (`enable` 0/1 included); it cannot rename the
 *   address: an address change is refused (`invalid`) before anything is written.
 * - `user/delete?userid=` is a hard delete (no restore through the API); 60111 = already gone.
 * - Departments: see departments.ts; the account's department list becomes the main
 *   department's id alone when the department changes.
 */
import { randomUUID } from 'node:crypto';
import { MailboxError, type MailboxAccount, type MailboxAccountInput, type MailboxDirectory, type MailboxPage } from '../directory';
import type { ExmailClient } from './client';
import type { ExmailDepartments } from './departments';
import { departmentIds, linkOf, normalizeId, ROOT_DEPARTMENT, toAccount, toWire, userIdFor, type ExmailUserWire } from './wire';
import { initialPassword } from '../password';

export interface ExmailDirectoryOptions {
  client: ExmailClient;
  departments: ExmailDepartments;
  /** The tenant's mail domain (runtime config `mailDomain`): new addresses are `<local>@<domain>`. */
  domain: string;
  /** Region of numbers stored without a country code (default CN). */
  phoneRegion?: string;
  /** Accounts per listPage page (default 500). */
  pageSize?: number;
  /** How long the link index answers before it is rebuilt (default 5 minutes). */
  indexTtlMs?: number;
}

/** One full listing: the accounts sorted by address, and the link index built from it. */
interface Listing {
  id: string;
  at: number;
  users: ExmailUserWire[];
  ids: string[];
}

/** errcodes that mean "no such account" for a read or a delete: gone, or not an address at all. */
const GONE = [60111, 40003];

export class ExmailDirectory implements MailboxDirectory {
  readonly provider = 'exmail';
  private readonly region: string;
  private readonly pageSize: number;
  private readonly indexTtlMs: number;
  private listing?: Listing;
  private loading?: Promise<Listing>;
  /** link → addresses, and address → link (to move an entry when a link changes). */
  private index?: { at: number; byLink: Map<string, Set<string>>; linkOf: Map<string, string> };

  constructor(private readonly o: ExmailDirectoryOptions) {
    this.region = o.phoneRegion ?? 'CN';
    this.pageSize = o.pageSize ?? 500;
    this.indexTtlMs = o.indexTtlMs ?? 5 * 60_000;
  }

  // ------------------------------------------------------------------ reads

  async findByEmployeeId(userid: string): Promise<MailboxAccount | undefined> {
    let fresh = false;
    if (!this.index || this.now() - this.index.at > this.indexTtlMs) {
      await this.loadAll();
      fresh = true;
    }
    for (;;) {
      const ids = [...(this.index!.byLink.get(userid) ?? [])];
      if (ids.length === 0 && !fresh) {
        await this.loadAll();
        fresh = true;
        continue;
      }
      const read = await Promise.all(ids.map((id) => this.read(id)));
      const live = read.filter((u): u is ExmailUserWire => !!u && linkOf(u) === userid);
      if (live.length !== ids.length && !fresh) {
        // The index is behind (an account deleted or relinked since): list again before answering.
        await this.loadAll();
        fresh = true;
        continue;
      }
      if (live.length > 1) {
        // Two accounts claim the same WeCom user: touching either could hit the wrong person.
        throw new MailboxError(`Exmail: ${live.length} accounts share one extid`, false, 'AmbiguousExtid', undefined, 'ambiguous');
      }
      return live[0] ? this.account(live[0]) : undefined;
    }
  }

  async get(id: string): Promise<MailboxAccount | undefined> {
    const u = await this.read(id);
    return u ? this.account(u) : undefined;
  }

  async listPage(cursor?: string): Promise<MailboxPage> {
    let after = '';
    let listing: Listing;
    if (cursor) {
      const c = decodeCursor(cursor);
      if (!c) throw new MailboxError('Exmail: not a listing cursor of this adapter', false, 'InvalidCursor', undefined, 'invalid');
      after = c.a;
      listing = this.listing?.id === c.s ? this.listing : await this.loadAll();
    } else listing = await this.loadAll();
    const start = firstAfter(listing.ids, after);
    const page = listing.users.slice(start, start + this.pageSize);
    const accounts = await Promise.all(page.map((u) => this.account(u)));
    const last = listing.ids[start + page.length - 1];
    return start + page.length < listing.ids.length && last ? { accounts, next: encodeCursor({ s: listing.id, a: last }) } : { accounts };
  }

  // ------------------------------------------------------------------ writes

  async create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }): Promise<MailboxAccount> {
    const userid = userIdFor(input.email, this.o.domain);
    const { enable: _enable, ...fields } = toWire(input, this.region);
    const department = input.department ? await this.o.departments.ensure(input.department) : ROOT_DEPARTMENT;
    const body = { userid, ...fields, department: [department], password: initialPassword(16), cpwd_login: 1 };
    await this.o.client.call('user/create', { body });
    if (input.enabled === false) await this.o.client.call('user/update', { body: { userid, enable: 0 } });
    this.relink(userid, input.employeeId);
    const { password: _p, cpwd_login: _c, ...stored } = body;
    return toAccount({ ...stored, enable: input.enabled === false ? 0 : 1 }, input.department ?? null, this.region);
  }

  async update(id: string, patch: MailboxAccountInput): Promise<void> {
    const userid = normalizeId(id);
    if (patch.email !== undefined && (patch.email === null || normalizeId(patch.email) !== userid)) {
      throw new MailboxError("Exmail cannot change an account's address through its API (rename it in the Exmail console; the extid link follows)", false, 'AddressChangeUnsupported', undefined, 'invalid');
    }
    const body = toWire(patch, this.region);
    if (patch.department !== undefined) body.department = [patch.department ? await this.o.departments.ensure(patch.department) : ROOT_DEPARTMENT];
    if (Object.keys(body).length === 0) return;
    await this.o.client.call('user/update', { body: { userid, ...body } });
    if (patch.employeeId !== undefined) this.relink(userid, patch.employeeId);
  }

  async disable(id: string): Promise<void> {
    await this.o.client.call('user/update', { body: { userid: normalizeId(id), enable: 0 } });
  }

  async enable(id: string): Promise<void> {
    await this.o.client.call('user/update', { body: { userid: normalizeId(id), enable: 1 } });
  }

  /** A hard delete: Exmail's API has no recycle bin. Already gone counts as done. */
  async delete(id: string): Promise<void> {
    const userid = normalizeId(id);
    await this.o.client.call('user/delete', { query: { userid }, pass: GONE });
    this.relink(userid, undefined);
  }

  // ------------------------------------------------------------------ departments (capability groups: false)

  /** Makes the department path exist in Exmail's tree and answers its id (the WeCom tree mirrored). */
  async ensureGroup(path: string): Promise<string> {
    return String(await this.o.departments.ensure(path));
  }

  /** Exmail has no groups we manage (config.ts): membership is the account's department attribute. */
  async setGroupMembership(): Promise<void> {}

  // ------------------------------------------------------------------ plumbing

  private now(): number {
    return this.o.client.now().getTime();
  }

  private async read(id: string): Promise<ExmailUserWire | undefined> {
    const r = await this.o.client.call('user/get', { query: { userid: normalizeId(id) }, pass: GONE });
    if (r.errcode && GONE.includes(Number(r.errcode))) return undefined;
    return r as unknown as ExmailUserWire;
  }

  private async account(u: ExmailUserWire): Promise<MailboxAccount> {
    const main = departmentIds(u)[0];
    const path = main === undefined ? null : await this.o.departments.pathOf(main);
    return toAccount(u, path, this.region);
  }

  /** One full listing (single-flight): the page source and the link index. */
  private loadAll(): Promise<Listing> {
    this.loading ??= this.o.client
      .call('user/list', { query: { department_id: String(ROOT_DEPARTMENT), fetch_child: '1' } })
      .then((r) => {
        const byId = new Map<string, ExmailUserWire>();
        // A member of several departments may be listed once per department.
        for (const u of (r.userlist ?? []) as ExmailUserWire[]) if (typeof u?.userid === 'string') byId.set(normalizeId(u.userid), u);
        const ids = [...byId.keys()].sort();
        const at = this.now();
        const listing: Listing = { id: randomUUID(), at, ids, users: ids.map((id) => byId.get(id)!) };
        const byLink = new Map<string, Set<string>>();
        const links = new Map<string, string>();
        for (const [id, u] of byId) {
          const link = linkOf(u);
          if (!link) continue;
          links.set(id, link);
          let set = byLink.get(link);
          if (!set) byLink.set(link, (set = new Set()));
          set.add(id);
        }
        this.listing = listing;
        this.index = { at, byLink, linkOf: links };
        return listing;
      })
      .finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** Our own write moved a link: keep the index true without listing again. */
  private relink(userid: string, link: string | undefined): void {
    if (!this.index) return;
    const old = this.index.linkOf.get(userid);
    if (old !== undefined) this.index.byLink.get(old)?.delete(userid);
    if (link === undefined || link === '') {
      this.index.linkOf.delete(userid);
      return;
    }
    this.index.linkOf.set(userid, link);
    let set = this.index.byLink.get(link);
    if (!set) this.index.byLink.set(link, (set = new Set()));
    set.add(userid);
  }
}

/** Index of the first id greater than `after` (ids sorted). */
function firstAfter(ids: string[], after: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function encodeCursor(c: { s: string; a: string }): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { s: string; a: string } | undefined {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { s?: unknown; a?: unknown };
    return typeof c.s === 'string' && typeof c.a === 'string' ? { s: c.s, a: c.a } : undefined;
  } catch {
    return undefined;
  }
}
