/**
 * The simulated Workspace account: live users, recently deleted users, watch channels — each
 * journaled when persisted (../journal.ts) — and the indexes the handlers look users up by
 * (primary address, externalIds values), so a search costs the same with 100,000 users as
 * with 10.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { SimJournal } from '../journal';

export interface SimExternalId {
  type: string;
  customType?: string;
  value: string;
}

export interface GoogleUser {
  kind: 'admin#directory#user';
  id: string;
  etag: string;
  primaryEmail: string;
  name: { givenName: string; familyName: string; fullName: string; displayName?: string };
  suspended: boolean;
  archived: boolean;
  isAdmin: boolean;
  isGuestUser?: boolean;
  externalIds?: SimExternalId[];
  phones?: Array<{ value: string; type: string; primary?: boolean; customType?: string }>;
  organizations?: Array<Record<string, unknown>>;
  orgUnitPath: string;
  includeInGlobalAddressList: boolean;
  creationTime: string;
  customerId: string;
  deletionTime?: string;
  /** Kept only to prove one was sent; never returned. */
  passwordSet: boolean;
}

export interface SimChannel {
  id: string;
  resourceId: string;
  address: string;
  token: string | null;
  /** The watched event; null = every event (not documented by Google: the simulator's choice). */
  event: string | null;
  expiration: number;
  messageNumber: number;
}

/** A Map of users with an index on the primary address and one on externalIds values (lower-case, as Google's search). */
export class UserTable {
  private readonly byEmail = new Map<string, string>();
  private readonly byExternalId = new Map<string, Set<string>>();

  constructor(readonly inner: Map<string, GoogleUser>) {
    for (const u of inner.values()) this.index(u);
  }

  get size(): number {
    return this.inner.size;
  }
  get(id: string): GoogleUser | undefined {
    return this.inner.get(id);
  }
  values(): IterableIterator<GoogleUser> {
    return this.inner.values();
  }
  /** Store (a new object, or the same one changed: indexes are rebuilt for it). */
  set(u: GoogleUser): void {
    this.unindex(u.id);
    this.inner.set(u.id, u);
    this.index(u);
  }
  delete(id: string): boolean {
    this.unindex(id);
    return this.inner.delete(id);
  }
  byPrimaryEmail(email: string): GoogleUser | undefined {
    const id = this.byEmail.get(email.toLowerCase());
    return id ? this.inner.get(id) : undefined;
  }
  withExternalId(value: string): GoogleUser[] {
    return [...(this.byExternalId.get(value.toLowerCase()) ?? [])].map((id) => this.inner.get(id)!).filter(Boolean);
  }

  private readonly indexed = new Map<string, { email: string; ext: string[] }>();
  private index(u: GoogleUser): void {
    const email = u.primaryEmail.toLowerCase();
    this.byEmail.set(email, u.id);
    const ext = [...new Set((u.externalIds ?? []).map((e) => String(e.value).toLowerCase()))];
    for (const v of ext) {
      let ids = this.byExternalId.get(v);
      if (!ids) this.byExternalId.set(v, (ids = new Set()));
      ids.add(u.id);
    }
    this.indexed.set(u.id, { email, ext });
  }
  private unindex(id: string): void {
    const was = this.indexed.get(id);
    if (!was) return;
    if (this.byEmail.get(was.email) === id) this.byEmail.delete(was.email);
    for (const v of was.ext) {
      const ids = this.byExternalId.get(v);
      ids?.delete(id);
      if (ids && !ids.size) this.byExternalId.delete(v);
    }
    this.indexed.delete(id);
  }
}

export interface GoogleState {
  users: UserTable;
  deleted: UserTable;
  channels: Map<string, SimChannel>;
}

export function openState(persistDir: string | undefined): GoogleState {
  const journal = new SimJournal(persistDir, 'google');
  const users = journal.map<string, GoogleUser>('users');
  const deleted = journal.map<string, GoogleUser>('deleted');
  const channels = journal.map<string, SimChannel>('channels');
  journal.load();
  return { users: new UserTable(users), deleted: new UserTable(deleted), channels };
}

/** Google user ids: 21 decimal digits. */
export function newUserId(): string {
  return '1' + Array.from({ length: 20 }, () => randomInt(10)).join('');
}

export function newEtag(): string {
  return `"${randomBytes(18).toString('base64url')}"`;
}

/** A user seeded directly (tests, demos): Google's defaults for what is not given. */
export function newUser(p: Partial<GoogleUser> & { primaryEmail: string }, customerId: string, now: Date): GoogleUser {
  const local = p.primaryEmail.split('@')[0]!;
  const name = p.name ?? { givenName: local, familyName: local, fullName: `${local} ${local}` };
  return {
    kind: 'admin#directory#user',
    id: p.id ?? newUserId(),
    etag: newEtag(),
    primaryEmail: p.primaryEmail.toLowerCase(),
    name,
    suspended: p.suspended ?? false,
    archived: p.archived ?? false,
    isAdmin: p.isAdmin ?? false,
    ...(p.isGuestUser ? { isGuestUser: true } : {}),
    ...(p.externalIds ? { externalIds: p.externalIds } : {}),
    ...(p.phones ? { phones: p.phones } : {}),
    ...(p.organizations ? { organizations: p.organizations } : {}),
    orgUnitPath: p.orgUnitPath ?? '/',
    includeInGlobalAddressList: p.includeInGlobalAddressList ?? true,
    creationTime: now.toISOString(),
    customerId,
    passwordSet: true,
  };
}

/** A user as the API shows it (the password marker stripped), optionally projected by `fields=users(a,b)`. */
export function view(u: GoogleUser, fields?: string[]): Record<string, unknown> {
  const { passwordSet: _p, ...shown } = u;
  if (!fields) return shown;
  const out: Record<string, unknown> = {};
  for (const f of fields) if (f in shown) out[f] = (shown as Record<string, unknown>)[f];
  return out;
}
