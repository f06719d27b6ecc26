/**
 * LDAP / Active Directory adapter of the MailboxDirectory port.
 *
 * - Reads always; writes (create, update, disable, enable, delete) only with
 *   `SYNC_CONFIG.ldap.writes: true`, otherwise refused before anything is sent (`invalid`,
 *   code ReadOnly; capabilities.writes says so beforehand).
 * - Accounts are the entries under `baseDn` matching the user filter; an entry moved out of
 *   either is gone for us (get → undefined; the feed reports it).
 * - The link match is exact: the server's equality rule on employeeNumber / employeeID ignores
 *   case, so the results are checked again here; two entries on one link are `ambiguous`.
 * - Every write finds the entry by its immutable id first (DNs change with renames and moves).
 * - LDAP does not keep an address unique (AD only the UPN, OpenLDAP nothing), so create looks
 *   for the address first: held by any entry = `conflict`. The new entry's RDN is the address's
 *   local part (a display name is not unique), under `createIn`.
 * - `delete` is LDAP's delete: AD moves the object to Deleted Objects (restorable only with
 *   the AD Recycle Bin, which this adapter does not use: capability restore off), OpenLDAP
 *   removes it. Gone already = done.
 * - No groups: departments are an attribute or the OU path (capability groups off; the group
 *   calls refuse, `invalid`, code Unsupported).
 * - Listing: a paged search (RFC 2696) on its own connection, one server page per listPage.
 *   The cursor names that search in THIS process (paged-results state lives in the server's
 *   connection): a cursor from another process is refused (`invalid`, CursorExpired), and the
 *   listing starts over. At most a few listings stay open at once (the oldest is closed).
 */
import { randomUUID } from 'node:crypto';
import { AndFilter, EqualityFilter, FilterParser, type Filter } from 'ldapts';
import type { MailboxAccount, MailboxAccountInput, MailboxDirectory, MailboxPage } from '../directory';
import { MailboxError } from '../directory';
import type { LdapClient, LdapEntry, LdapSearch } from './client';
import { readAttributes, requireConfigured, type LdapProfile } from './config';
import { enabledChange, first, idFilter, isDisabled, newEntryDn, toAccount, toAddAttributes, toChanges } from './wire';
import { initialPassword } from '../password';

export interface LdapDirectoryOptions {
  client: LdapClient;
  profile: LdapProfile;
  writes: boolean;
  /** For AD's userPrincipalName of new accounts. */
  domain: string;
  pageSize: number;
  /** Listings kept open at once (default 4). */
  maxListings?: number;
}

interface Listing {
  pages: AsyncGenerator<LdapEntry[]>;
  /** The page the next listPage returns (read one ahead, so `next` is only given when there is one). */
  ahead: IteratorResult<LdapEntry[]>;
  n: number;
}

const notFound = () => new MailboxError('LDAP: account not found', false, 'NotFound', undefined, 'not-found');

export class LdapDirectory implements MailboxDirectory {
  readonly provider = 'ldap';
  readonly client: LdapClient;
  readonly profile: LdapProfile;
  private parsedFilter?: Filter;
  private readonly listings = new Map<string, Listing>();

  constructor(private readonly o: LdapDirectoryOptions) {
    this.client = o.client;
    this.profile = o.profile;
  }

  /** Without `ldap.writes` the engine plans no write (MailboxDirectory.readOnly). */
  get readOnly(): boolean {
    return !this.o.writes;
  }

  // ------------------------------------------------------------------ reads

  /** The configured user filter, AND `extra`. */
  users(extra?: Filter): Filter {
    if (!this.parsedFilter) {
      try {
        this.parsedFilter = FilterParser.parseString(this.profile.userFilter);
      } catch {
        throw new MailboxError('SYNC_CONFIG.ldap.userFilter is not an LDAP filter', false, 'InvalidFilter', undefined, 'invalid');
      }
    }
    return extra ? new AndFilter({ filters: [this.parsedFilter, extra] }) : this.parsedFilter;
  }

  /** A search for accounts: the attributes of readAttributes, the id as bytes where it is binary. */
  accountSearch(filter: Filter, extra: string[] = []): LdapSearch {
    const p = this.profile;
    return { filter, attributes: [...readAttributes(p), ...extra], ...(p.idKind === 'guid' ? { binary: [p.attributes.id] } : {}) };
  }

  async findByEmployeeId(userid: string): Promise<MailboxAccount | undefined> {
    requireConfigured(this.profile);
    const link = this.profile.attributes.employeeId;
    const entries = await this.client.search('search by link', this.profile.baseDn, this.accountSearch(this.users(new EqualityFilter({ attribute: link, value: userid }))));
    const found = entries.filter((e) => first(e, link) === userid);
    if (found.length > 1) {
      // Two accounts claim the same WeCom user: touching either could hit the wrong person.
      throw new MailboxError(`LDAP: ${found.length} accounts share one link`, false, 'AmbiguousEmployeeId', undefined, 'ambiguous');
    }
    return found[0] ? toAccount(this.profile, found[0]) : undefined;
  }

  async get(id: string): Promise<MailboxAccount | undefined> {
    const entry = await this.entryOf(id);
    return entry ? toAccount(this.profile, entry) : undefined;
  }

  /** The live entry of an account id (undefined: none, or not a user any more). */
  private async entryOf(id: string): Promise<LdapEntry | undefined> {
    requireConfigured(this.profile);
    const byId = idFilter(this.profile, id);
    if (!byId) return undefined;
    const entries = await this.client.search('search by id', this.profile.baseDn, this.accountSearch(this.users(byId)));
    return entries[0];
  }

  async listPage(cursor?: string): Promise<MailboxPage> {
    requireConfigured(this.profile);
    let token: string;
    let listing: Listing | undefined;
    if (cursor) {
      const m = /^l1\.([0-9a-f-]{36})\.(\d+)$/.exec(cursor);
      token = m?.[1] ?? '';
      listing = this.listings.get(token);
      if (!m || !listing || listing.n !== Number(m[2])) {
        throw new MailboxError('LDAP listing cursor is not valid here (a paged search lives in the connection that started it): start the listing again', false, 'CursorExpired', undefined, 'invalid');
      }
    } else {
      token = randomUUID();
      const pages = this.client.pages('list accounts', this.profile.baseDn, this.accountSearch(this.users()), this.o.pageSize);
      listing = { pages, ahead: await pages.next(), n: 0 };
      this.listings.set(token, listing);
      while (this.listings.size > (this.o.maxListings ?? 4)) {
        const [oldest, l] = this.listings.entries().next().value!;
        this.listings.delete(oldest);
        void l.pages.return(undefined);
      }
    }
    try {
      const page = listing.ahead;
      if (page.done) {
        this.listings.delete(token);
        return { accounts: [] };
      }
      const accounts = page.value.map((e) => toAccount(this.profile, e));
      listing.ahead = await listing.pages.next();
      if (listing.ahead.done) {
        this.listings.delete(token);
        return { accounts };
      }
      listing.n++;
      return { accounts, next: `l1.${token}.${listing.n}` };
    } catch (err) {
      this.listings.delete(token);
      void listing.pages.return(undefined);
      throw err;
    }
  }

  // ------------------------------------------------------------------ writes

  private writable(op: string): void {
    if (!this.o.writes) throw new MailboxError(`LDAP directory is read-only (SYNC_CONFIG.ldap.writes is false): ${op} refused`, false, 'ReadOnly', undefined, 'invalid');
    requireConfigured(this.profile);
  }

  async create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }): Promise<MailboxAccount> {
    this.writable('create');
    const p = this.profile;
    const email = input.email.trim().toLowerCase();
    // LDAP keeps no address unique: look first. Any entry holding it (an alias, a contact) counts.
    const holders = await this.client.search('search by address', p.baseDn, {
      filter: new EqualityFilter({ attribute: p.attributes.email, value: email }),
      attributes: ['1.1'],
      sizeLimit: 1,
    });
    if (holders.length) throw new MailboxError('LDAP create: the address is held by another entry', false, 'AddressTaken', undefined, 'conflict');
    if (p.schema === 'ad' && !this.client.encrypted) {
      throw new MailboxError('AD create needs an encrypted connection (ldaps:// or startTls) to set the initial password', false, 'PlaintextRefused', undefined, 'invalid');
    }
    const dn = newEntryDn(p, email, p.createIn);
    await this.client.add('add entry', dn, toAddAttributes(p, { ...input, email }, this.o.domain, p.schema === 'ad' ? initialPassword() : undefined));
    const back = await this.client.search('read entry', dn, { ...this.accountSearch(this.users()), scope: 'base' });
    if (!back[0]) throw new MailboxError('LDAP create: the new entry is not readable as an account (user filter, ACL)', false, 'NotReadable', undefined, 'unexpected');
    return toAccount(p, back[0]);
  }

  async update(id: string, patch: MailboxAccountInput): Promise<void> {
    this.writable('update');
    const changes = toChanges(this.profile, patch);
    if (changes.length === 0 && patch.enabled === undefined) return;
    const entry = await this.entryOf(id);
    if (!entry) throw notFound();
    if (patch.enabled !== undefined && isDisabled(this.profile, entry) === patch.enabled) changes.push(enabledChange(this.profile, entry, patch.enabled));
    if (changes.length) await this.client.modify('modify entry', entry.dn, changes);
  }

  async disable(id: string): Promise<void> {
    await this.setEnabled(id, false);
  }

  async enable(id: string): Promise<void> {
    await this.setEnabled(id, true);
  }

  /** Idempotent: an account already in that state costs a read, no write. */
  private async setEnabled(id: string, enabled: boolean): Promise<void> {
    this.writable(enabled ? 'enable' : 'disable');
    const entry = await this.entryOf(id);
    if (!entry) throw notFound();
    if (isDisabled(this.profile, entry) !== enabled) return;
    // AD: the read userAccountControl is written back with one bit changed; a concurrent change
    // of another bit in between is overwritten (AD has no compare-and-set on modify).
    await this.client.modify(enabled ? 'enable entry' : 'disable entry', entry.dn, [enabledChange(this.profile, entry, enabled)]);
  }

  async delete(id: string): Promise<void> {
    this.writable('delete');
    const entry = await this.entryOf(id);
    if (!entry) return;
    try {
      await this.client.del('delete entry', entry.dn);
    } catch (err) {
      if (!(err instanceof MailboxError) || err.kind !== 'not-found') throw err;
    }
  }

  // ------------------------------------------------------------------ groups (capability off)

  async ensureGroup(): Promise<string> {
    throw new MailboxError('LDAP adapter has no department groups (capability groups: false)', false, 'Unsupported', undefined, 'invalid');
  }

  async setGroupMembership(): Promise<void> {
    throw new MailboxError('LDAP adapter has no department groups (capability groups: false)', false, 'Unsupported', undefined, 'invalid');
  }

  /** Close the open listings and the shared connection (tests, the local stack on shutdown). */
  async close(): Promise<void> {
    for (const l of this.listings.values()) await l.pages.return(undefined).catch(() => undefined);
    this.listings.clear();
    await this.client.close();
  }
}
