/**
 * In-memory fakes of the PORTS the sync engine depends on (WecomContacts, MailboxDirectory,
 * StateStore, AuditLog, FieldCipher) — small, faithful to each port's documented contract
 * (version conflicts, claims, 60111-as-undefined, employeeId ownership), and recording every
 * write so tests can count them. Not fakes of any module's internals.
 */
import { createHash } from 'node:crypto';
import { MailboxError, type MailboxAccount, type MailboxAccountInput, type MailboxDirectory, type MailboxPage } from '../../functions/mailbox/directory';
import { canonicalPhone } from '../../functions/mailbox/phone';
import type { FieldCipher, FieldLocation, SealedValue } from '../../functions/security/ports';
import {
  VersionConflictError,
  type AuditInput,
  type AuditLog,
  type AuditRecord,
  type StateRecord,
  type StateStore,
} from '../../functions/store/ports';
import type { Subject } from '../../functions/core/model';
import { WecomApiError, type WecomContacts, type WecomDepartment, type WecomUser, type WecomUserInput } from '../../functions/wecom/contacts';

const clone = <T>(v: T): T => structuredClone(v);

export class FakeWecom implements WecomContacts {
  users = new Map<string, WecomUser>();
  departments: WecomDepartment[] = [{ id: 1, name: 'Root', parentid: 0 }];
  writes: Array<{ op: string; userid: string; patch?: unknown }> = [];
  tags = new Map<number, Set<string>>();

  async getUser(userid: string) {
    const u = this.users.get(userid);
    return u ? clone(u) : undefined;
  }
  async listUserIds() {
    return [...this.users.keys()];
  }
  /** user/list_id pages of `listPageSize` (WeCom: up to 10,000), the cursor an offset. */
  listPageSize = 1000;
  async listUserIdPage(cursor?: string) {
    const from = Number(cursor ?? 0);
    const ids = [...this.users.keys()].slice(from, from + this.listPageSize);
    return from + this.listPageSize < this.users.size ? { ids, next: String(from + this.listPageSize) } : { ids };
  }
  async listDepartments() {
    return clone(this.departments);
  }
  async updateUser(userid: string, patch: Partial<Omit<WecomUser, 'userid'>>) {
    const u = this.users.get(userid);
    if (!u) throw Object.assign(new Error('userid not found'), { errcode: 60111 });
    this.writes.push({ op: 'update', userid, patch: clone(patch) });
    Object.assign(u, patch);
  }
  async deleteUser(userid: string) {
    this.writes.push({ op: 'delete', userid });
    this.users.delete(userid);
  }
  async createUser(user: WecomUserInput) {
    // As WeCom: the userid, mobile and email are unique (60102 / 60104 / 60106).
    if (this.users.has(user.userid)) throw Object.assign(new WecomApiError('WeCom user/create failed: errcode 60102 (userid exists)', 60102, false), {});
    if (user.mobile && [...this.users.values()].some((u) => u.mobile === user.mobile)) throw new WecomApiError('WeCom user/create failed: errcode 60104 (mobile exists)', 60104, false);
    if (user.email && [...this.users.values()].some((u) => u.email === user.email)) throw new WecomApiError('WeCom user/create failed: errcode 60106 (email exists)', 60106, false);
    this.writes.push({ op: 'create', userid: user.userid, patch: clone(user) });
    this.users.set(user.userid, { ...clone(user), main_department: user.main_department ?? user.department[0], status: 4 });
  }
  async createDepartment(name: string, parentId: number) {
    const id = Math.max(0, ...this.departments.map((d) => d.id)) + 1;
    this.writes.push({ op: 'createDepartment', userid: '', patch: { name, parentId, id } });
    this.departments.push({ id, name, parentid: parentId });
    return id;
  }
  async addTagUsers(tagId: number, userids: string[]) {
    this.writes.push({ op: 'tag', userid: userids.join(','), patch: { tagId } });
    const set = this.tags.get(tagId) ?? new Set();
    for (const u of userids) set.add(u);
    this.tags.set(tagId, set);
  }
}

/**
 * The mailbox port as the engine's tests see it. It keeps the contract the real adapters keep
 * (test/mailbox/conformance.ts runs on it): exact links and `ambiguous` on two, canonical
 * read-back (E.164 phones), writes to accounts that are not live are `not-found`, delete is
 * idempotent, a soft-deleted account holds its address, restore is idempotent and refuses a
 * taken address, a group cannot get a member that does not exist, listings page.
 */
export class FakeMailbox implements MailboxDirectory {
  readonly provider = 'graph';
  /** A read-only directory (LDAP without writes): the engine must plan no write; any that reaches here is recorded all the same. */
  readOnly = false;
  accounts = new Map<string, MailboxAccount>();
  groups = new Map<string, { id: string; path: string; members: Set<string> }>();
  writes: Array<{ op: string; id?: string; patch?: unknown }> = [];
  /** Make the next N create() calls fail with this error. */
  failCreate: { error: Error; times: number; employeeId?: string } | undefined;
  /** This share of calls is refused as throttled, before anything is applied (a throttling storm). */
  failRate = 0;
  private seq = 0;
  private rand = 7;
  private readonly pageSize: number;

  constructor(opts: { pageSize?: number } = {}) {
    this.pageSize = opts.pageSize ?? Number.POSITIVE_INFINITY;
  }

  async findByEmployeeId(userid: string) {
    this.weather();
    const found = [...this.accounts.values()].filter((x) => x.employeeId === userid && !x.deleted);
    if (found.length > 1) throw new MailboxError('fake: accounts share one employeeId', false, 'AmbiguousEmployeeId', undefined, 'ambiguous');
    return found[0] ? read(found[0]) : undefined;
  }
  async get(id: string) {
    this.weather();
    const a = this.accounts.get(id);
    return a ? read(a) : undefined;
  }
  async create(input: MailboxAccountInput & { employeeId: string; email: string; displayName: string }) {
    this.weather();
    if (this.failCreate && this.failCreate.times > 0 && (!this.failCreate.employeeId || this.failCreate.employeeId === input.employeeId)) {
      this.failCreate.times--;
      throw this.failCreate.error;
    }
    const email = input.email.trim().toLowerCase();
    // As in Graph, a soft-deleted account still holds its address (UPN) until it is purged.
    if (this.holder(email)) throw new MailboxError('Graph POST /users failed: 400 Request_BadRequest/ObjectConflict', false, 'Request_BadRequest', undefined, 'conflict');
    const id = `acc-${++this.seq}`;
    const account: MailboxAccount = { enabled: true, ...input, email, id } as MailboxAccount;
    this.accounts.set(id, account);
    this.writes.push({ op: 'create', id, patch: clone(input) });
    return clone(account);
  }
  async update(id: string, patch: MailboxAccountInput) {
    this.weather();
    if (patch.displayName === null) throw new MailboxError('fake: displayName cannot be cleared', false, 'InvalidInput', undefined, 'invalid');
    const a = this.live(id);
    if (Object.keys(patch).length === 0) return; // nothing to send, as in the adapters
    this.writes.push({ op: 'update', id, patch: clone(patch) });
    Object.assign(a, patch.email ? { ...patch, email: patch.email.toLowerCase() } : patch);
  }
  async disable(id: string) {
    this.weather();
    const a = this.live(id);
    this.writes.push({ op: 'disable', id });
    a.enabled = false;
  }
  async enable(id: string) {
    this.weather();
    const a = this.live(id);
    this.writes.push({ op: 'enable', id });
    a.enabled = true;
  }
  async delete(id: string) {
    this.weather();
    const a = this.accounts.get(id);
    if (!a || a.deleted) return; // already gone: done
    this.writes.push({ op: 'delete', id });
    a.deleted = true;
    // Graph drops a deleted user's group memberships.
    for (const g of this.groups.values()) g.members.delete(id);
  }
  async listPage(cursor?: string): Promise<MailboxPage> {
    this.weather();
    // Like Graph's /users: soft-deleted accounts are not listed.
    const live = [...this.accounts.values()].filter((a) => !a.deleted);
    const from = Number(cursor ?? 0);
    const accounts = live.slice(from, from + this.pageSize).map(read);
    return from + this.pageSize < live.length ? { accounts, next: String(from + this.pageSize) } : { accounts };
  }
  async findDeleted(userid: string) {
    this.weather();
    const found = [...this.accounts.values()].filter((a) => a.deleted && a.employeeId === userid);
    const newest = found.at(-1);
    return newest ? read(newest) : undefined;
  }
  /** Group ids the account is a direct member of (lifecycle.mailboxScope.groupIds). */
  async memberOf(accountId: string) {
    this.weather();
    const a = this.accounts.get(accountId);
    if (!a || a.deleted) throw new MailboxError('fake: account not found', false, 'Request_ResourceNotFound', undefined, 'not-found');
    return [...this.groups.values()].filter((g) => g.members.has(accountId)).map((g) => g.id);
  }
  async restore(id: string) {
    this.weather();
    const a = this.accounts.get(id);
    if (!a) throw new MailboxError('not found in deleted items', false, 'Request_ResourceNotFound', undefined, 'not-found');
    if (!a.deleted) return read(a); // restored before (a retry whose answer was lost)
    if (a.email && this.holder(a.email, id)) throw new MailboxError('fake restore: ObjectConflict', false, 'Request_BadRequest', undefined, 'conflict');
    this.writes.push({ op: 'restore', id });
    delete a.deleted;
    return read(a);
  }
  async ensureGroup(path: string) {
    this.weather();
    for (const g of this.groups.values()) if (g.path === path) return g.id;
    const id = `grp-${this.groups.size + 1}`;
    this.groups.set(id, { id, path, members: new Set() });
    this.writes.push({ op: 'ensureGroup', id, patch: path });
    return id;
  }
  async setGroupMembership(accountId: string, from: string[], to: string[]) {
    this.weather();
    if (to.length) this.live(accountId);
    this.writes.push({ op: 'membership', id: accountId, patch: { from, to } });
    for (const g of from) if (!to.includes(g)) this.groups.get(g)?.members.delete(accountId);
    for (const g of to) this.groups.get(g)?.members.add(accountId);
  }
  /** Admin-side changes (not counted as our writes), in any format the console takes. */
  admin(id: string, patch: Partial<MailboxAccount>) {
    Object.assign(this.must(id), patch);
  }
  /** An account an administrator made (no link unless given; not counted as our write). */
  seed(a: Partial<MailboxAccount> & { email: string }): MailboxAccount {
    const account: MailboxAccount = { enabled: true, ...a, email: a.email.toLowerCase(), id: a.id ?? `acc-${++this.seq}` };
    this.accounts.set(account.id, account);
    return clone(account);
  }
  private must(id: string) {
    const a = this.accounts.get(id);
    if (!a) throw new MailboxError('fake: account not found', false, 'Request_ResourceNotFound', undefined, 'not-found');
    return a;
  }
  /** Writes need the account live: a soft-deleted one is not found, as in Graph's /users. */
  private live(id: string) {
    const a = this.must(id);
    if (a.deleted) throw new MailboxError('fake: account not found', false, 'Request_ResourceNotFound', undefined, 'not-found');
    return a;
  }
  /** Does another account (live or soft-deleted) hold this address? */
  private holder(email: string, exceptId?: string) {
    return [...this.accounts.values()].some((a) => a.id !== exceptId && a.email === email.toLowerCase() && (exceptId === undefined || !a.deleted));
  }
  /** A throttling storm: refuse before applying anything. */
  private weather() {
    if (this.failRate <= 0) return;
    this.rand = (this.rand * 16807) % 2147483647;
    if (this.rand / 2147483647 < this.failRate) throw new MailboxError('fake: 429 TooManyRequests', true, 'TooManyRequests', 1000, 'throttled');
  }
  groupsOf(accountId: string): string[] {
    return [...this.groups.values()].filter((g) => g.members.has(accountId)).map((g) => g.path).sort();
  }
}

/** An account as the port reads it back: canonical phones; deleted means not enabled. */
function read(a: MailboxAccount): MailboxAccount {
  const out = clone(a);
  if (out.mobile !== undefined) out.mobile = canonicalPhone(out.mobile);
  if (out.telephone !== undefined) out.telephone = canonicalPhone(out.telephone);
  if (out.deleted) out.enabled = false;
  return out;
}

export class FakeState implements StateStore {
  records = new Map<string, StateRecord>();
  claims = new Map<string, Subject>();
  puts = 0;
  /** Throw from put() once, after N more successful puts (crash simulation). */
  crashAfterPuts: number | undefined;

  async get(subject: Subject) {
    const r = this.records.get(subject);
    return r ? clone(r) : undefined;
  }
  async put(record: StateRecord) {
    if (this.crashAfterPuts !== undefined) {
      if (this.crashAfterPuts === 0) {
        this.crashAfterPuts = undefined;
        throw new Error('simulated crash before the state write');
      }
      this.crashAfterPuts--;
    }
    const cur = this.records.get(record.subject);
    if ((cur?.version ?? 0) !== record.version) throw new VersionConflictError(record.subject);
    const next = clone({ ...record, version: record.version + 1 });
    for (const k of Object.keys(next) as Array<keyof StateRecord>) if (next[k] === undefined) delete next[k];
    this.records.set(record.subject, next);
    this.puts++;
    return clone(next);
  }
  async findByTargetId(provider: string, targetId: string) {
    const r = [...this.records.values()].find((x) => x.provider === provider && x.targetId === targetId);
    return r ? clone(r) : undefined;
  }
  async listPage(kind: 'user' | 'party') {
    return { records: [...this.records.values()].filter((r) => r.subject.startsWith(`${kind}:`)).map(clone) };
  }
  async listDueForDeletion(now: Date) {
    return [...this.records.values()].filter((r) => r.deleteAfter && Date.parse(r.deleteAfter) <= now.getTime()).map(clone);
  }
  async claimUnique(field: string, hash: string, subject: Subject) {
    const key = `${field}#${hash}`;
    const owner = this.claims.get(key);
    if (owner) return owner;
    this.claims.set(key, subject);
    return subject;
  }
  async releaseUnique(field: string, hash: string, subject: Subject) {
    const key = `${field}#${hash}`;
    if (this.claims.get(key) === subject) this.claims.delete(key);
  }
  async listHeld() {
    return { records: [...this.records.values()].filter((r) => r.held).map(clone) };
  }
  async countManaged() {
    return [...this.records.values()].filter((r) => r.subject.startsWith('user:') && r.status !== 'deleted').length;
  }
  /** The guard's window: subject → time admitted. */
  window: Array<{ s: string; t: number }> = [];
  async admitDestructive(subject: Subject, now: Date, windowMs: number, limit: number) {
    this.window = this.window.filter((x) => x.t > now.getTime() - windowMs);
    if (this.window.some((x) => x.s === subject)) return { admitted: true, inWindow: this.window.length };
    if (this.window.length >= limit) return { admitted: false, inWindow: this.window.length };
    this.window.push({ s: subject, t: now.getTime() });
    return { admitted: true, inWindow: this.window.length };
  }
}

export class FakeAudit implements AuditLog {
  records: AuditRecord[] = [];
  async append(input: AuditInput) {
    const r: AuditRecord = {
      subject: input.subject,
      operator: input.operator,
      action: input.action,
      outcome: input.outcome,
      seq: this.records.filter((x) => x.subject === input.subject).length + 1,
      at: (input.at ?? new Date()).toISOString(),
      ...(input.target ? { target: input.target } : {}),
      ...(input.changes ? { changes: clone(input.changes) } : {}),
      ...(input.reason ? { reason: input.reason } : {}),
      ...(input.eventId ? { eventId: input.eventId } : {}),
      hash: '',
      prevHash: '',
    };
    this.records.push(r);
    return r;
  }
  async bySubject(subject: string) {
    return this.records.filter((r) => r.subject === subject);
  }
  async byTime() {
    return [...this.records];
  }
  async verify() {
    return { ok: true, problems: [] };
  }
  actions(subject?: string) {
    return this.records.filter((r) => !subject || r.subject === subject).map((r) => `${r.action}:${r.target ?? '-'}:${r.outcome}`);
  }
}

/** Deterministic keyed hash; "ciphertext" is the value XOR-ed and base64url'd, bound to the location. */
export class FakeCipher implements FieldCipher {
  seals = 0;
  async seal(value: string, where: FieldLocation): Promise<SealedValue> {
    this.seals++;
    const bound = `${where.table}|${where.subject}|${where.field}|${value}`;
    return { ct: `v1.${Buffer.from(Buffer.from(bound).map((b) => b ^ 0x5a)).toString('base64url')}`, h: await this.hash(where.field, value) };
  }
  async open(sealed: SealedValue | string, where: FieldLocation): Promise<string> {
    const ct = typeof sealed === 'string' ? sealed : sealed.ct;
    const text = Buffer.from(Buffer.from(ct.slice(3), 'base64url').map((b) => b ^ 0x5a)).toString();
    const prefix = `${where.table}|${where.subject}|${where.field}|`;
    if (!text.startsWith(prefix)) throw new Error('sealed value belongs elsewhere');
    return text.slice(prefix.length);
  }
  async hash(field: string, value: string) {
    return createHash('sha256').update(`k|${field}|${value}`).digest('hex');
  }
}
