/**
 * Reconcile-all as a job that runs in chunks: every step reads one page (of WeCom userids, of
 * mailbox accounts, of a scratch partition), writes what it learned to the run store
 * (store/run-store.ts) under keys that depend only on the data, and then advances the
 * checkpoint with a versioned write. So:
 *
 * - a chunk may stop between any two steps (its deadline) and the next one resumes from the
 *   checkpoint; memory holds one page and its neighbours, never the directory;
 * - a chunk killed between its writes and its checkpoint is redone by the next one: the same
 *   keys are written again (an overwrite), counters only move with the checkpoint, so nothing
 *   is counted or reported twice;
 * - two executions of one run cannot both advance it: the loser's checkpoint write fails
 *   (VersionConflictError) and it stops.
 *
 * Phases: departments → wecom (user/list_id pages, user/get per id) → mailbox (listPage) →
 * duplicates (keyed-hash partitions, grouped) → join (per shard, the WeCom, mailbox, birth and
 * shared-field partitions merged in key order: the single run's classification) → plan (repair:
 * the engine's dry run per subject, destructive ones counted over the whole run) → apply (only
 * now, with the guard decided on the whole count) → report (findings read back in class order).
 */
import { randomUUID } from 'node:crypto';
import { MailboxError, type MailboxAccount } from '../../mailbox/directory';
import type { SyncMessage } from '../../queue/messages';
import { log } from '../../core/log';
import { maskEmail, maskPhone, redactText } from '../../core/redact';
import { userSubject } from '../../core/model';
import type { AuditInput, AuditLog, AuditRecord } from '../../store/ports';
import type { RunItem, RunStore } from '../../store/run-store';
import { compareKeys } from '../../store/run-store';
import type { EngineDeps, SyncOutcome } from '../context';
import { memberState } from '../decide';
import { deriveUserid, outOfScope as accountOutOfScope } from '../birth';
import { syncSubject } from '../engine';
import { normalizeMailboxAccount } from '../normalize';
import type { DepartmentTree } from '../departments';
import {
  DRIFT_CLASSES,
  INFORMATIONAL,
  REPAIRABLE,
  reportCsv,
  reportJson,
  reportName,
  type DriftClass,
  type Finding,
  type GuardResult,
  type ReconcileReport,
  type ReportSink,
} from '../report';
import { comparePerson, desiredContact, gateReason, unmappedDepartment, type Add } from './classify';
import { afterGroup, groupOf, JOB_SK, keyPart, part, SEP, shardOf } from './keys';
import { storeContact, type AccountRecord, type BirthRecord, type HashRecord, type WecomRecord } from './records';

export interface ReconcileProgress {
  phase: 'wecom' | 'mailbox' | 'repair';
  done: number;
  total?: number;
}

export interface ReconcileDeps extends EngineDeps {
  /** Where the CSV/JSON report goes; none → the report is only returned. */
  reports?: ReportSink;
  /** Concurrent WeCom user/get calls (default 16: far below WeCom's 10,000/min per API once latency is counted). */
  concurrency?: number;
  /** Concurrent engine runs in a repair (default 4). */
  repairConcurrency?: number;
  progress?: (p: ReconcileProgress) => void;
  /** The run's scratch space (store/run-store.ts); none → in memory (a run in one process). */
  runStore?: RunStore;
  /** Items per step (default 500) and shards of the scratch partitions (default 16). */
  chunking?: { pageSize?: number; shards?: number };
}

export interface ReconcileOptions {
  /** Apply the differences through the engine (dry run unless `apply`). */
  repair?: boolean;
  /** Really write (repair only). Default false: the engine runs with dryRun, audited 'dry-run'. */
  apply?: boolean;
  /** An operator confirmed destructive actions above the deletion guard. */
  confirm?: boolean;
  /** 'reconcile' (schedule) or 'cli:<user>'. */
  operator?: string;
}

export interface ChunkOptions extends ReconcileOptions {
  /** Resume this run (from its checkpoint); absent → start a new one. Its options are the run's, not these. */
  runId?: string;
  /** Epoch ms: no new step starts after it (at least one step runs, so every chunk makes progress). */
  deadlineMs?: number;
}

export interface ChunkResult {
  runId: string;
  /** The finished report, when this chunk finished the run. */
  report?: ReconcileReport;
  /** The phase the run stopped in (done when finished). */
  phase: Phase;
  /** Steps this chunk made, and the run's chunks so far. */
  steps: number;
  chunks: number;
  /** Most person records (WeCom members, accounts, scratch items) this chunk held at once. */
  maxHeld: number;
}

/** The subject reconcile runs are audited under. */
export const RECONCILE_SUBJECT = 'reconcile';

type Phase = 'departments' | 'wecom' | 'mailbox' | 'duplicates' | 'join' | 'plan' | 'apply' | 'report' | 'done';

/** The checkpoint: everything a chunk needs to resume, small (no person in it). */
export interface JobState {
  v: 1;
  runId: string;
  startedAt: string;
  mode: ReconcileReport['mode'];
  operator: string;
  confirm: boolean;
  shards: number;
  phase: Phase;
  /** Phase position: list cursors and offsets, or a shard and the last key done. */
  at: { cursor?: string; offset?: number; shard?: number; field?: 'mobile' | 'email'; after?: string };
  counts: { wecomPeople: number; mailboxAccounts: number; managedAccounts: number; departments: number; inSync: number; subjects: number; done: number };
  /** Unmapped department id → members carrying it (a department count, not a person list). */
  unmapped: Record<string, number>;
  /** Departments already reported unmapped (from the tree). */
  unmappedReported: number[];
  destructive: number;
  guard?: GuardResult;
  chunks: number;
  /**
   * How many times the mailbox listing started over: an adapter whose cursor lives in one
   * process (LDAP's paged search) refuses it in the next chunk (`CursorExpired`), and the
   * listing is read again from the start into fresh partitions (`mailboxRun`).
   */
  mailboxEpoch?: number;
  result?: { drift: number; byClass: Partial<Record<DriftClass, number>>; locations?: string[]; finishedAt: string };
}

/** The deletion guard's limit: the stricter of an absolute count and a share of the managed population. */
export function deletionLimit(config: EngineDeps['config'], managed: number): number {
  const maxDeletes = config.reconcile?.maxDeletes ?? 20;
  const pct = config.reconcile?.maxDeletePercent ?? 5;
  return Math.min(maxDeletes, Math.floor((pct / 100) * managed));
}

/** Disables or deletes a person (either side). The gate's temporary disable during onboarding is not one. */
export function isDestructive(o: SyncOutcome): boolean {
  if (o.actions.includes('delete')) return true;
  return o.actions.includes('disable') && !o.actions.includes('create');
}

/** Run `fn` over `items` with at most `n` in flight; the first error stops the pool. */
export async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
}

/** The run a chunk belongs to was advanced by another execution: this one stops. */
export class RunSupersededError extends Error {
  constructor(readonly runId: string) {
    super(`reconcile run ${runId}: another execution advanced its checkpoint; this one stops`);
    this.name = 'RunSupersededError';
  }
}

/** One finding's place: its class partition (sharded by subject) and a key unique within it. */
function findingKey(run: string, shards: number, f: Finding): { pk: string; sk: string } {
  const disc = f.accountId ?? (f.departmentId !== undefined ? String(f.departmentId) : '');
  return { pk: part.findings(run, f.class, shardOf(f.subject, shards)), sk: `${keyPart(f.subject)}${SEP}${keyPart(disc)}` };
}

interface RepairItem {
  f: Array<{ pk: string; sk: string; finding: Finding }>;
  /** Plan: destructive, failed (why), actions. */
  d?: boolean;
  failed?: string;
  a?: string[];
  /** Applied already (a redone apply does not report the second, empty, run's 'unchanged'). */
  done?: boolean;
}

/**
 * Run one chunk of a reconcile: start a run (no runId) or resume one, make steps until the
 * run is done or the deadline has passed, checkpointing after each.
 */
export async function runReconcileChunk(deps: ReconcileDeps, store: RunStore, opts: ChunkOptions = {}): Promise<ChunkResult> {
  const pageSize = deps.chunking?.pageSize ?? 500;
  let state: JobState;
  let version: number;
  if (opts.runId) {
    const got = await store.getVersioned<JobState>(part.job(opts.runId), JOB_SK);
    if (!got) throw new Error(`reconcile run ${opts.runId}: no checkpoint (expired or never started)`);
    ({ value: state, version } = got);
  } else {
    const started = deps.now();
    state = {
      v: 1,
      runId: `reconcile-${reportName(started)}-${randomUUID().slice(0, 8)}`,
      startedAt: started.toISOString(),
      mode: opts.repair ? (opts.apply ? 'repair' : 'repair-dry-run') : 'report',
      operator: opts.operator ?? 'reconcile',
      confirm: opts.confirm === true,
      shards: deps.chunking?.shards ?? 16,
      phase: 'departments',
      at: {},
      counts: { wecomPeople: 0, mailboxAccounts: 0, managedAccounts: 0, departments: 0, inSync: 0, subjects: 0, done: 0 },
      unmapped: {},
      unmappedReported: [],
      destructive: 0,
      chunks: 0,
    };
    version = 0;
    // A rename arrives as no event at all: always re-read the tree at the start of a run.
    deps.departments.invalidate();
  }
  const run = new Chunk(deps, store, state, pageSize);
  state.chunks++;
  let steps = 0;
  let report: ReconcileReport | undefined;
  while (state.phase !== 'done') {
    if (steps > 0 && opts.deadlineMs !== undefined && Date.now() >= opts.deadlineMs) break;
    const out = await run.step();
    if (out) report = out;
    steps++;
    try {
      version = await store.putVersioned(part.job(state.runId), JOB_SK, state, version);
    } catch (err) {
      if ((err as Error).name === 'VersionConflictError') throw new RunSupersededError(state.runId);
      throw err;
    }
  }
  if (state.phase === 'done' && !report && steps === 0) {
    // Resumed a finished run (a duplicate continuation): nothing to do.
    log.info('reconcile run already finished', { runId: state.runId });
  }
  return { runId: state.runId, ...(report ? { report } : {}), phase: state.phase, steps, chunks: state.chunks, maxHeld: run.maxHeld };
}

/** A listing page of user/list_id: the client's paged call, or (a port without it) one page of everything. */
async function userIdPage(deps: ReconcileDeps, cursor: string | undefined): Promise<{ ids: string[]; next?: string }> {
  if (deps.wecom.listUserIdPage) return deps.wecom.listUserIdPage(cursor);
  return { ids: await deps.wecom.listUserIds() };
}

/** The state of one chunk: the department tree and the current list_id page, read once per chunk. */
class Chunk {
  maxHeld = 0;
  private tree?: { tree: DepartmentTree; raw: Awaited<ReturnType<EngineDeps['wecom']['listDepartments']>>; known: Set<string> };
  private idPage?: { cursor: string | undefined; ids: string[]; next?: string };
  private readonly run: string;
  private readonly shards: number;

  constructor(
    private readonly deps: ReconcileDeps,
    private readonly store: RunStore,
    private readonly s: JobState,
    private readonly pageSize: number,
  ) {
    this.run = s.runId;
    this.shards = s.shards;
  }

  private held(n: number): void {
    if (n > this.maxHeld) this.maxHeld = n;
  }

  private async departments() {
    if (!this.tree) {
      const [tree, raw] = await Promise.all([this.deps.departments.get(), this.deps.wecom.listDepartments()]);
      const known = new Set<string>();
      for (const d of raw) {
        const path = tree.pathOf(d.id);
        if (path !== undefined) known.add(path);
      }
      this.tree = { tree, raw, known };
    }
    return this.tree;
  }

  private findingItem(f: Finding): RunItem {
    return { ...findingKey(this.run, this.shards, f), value: f };
  }

  /** One step of the current phase; returns the report when the run finishes. */
  async step(): Promise<ReconcileReport | undefined> {
    switch (this.s.phase) {
      case 'departments':
        return void (await this.stepDepartments());
      case 'wecom':
        return void (await this.stepWecom());
      case 'mailbox':
        return void (await this.stepMailbox());
      case 'duplicates':
        return void (await this.stepDuplicates());
      case 'join':
        return void (await this.stepJoin());
      case 'plan':
        return void (await this.stepRepair('plan'));
      case 'apply':
        return void (await this.stepRepair('apply'));
      case 'report':
        return this.stepReport();
      default:
        return undefined;
    }
  }

  // -------------------------------------------------------------- departments

  private async stepDepartments(): Promise<void> {
    const { tree, raw } = await this.departments();
    const items: RunItem[] = [];
    for (const d of raw) {
      if (tree.pathOf(d.id) !== undefined) continue;
      items.push(this.findingItem(unmappedDepartment(d, 'department has no path (parent missing from the tree)')));
      this.s.unmappedReported.push(d.id);
    }
    for (const dup of tree.duplicates()) {
      items.push(
        this.findingItem({
          class: 'department-duplicate-path',
          subject: `party:${dup.ids[0]}`,
          departmentId: dup.ids[0]!,
          detail: `path '${dup.path}' is shared by departments ${dup.ids.join(', ')}: members cannot be told apart in the mailbox`,
        }),
      );
    }
    await this.store.put(items);
    this.s.counts.departments = raw.length;
    this.s.phase = 'wecom';
    this.s.at = {};
  }

  // -------------------------------------------------------------- WeCom side

  private async stepWecom(): Promise<void> {
    const { tree } = await this.departments();
    const cursor = this.s.at.cursor;
    if (!this.idPage || this.idPage.cursor !== cursor) {
      const page = await userIdPage(this.deps, cursor);
      // A member in several departments is listed once per department.
      this.idPage = { cursor, ids: [...new Set(page.ids)], ...(page.next ? { next: page.next } : {}) };
    }
    const offset = this.s.at.offset ?? 0;
    const batch = this.idPage.ids.slice(offset, offset + this.pageSize);
    this.held(batch.length + this.idPage.ids.length);
    const items: RunItem[] = [];
    const unmapped: Record<string, number> = {};
    const { config, cipher } = this.deps;
    await pool(batch, this.deps.concurrency ?? 16, async (userid) => {
      const w = await this.deps.wecom.getUser(userid);
      const key = keyPart(userid);
      const shard = shardOf(key, this.shards);
      if (!w) {
        // Deleted between list_id and user/get: counted (as listed), never compared.
        items.push({ pk: part.wecom(this.run, shard), sk: key, value: { gone: 1 } satisfies WecomRecord });
        return;
      }
      const ud: number[] = [];
      for (const id of w.department ?? []) if (tree.pathOf(id) === undefined) ud.push(id);
      for (const id of ud) unmapped[id] = (unmapped[id] ?? 0) + 1;
      const planned = desiredContact(config, tree, w);
      if (planned === undefined) {
        items.push({ pk: part.wecom(this.run, shard), sk: key, value: { out: 1 } satisfies WecomRecord });
        return;
      }
      const { desired, problems, listed } = planned;
      if (problems.length) {
        // Refused by the worker too (never sent): the data must be fixed in WeCom by a person.
        items.push(this.findingItem({ class: 'invalid-field', subject: userSubject(userid), userid, fields: problems.map((p) => p.field), detail: problems.map((p) => p.reason).join('; ') }));
      }
      const record: WecomRecord = { en: memberState(w) === 'enabled', c: await storeContact(cipher, desired), ...(listed ? {} : { hide: 1 as const }) };
      items.push({ pk: part.wecom(this.run, shard), sk: key, value: record });
      for (const field of ['mobile', 'email'] as const) {
        const value = desired[field];
        if (!value) continue;
        const h = await cipher.hash(field, value);
        const m = field === 'mobile' ? maskPhone(value) : maskEmail(value);
        items.push({ pk: part.hashes(this.run, field, shardOf(h, this.shards)), sk: `${h}${SEP}${key}`, value: { u: userid, m } satisfies HashRecord });
      }
    });
    await this.store.put(items);
    for (const [id, n] of Object.entries(unmapped)) this.s.unmapped[id] = (this.s.unmapped[id] ?? 0) + n;
    const nextOffset = offset + batch.length;
    this.s.counts.done += batch.length;
    this.deps.progress?.({ phase: 'wecom', done: this.s.counts.done });
    if (nextOffset < this.idPage.ids.length) {
      this.s.at = { ...(cursor !== undefined ? { cursor } : {}), offset: nextOffset };
      return;
    }
    if (this.idPage.next) {
      this.s.at = { cursor: this.idPage.next, offset: 0 };
      return;
    }
    // The WeCom side is listed: the departments its members carry that the tree lacks.
    const items2: RunItem[] = [];
    for (const [id, n] of Object.entries(this.s.unmapped)) {
      if (this.s.unmappedReported.includes(Number(id))) continue;
      items2.push(this.findingItem({ class: 'department-unmapped', subject: `party:${id}`, departmentId: Number(id), detail: `WeCom department ${id} (of ${n} member(s)) has no path in the department tree` }));
    }
    await this.store.put(items2);
    this.idPage = undefined;
    this.s.phase = 'mailbox';
    this.s.at = {};
    this.s.counts.done = 0;
  }

  // -------------------------------------------------------------- mailbox side

  /** The run key of the mailbox partitions: a listing that started over writes fresh ones. */
  private get mailboxRun(): string {
    return this.s.mailboxEpoch ? `${this.run}~${this.s.mailboxEpoch}` : this.run;
  }

  private async stepMailbox(): Promise<void> {
    const { deps } = this;
    const { known } = await this.departments();
    let page: Awaited<ReturnType<typeof deps.mailbox.listPage>>;
    try {
      page = await deps.mailbox.listPage(this.s.at.cursor);
    } catch (err) {
      if (!(this.s.at.cursor !== undefined && err instanceof MailboxError && err.code === 'CursorExpired')) throw err;
      // The cursor does not survive into this chunk (LDAP): list again from the start, into
      // new partitions, so an account met in both listings is not joined twice.
      this.s.mailboxEpoch = (this.s.mailboxEpoch ?? 0) + 1;
      this.s.at = {};
      this.s.counts.mailboxAccounts = 0;
      this.s.counts.managedAccounts = 0;
      log.warn('reconcile: the mailbox listing cursor expired between chunks; listing again from the start', { runId: this.s.runId, epoch: this.s.mailboxEpoch });
      return;
    }
    this.held(page.accounts.length);
    const mailboxSource = deps.config.lifecycle.source === 'mailbox';
    const accountSubject = (id: string) => `mailbox:${deps.mailbox.provider}:${id}`;
    const items: RunItem[] = [];
    let managed = 0;
    const base = this.s.counts.mailboxAccounts;
    for (const [i, m] of page.accounts.entries()) {
      // The listing position: a second account carrying one employeeId is the later one, as in one pass.
      const seq = String(base + i).padStart(12, '0');
      if (m.deleted) continue;
      if (!m.employeeId) {
        // With the mailbox as the source, an unlinked account in scope is a person WeCom lacks.
        if (mailboxSource && (await accountOutOfScope(deps, m)) === undefined) {
          const derived = deriveUserid(deps.config.lifecycle.useridRule, m);
          if ('refused' in derived) items.push(this.findingItem({ class: 'userid-invalid', subject: accountSubject(m.id), accountId: m.id, detail: derived.refused }));
          else {
            const key = keyPart(derived.userid);
            items.push({ pk: part.births(this.mailboxRun, shardOf(key, this.shards)), sk: `${key}${SEP}${seq}${SEP}${keyPart(m.id)}`, value: { id: m.id } satisfies BirthRecord });
          }
          continue;
        }
        items.push(this.findingItem({ class: 'unmanaged', subject: accountSubject(m.id), accountId: m.id, detail: 'no employeeId link: not managed, never touched' }));
        continue;
      }
      managed++;
      if (m.department && !known.has(m.department)) {
        items.push(
          this.findingItem({ class: 'mailbox-department-unknown', subject: userSubject(m.employeeId), userid: m.employeeId, accountId: m.id, detail: `mailbox department '${m.department}' is not a WeCom department path` }),
        );
      }
      const key = keyPart(m.employeeId);
      items.push({ pk: part.mailbox(this.mailboxRun, shardOf(key, this.shards)), sk: `${key}${SEP}${seq}${SEP}${keyPart(m.id)}`, value: await this.accountRecord(m) });
    }
    await this.store.put(items);
    this.s.counts.mailboxAccounts += page.accounts.length;
    this.s.counts.managedAccounts += managed;
    deps.progress?.({ phase: 'mailbox', done: this.s.counts.mailboxAccounts });
    if (page.next) this.s.at = { cursor: page.next };
    else {
      this.s.phase = 'duplicates';
      this.s.at = { field: 'mobile', shard: 0 };
    }
  }

  private async accountRecord(m: MailboxAccount): Promise<AccountRecord> {
    const current = { ...normalizeMailboxAccount(m), userid: m.employeeId! };
    delete current.enabled;
    return { id: m.id, eid: m.employeeId!, en: m.enabled, c: await storeContact(this.deps.cipher, current), ...(m.showInAddressList !== undefined ? { gal: m.showInAddressList } : {}) };
  }

  // -------------------------------------------------------------- duplicates

  /** Reads one hash partition page, reports the groups of two or more people, marks their field as shared. */
  private async stepDuplicates(): Promise<void> {
    const field = this.s.at.field ?? 'mobile';
    const shard = this.s.at.shard ?? 0;
    const pk = part.hashes(this.run, field, shard);
    const { groups, after, more } = await this.readGroups<HashRecord>(pk, this.s.at.after);
    const cls: DriftClass = field === 'mobile' ? 'duplicate-mobile' : 'duplicate-email';
    const items: RunItem[] = [];
    for (const [hash, members] of groups) {
      const users = [...new Set(members.map((x) => x.value.u))];
      if (users.length < 2) continue;
      for (const userid of users) {
        items.push(this.findingItem({ class: cls, subject: userSubject(userid), userid, detail: `${members[0]!.value.m} shared by ${users.join(', ')} (keyed hash ${hash.slice(0, 12)})` }));
        const key = keyPart(userid);
        items.push({ pk: part.shared(this.run, shardOf(key, this.shards)), sk: `${key}${SEP}${field}`, value: 1 });
      }
    }
    await this.store.put(items);
    if (more) this.s.at = { field, shard, ...(after !== undefined ? { after } : {}) };
    else if (shard + 1 < this.shards) this.s.at = { field, shard: shard + 1 };
    else if (field === 'mobile') this.s.at = { field: 'email', shard: 0 };
    else {
      this.s.phase = 'join';
      this.s.at = { shard: 0 };
    }
  }

  /**
   * Whole groups of a partition after `after`: a page, less its last group when more may
   * follow (that group is read again, whole, next time). A group larger than a page is read
   * with a larger page.
   */
  private async readGroups<T>(pk: string, after: string | undefined): Promise<{ groups: Array<[string, Array<RunItem<T>>]>; after?: string; more: boolean }> {
    for (let limit = this.pageSize; ; limit *= 2) {
      const page = await this.store.page<T>(pk, { ...(after !== undefined ? { after } : {}), limit });
      this.held(page.items.length);
      const groups: Array<[string, Array<RunItem<T>>]> = [];
      for (const item of page.items) {
        const g = groupOf(item.sk);
        const last = groups.at(-1);
        if (last && last[0] === g) last[1].push(item);
        else groups.push([g, [item]]);
      }
      if (page.more) groups.pop();
      if (page.more && !groups.length) continue;
      const lastGroup = groups.at(-1)?.[0];
      return { groups, after: lastGroup !== undefined ? afterGroup(lastGroup) : after, more: page.more };
    }
  }

  // -------------------------------------------------------------- join

  /** Merges one window of the shard's four partitions (WeCom, accounts, births, shared fields) and classifies each userid. */
  private async stepJoin(): Promise<void> {
    const shard = this.s.at.shard ?? 0;
    const after = this.s.at.after;
    const pks = [part.wecom(this.run, shard), part.mailbox(this.mailboxRun, shard), part.births(this.mailboxRun, shard), part.shared(this.run, shard)];
    let pages: Array<{ items: RunItem[]; more: boolean }>;
    let horizon: string | undefined;
    for (let limit = this.pageSize; ; limit *= 2) {
      pages = await Promise.all(pks.map((pk) => this.store.page(pk, { ...(after !== undefined ? { after } : {}), limit })));
      this.held(pages.reduce((n, p) => n + p.items.length, 0));
      // Groups below the smallest "last group" of an unfinished partition are whole in all four.
      horizon = undefined;
      for (const p of pages) {
        if (!p.more || !p.items.length) continue;
        const g = groupOf(p.items.at(-1)!.sk);
        if (horizon === undefined || compareKeys(g, horizon) < 0) horizon = g;
      }
      if (horizon === undefined) break;
      const first = pages.flatMap((p) => p.items.slice(0, 1).map((i) => groupOf(i.sk))).sort(compareKeys)[0];
      if (first !== undefined && compareKeys(first, horizon) < 0) break;
    }
    const groups = new Map<string, { w?: WecomRecord; accounts: AccountRecord[]; births: BirthRecord[]; shared: string[] }>();
    const order: string[] = [];
    const slot = (g: string) => {
      let x = groups.get(g);
      if (!x) groups.set(g, (x = { accounts: [], births: [], shared: [] }));
      return x;
    };
    const [wp, mp, bp, sp] = pages;
    const inWindow = (sk: string) => horizon === undefined || compareKeys(groupOf(sk), horizon) < 0;
    for (const i of wp!.items) if (inWindow(i.sk)) slot(groupOf(i.sk)).w = i.value as WecomRecord;
    for (const i of mp!.items) if (inWindow(i.sk)) slot(groupOf(i.sk)).accounts.push(i.value as AccountRecord);
    for (const i of bp!.items) if (inWindow(i.sk)) slot(groupOf(i.sk)).births.push(i.value as BirthRecord);
    for (const i of sp!.items) if (inWindow(i.sk)) slot(groupOf(i.sk)).shared.push(i.sk.slice(i.sk.indexOf(SEP) + 1));
    for (const g of groups.keys()) order.push(g);
    order.sort(compareKeys);

    const items: RunItem[] = [];
    const repairs = new Map<string, RepairItem>();
    const mailboxSource = this.deps.config.lifecycle.source === 'mailbox';
    let inSync = 0;
    let people = 0;
    const add: Add = (f) => {
      const item = this.findingItem(f);
      items.push(item);
      if (!REPAIRABLE.has(f.class) || !f.userid) return;
      if (f.class === 'missing-in-mailbox' && mailboxSource) return; // a person creates the account
      const r = repairs.get(f.subject) ?? { f: [] };
      r.f.push({ pk: item.pk, sk: item.sk, finding: f });
      repairs.set(f.subject, r);
    };
    await pool(order, this.deps.concurrency ?? 16, async (g) => {
      const { w, accounts, births, shared } = groups.get(g)!;
      if (w) people++;
      const member = w && !w.gone && !w.out ? { ...w, ...(shared.length ? { sh: shared as Array<'mobile' | 'email'> } : {}) } : undefined;
      let seen = false;
      for (const a of accounts) {
        if (w?.out) {
          inSync++; // neither ours to fix nor "extra"
          continue;
        }
        const verdict = comparePerson(this.deps.config, a, member, !seen, add);
        if (member) seen = true;
        if (verdict === 'in-sync') inSync++;
        else if (verdict === 'both-disabled') {
          const gated = await gateReason(this.deps, a.eid, 'its mailbox account exists but is disabled: enable it (a mail administrator’s decision) and the member is enabled next');
          if (gated === undefined) inSync++;
          else add({ class: 'gated', subject: userSubject(a.eid), userid: a.eid, detail: `held by the onboarding gate: ${gated}` });
        } else if (verdict === 'wecom-disabled') {
          const base = { subject: userSubject(a.eid), userid: a.eid, accountId: a.id };
          const st = await this.deps.state.get(userSubject(a.eid));
          if (st?.disabledBy === 'incomplete') {
            const missing = (st.fields.refused as Record<string, string> | undefined)?.incomplete;
            add({ ...base, class: 'incomplete', detail: `created disabled, waiting for a complete record${missing ? `: ${missing}` : ''}` });
          } else add({ ...base, class: 'disabled-in-wecom', detail: 'WeCom member disabled but mailbox active' });
        }
      }
      if (member && !seen) {
        const userid = g; // the key is the userid (keyPart changes nothing a WeCom userid holds)
        if (member.en) {
          add({
            class: 'missing-in-mailbox',
            subject: userSubject(userid),
            userid,
            // With the mailbox as the source nothing creates mailboxes: a person must (no repair).
            detail: mailboxSource ? 'WeCom member has no mailbox account: the mailbox is the source, create the account there' : 'WeCom member has no mailbox account',
          });
        } else {
          // A disabled member without a mailbox has nothing to provision, unless the onboarding
          // gate disabled them and is still waiting for the mailbox: then the report says why.
          const gated = await gateReason(this.deps, userid);
          if (gated === undefined) inSync++;
          else add({ class: 'gated', subject: userSubject(userid), userid, detail: `held by the onboarding gate: ${gated}` });
        }
      }
      if (births.length) {
        const userid = g;
        const clash =
          births.length > 1
            ? `${births.length} accounts derive it`
            : w && !w.gone
              ? `WeCom already has a member with it (if it is this person, set the account's employeeId to '${userid}' by hand)`
              : accounts.length
                ? 'another mailbox account already carries it'
                : undefined;
        const accountSubject = (id: string) => `mailbox:${this.deps.mailbox.provider}:${id}`;
        for (const { id } of births) {
          if (clash) add({ class: 'userid-collision', subject: accountSubject(id), accountId: id, detail: `userid '${userid}' collides: ${clash}` });
          else add({ class: 'not-yet-linked', subject: accountSubject(id), accountId: id, userid, detail: `new account in scope: to be created in WeCom as '${userid}'` });
        }
      }
    });
    const repairItems: RunItem[] = [...repairs].map(([subject, value]) => ({ pk: part.repairs(this.run, shardOf(subject, this.shards)), sk: keyPart(subject), value }));
    await this.store.put([...items, ...(this.s.mode === 'report' ? [] : repairItems)]);
    this.s.counts.inSync += inSync;
    this.s.counts.wecomPeople += people;
    this.s.counts.subjects += repairs.size;
    const more = horizon !== undefined;
    if (more) this.s.at = { shard, after: afterGroup(order.at(-1)!) };
    else if (shard + 1 < this.shards) this.s.at = { shard: shard + 1 };
    else {
      this.s.phase = this.s.mode === 'report' ? 'report' : 'plan';
      this.s.at = { shard: 0 };
    }
  }

  // -------------------------------------------------------------- repair

  private message(subject: string): SyncMessage {
    return {
      v: 1,
      subject: subject as SyncMessage['subject'],
      source: 'reconcile',
      eventId: `${this.run}:${subject}`,
      hint: 'reconcile',
      operator: this.s.operator,
      receivedAt: this.deps.now().toISOString(),
    };
  }

  /**
   * plan: the engine's dry run per subject (nothing audited when the repair applies), the
   * destructive ones counted over the whole run. apply: only once every subject is planned,
   * with the guard decided on that count.
   */
  private async stepRepair(kind: 'plan' | 'apply'): Promise<void> {
    const { deps } = this;
    const apply = this.s.mode === 'repair';
    const shard = this.s.at.shard ?? 0;
    const pk = part.repairs(this.run, shard);
    const page = await this.store.page<RepairItem>(pk, { ...(this.s.at.after !== undefined ? { after: this.s.at.after } : {}), limit: Math.max(1, Math.floor(this.pageSize / 5)) });
    this.held(page.items.length);
    const guard = this.s.guard;
    const refuse = guard !== undefined && guard.tripped && !guard.confirmed;
    const planDeps: EngineDeps = { ...deps, dryRun: true, audit: apply ? silentAudit(deps.audit) : deps.audit };
    delete planDeps.enqueue;
    let destructive = 0;
    const out: RunItem[] = [];
    const mark = (r: RepairItem, status: Finding['repair'], actions?: string[], detail?: string) => {
      for (const x of r.f) {
        x.finding.repair = status;
        if (actions) x.finding.actions = actions;
        else delete x.finding.actions;
        if (detail) x.finding.detail = `${x.finding.detail ?? ''}${x.finding.detail ? '; ' : ''}${detail}`;
        out.push({ pk: x.pk, sk: x.sk, value: x.finding });
      }
    };
    await pool(page.items, deps.repairConcurrency ?? 4, async (item) => {
      const subject = item.value.f[0]!.finding.subject;
      // Findings as the join wrote them: a redone step starts from the same text.
      const r: RepairItem = structuredClone(item.value);
      if (kind === 'plan') {
        delete r.d;
        delete r.failed;
        delete r.a;
        try {
          const o = await syncSubject(this.message(subject), planDeps);
          r.d = isDestructive(o);
          r.a = o.actions;
          if (r.d) destructive++;
          if (!apply) mark(structuredClone(r), 'dry-run', o.actions);
        } catch (err) {
          r.failed = `plan failed: ${redactText((err as Error).message)}`;
          mark(structuredClone(r), 'failed', undefined, r.failed);
        }
        out.push({ pk: item.pk, sk: item.sk, value: r });
        return;
      }
      const copy = structuredClone(r);
      if (r.failed) return; // reported at plan
      if (refuse && r.d) mark(copy, 'refused', undefined, `refused: deletion guard (${guard!.destructive} > ${guard!.limit})`);
      else {
        try {
          const o = await syncSubject(this.message(subject), deps);
          // A step redone after a kill finds its own writes done: it stays 'applied'.
          const status = o.changed || r.done ? 'applied' : 'unchanged';
          if (o.changed) out.push({ pk: item.pk, sk: item.sk, value: { ...r, done: true } });
          mark(copy, status, o.changed || !r.done ? o.actions : r.a);
        } catch (err) {
          mark(copy, 'failed', undefined, redactText((err as Error).message));
        }
      }
    });
    await this.store.put(out);
    if (kind === 'plan') this.s.destructive += destructive;
    this.s.counts.done += page.items.length;
    deps.progress?.({ phase: 'repair', done: this.s.counts.done, total: this.s.counts.subjects * (apply ? 2 : 1) });
    if (page.more) {
      this.s.at = { shard, after: page.items.at(-1)!.sk };
      return;
    }
    if (shard + 1 < this.shards) {
      this.s.at = { shard: shard + 1 };
      return;
    }
    if (kind === 'apply' || !apply) {
      if (kind === 'plan') this.s.guard = this.guard();
      this.s.phase = 'report';
      this.s.at = {};
      return;
    }
    // Every subject is planned: the guard sees the whole run before anything is applied.
    const g = this.guard();
    this.s.guard = g;
    if (g.tripped && !g.confirmed) {
      await this.auditOnce({
        subject: RECONCILE_SUBJECT,
        operator: this.s.operator,
        action: 'refused',
        outcome: 'refused',
        reason: `refused: deletion guard (${g.destructive} > ${g.limit}); nothing destructive applied, confirm to proceed`,
        eventId: this.run,
        at: deps.now(),
      });
      log.warn('reconcile deletion guard tripped', { runId: this.run, destructive: g.destructive, limit: g.limit });
    }
    this.s.phase = 'apply';
    this.s.at = { shard: 0 };
  }

  private guard(): GuardResult {
    const limit = deletionLimit(this.deps.config, this.s.counts.managedAccounts);
    return { destructive: this.s.destructive, limit, tripped: this.s.destructive > limit, confirmed: this.s.confirm };
  }

  /**
   * The run's own audit records (the guard's refusal, the summary) are appended once, even when
   * their step is redone because the chunk died before its checkpoint: every other write of a
   * step is an overwrite, an audit append is not. A marker written before the append tells a
   * redo to look in the reconcile trail (since the marker) for this run's record first.
   */
  private async auditOnce(input: AuditInput): Promise<void> {
    const pk = part.job(this.run);
    const sk = `audit#${input.action}`;
    const marked = await this.store.get<{ at: string }>(pk, sk);
    if (marked) {
      // A minute's slack: the append's time comes from the process that wrote the marker, just after it.
      const since = new Date(Date.parse(marked.at) - 60_000);
      const trail = await this.deps.audit.bySubject(RECONCILE_SUBJECT, { since });
      if (trail.some((r) => r.eventId === this.run && r.action === input.action)) return;
    } else {
      await this.store.put([{ pk, sk, value: { at: this.deps.now().toISOString() } }]);
    }
    await this.deps.audit.append(input);
  }

  // -------------------------------------------------------------- report

  /** Reads the findings back (class by class, shard by shard), writes the report, audits the run. */
  private async stepReport(): Promise<ReconcileReport> {
    const { deps } = this;
    const findings: Finding[] = [];
    for (const cls of DRIFT_CLASSES) {
      for (let shard = 0; shard < this.shards; shard++) {
        let after: string | undefined;
        for (;;) {
          const page = await this.store.page<Finding>(part.findings(this.run, cls, shard), { ...(after !== undefined ? { after } : {}), limit: 1000 });
          for (const i of page.items) findings.push(i.value);
          if (!page.more) break;
          after = page.items.at(-1)!.sk;
        }
      }
    }
    const byClass: Partial<Record<DriftClass, number>> = {};
    for (const f of findings) byClass[f.class] = (byClass[f.class] ?? 0) + 1;
    const drift = findings.filter((f) => !INFORMATIONAL.has(f.class)).length;
    const c = this.s.counts;
    const report: ReconcileReport = {
      runId: this.run,
      startedAt: this.s.startedAt,
      finishedAt: '',
      mode: this.s.mode,
      counts: { wecomPeople: c.wecomPeople, mailboxAccounts: c.mailboxAccounts, managedAccounts: c.managedAccounts, departments: c.departments, inSync: c.inSync, byClass },
      drift,
      findings,
    };
    if (this.s.guard) report.guard = this.s.guard;
    report.finishedAt = deps.now().toISOString();
    if (deps.reports) {
      report.locations = await deps.reports.write(reportName(new Date(this.s.startedAt)), { csv: reportCsv(report), json: reportJson(report) });
    }
    await this.auditOnce({
      subject: RECONCILE_SUBJECT,
      operator: this.s.operator,
      action: drift === 0 ? 'noop' : 'skip',
      outcome: report.mode === 'repair-dry-run' ? 'dry-run' : 'ok',
      changes: DRIFT_CLASSES.filter((k) => byClass[k]).map((k) => ({ field: k, new: byClass[k] })),
      reason: summary(report),
      eventId: this.run,
      at: deps.now(),
    });
    log.info('reconcile finished', { runId: this.run, mode: report.mode, drift, byClass, guard: report.guard, locations: report.locations, chunks: this.s.chunks });
    this.s.result = { drift, byClass, ...(report.locations ? { locations: report.locations } : {}), finishedAt: report.finishedAt };
    this.s.phase = 'done';
    this.s.at = {};
    return report;
  }
}

/** One line an operator reads in the audit log or a CLI: counts, guard, where the report is. */
export function summary(r: ReconcileReport): string {
  const parts = DRIFT_CLASSES.filter((c) => r.counts.byClass[c]).map((c) => `${r.counts.byClass[c]} ${c}`);
  const guard = r.guard?.tripped ? `; refused: deletion guard (${r.guard.destructive} > ${r.guard.limit})${r.guard.confirmed ? ' — confirmed by operator' : ''}` : '';
  return `${r.mode}: ${r.counts.wecomPeople} WeCom people, ${r.counts.managedAccounts} managed accounts, ${r.counts.inSync} in sync; ${parts.length ? parts.join(', ') : 'no drift'}${guard}${r.locations?.length ? `; report ${r.locations.join(' ')}` : ''}`;
}

/** An audit log that records nothing: the planning pass of a repair must leave no trace. */
function silentAudit(real: AuditLog): AuditLog {
  let seq = 0;
  return {
    append: async (input: AuditInput): Promise<AuditRecord> =>
      ({
        ...input,
        seq: ++seq,
        at: (input.at ?? new Date()).toISOString(),
        hash: '',
        prevHash: '',
      }) as AuditRecord,
    bySubject: (s, o) => real.bySubject(s, o),
    byTime: (a, b) => real.byTime(a, b),
    verify: (s) => real.verify(s),
  };
}
