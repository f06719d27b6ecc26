/**
 * The simulated tenant: its collections (journaled when persisted: ../journal.ts), the change
 * log the delta query reads, and the indexes the handlers look things up by. Every lookup the
 * adapter makes — a user by employeeId, by userPrincipalName, by mail — is an index hit, not a
 * scan of every user, so a tenant of 100,000 users costs the same per request as one of 10.
 */
import { randomUUID } from 'node:crypto';
import { SimJournal } from '../journal';

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
  /** 'Member' (default on create) or 'Guest' (invited B2B users). Older journals lack it: read as Member. */
  userType?: 'Member' | 'Guest';
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

/** The properties `$filter` may name on users (Graph supports eq on each). */
export const FILTERABLE = ['employeeId', 'userPrincipalName', 'mail', 'mailNickname', 'displayName'] as const;
type Filterable = (typeof FILTERABLE)[number];

/**
 * A Map of users that keeps an index per filterable property (values compared lower-case, as
 * Graph's filter does). Everything that writes goes through set / delete / clear — the
 * handlers, and tests that seed or move users directly — so the indexes cannot drift. An
 * object changed in place must be stored again with set(), as the journal requires anyway;
 * its old index keys are remembered per id, not recomputed from the changed object.
 */
export class UserTable implements Map<string, GraphUser> {
  private readonly index = new Map<Filterable, Map<string, Set<string>>>(FILTERABLE.map((p) => [p, new Map()]));
  private readonly indexed = new Map<string, Array<[Filterable, string]>>();

  constructor(
    /** The collection underneath: a journaled Map when persisted, a plain Map otherwise. */
    readonly inner: Map<string, GraphUser>,
  ) {
    for (const [id, u] of inner) this.add(id, u);
  }

  /** Users whose `prop` equals `value`, case-insensitively, in no particular order. */
  find(prop: string, value: string): GraphUser[] {
    const ids = this.index.get(prop as Filterable)?.get(value.toLowerCase());
    return ids ? [...ids].map((id) => this.inner.get(id)!).filter(Boolean) : [];
  }

  get size(): number {
    return this.inner.size;
  }
  get(id: string): GraphUser | undefined {
    return this.inner.get(id);
  }
  has(id: string): boolean {
    return this.inner.has(id);
  }
  set(id: string, u: GraphUser): this {
    this.remove(id);
    this.inner.set(id, u);
    this.add(id, u);
    return this;
  }
  delete(id: string): boolean {
    this.remove(id);
    return this.inner.delete(id);
  }
  clear(): void {
    this.inner.clear();
    this.indexed.clear();
    for (const m of this.index.values()) m.clear();
  }
  forEach(fn: (value: GraphUser, key: string, map: Map<string, GraphUser>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.inner) fn.call(thisArg, v, k, this);
  }
  keys(): MapIterator<string> {
    return this.inner.keys();
  }
  values(): MapIterator<GraphUser> {
    return this.inner.values();
  }
  entries(): MapIterator<[string, GraphUser]> {
    return this.inner.entries();
  }
  [Symbol.iterator](): MapIterator<[string, GraphUser]> {
    return this.inner[Symbol.iterator]();
  }
  get [Symbol.toStringTag](): string {
    return 'UserTable';
  }

  private add(id: string, u: GraphUser): void {
    const keys: Array<[Filterable, string]> = [];
    for (const p of FILTERABLE) {
      const v = u[p];
      if (typeof v !== 'string' || !v) continue;
      const key = v.toLowerCase();
      const m = this.index.get(p)!;
      let ids = m.get(key);
      if (!ids) m.set(key, (ids = new Set()));
      ids.add(id);
      keys.push([p, key]);
    }
    this.indexed.set(id, keys);
  }

  private remove(id: string): void {
    for (const [p, key] of this.indexed.get(id) ?? []) {
      const m = this.index.get(p)!;
      const ids = m.get(key);
      ids?.delete(id);
      if (ids && !ids.size) m.delete(key);
    }
    this.indexed.delete(id);
  }
}

export interface GraphState {
  users: UserTable;
  deletedItems: UserTable;
  groups: Map<string, GraphGroup>;
  subscriptions: Map<string, SimSubscription>;
  /** seq → the user changed at that step (seq increases on every user mutation, never trimmed). */
  changeLog: Map<number, string>;
  /** Permanently deleted ids (delta reports them `@removed: deleted`). */
  hardDeleted: Set<string>;
  /** The current step of the change log. */
  seq(): number;
  /** Record a change to a user (for delta). */
  logChange(id: string): void;
  /** The delta token epoch (bumped by expireDeltaTokens). */
  deltaEpoch(): number;
  expireDeltaTokens(): void;
  /** Is the UPN held by a live or soft-deleted user other than `exceptId`? */
  upnTaken(upn: string, exceptId?: string): boolean;
}

export function openState(persistDir: string | undefined): GraphState {
  const journal = new SimJournal(persistDir, 'graph');
  const users = journal.map<string, GraphUser>('users');
  const deletedItems = journal.map<string, GraphUser>('deletedItems');
  const groups = journal.map<string, GraphGroup>('groups', { setField: 'members' });
  const subscriptions = journal.map<string, SimSubscription>('subscriptions');
  const changeLog = journal.map<number, string>('changeLog');
  const hardDeleted = journal.set<string>('hardDeleted');
  const meta = journal.map<string, number>('meta');
  journal.load();
  let seq = changeLog.size; // seq runs 1, 2, 3… and the log is never trimmed
  let epoch = meta.get('deltaEpoch') ?? 1;
  const live = new UserTable(users);
  const deleted = new UserTable(deletedItems);
  return {
    users: live,
    deletedItems: deleted,
    groups,
    subscriptions,
    changeLog,
    hardDeleted,
    seq: () => seq,
    logChange(id) {
      seq += 1;
      changeLog.set(seq, id);
    },
    deltaEpoch: () => epoch,
    expireDeltaTokens() {
      epoch += 1;
      meta.set('deltaEpoch', epoch);
    },
    upnTaken(upn, exceptId) {
      return [...live.find('userPrincipalName', upn), ...deleted.find('userPrincipalName', upn)].some((u) => u.id !== exceptId);
    },
  };
}

/** Every user property the sim returns (a create's or restore's answer). */
export const ALL_USER_PROPS = 'accountEnabled,displayName,mailNickname,userPrincipalName,mail,mobilePhone,businessPhones,jobTitle,department,employeeId,usageLocation,userType';

/** A user as Graph shows it: `$select`ed, or Graph's default projection without one. */
export function selectUser(u: GraphUser, select?: string): Record<string, unknown> {
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
    userType: u.userType ?? 'Member',
    ...(u.deletedDateTime ? { deletedDateTime: u.deletedDateTime } : {}),
  };
  if (!select) {
    // Graph's default user projection does not include employeeId/department/accountEnabled.
    const { employeeId: _e, department: _d, accountEnabled: _a, usageLocation: _u, mailNickname: _m, userType: _t, ...dflt } = full;
    return dflt;
  }
  const out: Record<string, unknown> = { id: u.id };
  for (const k of select.split(',').map((s) => s.trim())) if (k in full) out[k] = full[k];
  return out;
}

/** A deleted item as Graph shows one: typed, with its deletedDateTime whatever the $select. */
export function deletedView(u: GraphUser, select?: string): Record<string, unknown> {
  return { '@odata.type': '#microsoft.graph.user', ...selectUser(u, select), deletedDateTime: u.deletedDateTime };
}

/** A user seeded directly (tests, demos): Graph's defaults for what is not given. */
export function newUser(p: Partial<GraphUser> & { userPrincipalName: string; displayName: string }): GraphUser {
  return {
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
    userType: p.userType ?? 'Member',
    passwordSet: true,
  };
}
