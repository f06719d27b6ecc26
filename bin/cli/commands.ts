/**
 * The operator CLI's commands, as functions of (target, arguments, io) → exit code, so the
 * e2e test can run them in-process as well as through the binary.
 *
 * Exit codes: 0 success / in sync, 2 drift found (reconcile) or audit trail broken,
 * 1 failure, 64 usage error.
 */
import type { SyncMessage } from '../../functions/queue/messages';
import { runAuditDigest } from '../../functions/audit/run';
import { verifyAudit, type AuditVerification } from '../../functions/audit/verify';
import { redactText } from '../../functions/core/redact';
import type { ChainProblem } from '../../functions/store/audit-chain';
import type { AuditRecord } from '../../functions/store/ports';
import { decideHeld, listHeld, type Verdict } from '../../functions/sync/approvals';
import { checkHealth, type HealthResult } from '../../functions/sync/health';
import type { Subject } from '../../functions/core/model';
import type { Translate } from '../../functions/core/messages';
import type { RunStore } from '../../functions/store/run-store';
import { RECONCILE_SUBJECT, reconcileAll } from '../../functions/sync/reconcile';
import { DRIFT_CLASSES, reportCsv, type ReconcileReport, type ReportSink } from '../../functions/sync/report';
import { operatorIdentity, osUser } from '../console/identity';
import { labelled, progress, say, table, type Io } from './output';
import { CliError, type CliTarget } from './target';

export const EXIT = { ok: 0, failure: 1, drift: 2, usage: 64 } as const;

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

/** The operator on this machine: `cli:<OS user>` (WECOM_SYNC_OPERATOR overrides the user). */
export function operatorName(): string {
  return `cli:${osUser()}`;
}

/**
 * Who is acting, for the audit: the OS user against the local stack, the IAM principal of the
 * AWS credentials (sts:GetCallerIdentity) against a deployed one.
 */
export async function operatorOf(target: Pick<CliTarget, 'kind'>, region?: string): Promise<string> {
  return target.kind === 'stack' ? operatorIdentity(target, 'cli', region ? { region } : {}) : operatorName();
}

/**
 * Reports go where the target keeps them; their CSV headers are written in the operator's
 * language (the report's JSON, and so the CSV's columns and codes, are the same in every language).
 */
export function localizedReports(sink: ReportSink, io: Io): ReportSink {
  if ((io.locale ?? 'en') === 'en') return sink;
  return { write: (name, files) => sink.write(name, { ...files, csv: reportCsv(JSON.parse(files.json) as ReconcileReport, io.locale) }) };
}

/** The reconcile summary line in the operator's language (reconcile.ts's `summary`, translated). */
export function reconcileSummary(t: Translate, r: ReconcileReport): string {
  const parts = DRIFT_CLASSES.filter((c) => r.counts.byClass[c]).map((c) => t('cli.reconcile.classCount', { n: r.counts.byClass[c]!, class: c }));
  const guard = r.guard?.tripped
    ? t('cli.reconcile.summaryGuard', { n: r.guard.destructive, limit: r.guard.limit }) + (r.guard.confirmed ? t('cli.reconcile.summaryConfirmed') : '')
    : '';
  return t('cli.reconcile.summary', {
    mode: t(`cli.mode.${r.mode}`),
    people: r.counts.wecomPeople,
    managed: r.counts.managedAccounts,
    inSync: r.counts.inSync,
    drift: parts.length ? parts.join(t('cli.list.separator')) : t('cli.reconcile.noDrift'),
    guard,
    report: r.locations?.length ? t('cli.reconcile.summaryReport', { locations: r.locations.join(' ') }) : '',
  });
}

// ------------------------------------------------------------------ reconcile

export interface ReconcileArgs {
  repair?: boolean;
  apply?: boolean;
  confirm?: boolean;
  json?: boolean;
  /** The deployed stack's region (for the operator's identity). */
  region?: string;
}

/** The target's reconcile table as the run's scratch (memory stays flat for any directory size). */
async function withRunStore(target: CliTarget): Promise<{ runStore?: RunStore }> {
  const store = await target.runStore?.();
  return store ? { runStore: store } : {};
}

export async function reconcileCommand(target: CliTarget, args: ReconcileArgs, io: Io): Promise<number> {
  const t = say(io);
  if ((args.apply || args.confirm) && !args.repair) throw new UsageError(t('cli.usage.applyNeedsRepair'));
  const bar = progress(io);
  const labels = { wecom: t('cli.progress.wecom'), mailbox: t('cli.progress.mailbox'), repair: t('cli.progress.repair') } as const;
  let report: ReconcileReport;
  try {
    report = await reconcileAll(
      {
        ...(await target.engineDeps()),
        reports: localizedReports(await target.reports(), io),
        progress: (p) => bar.update(labels[p.phase], p.done, p.total),
        ...(await withRunStore(target)),
      },
      { repair: args.repair === true, apply: args.apply === true, confirm: args.confirm === true, operator: await operatorOf(target, args.region) },
    );
  } finally {
    bar.stop();
  }
  const failed = report.findings.some((f) => f.repair === 'failed');
  const unresolved = report.findings.filter((f) => f.class !== 'unmanaged' && !(f.repair === 'applied' || f.repair === 'unchanged')).length;
  const code = failed ? EXIT.failure : report.mode === 'repair' ? (unresolved ? EXIT.drift : EXIT.ok) : report.drift ? EXIT.drift : EXIT.ok;

  if (args.json) {
    io.out(JSON.stringify(report, null, 2));
    return code;
  }
  io.out(reconcileSummary(t, report));
  const rows = report.findings.filter((f) => f.class !== 'unmanaged');
  table(io, rows as unknown as Array<Record<string, unknown>>, report.mode === 'report' ? ['class', 'subject', 'fields', 'detail'] : ['class', 'subject', 'fields', 'repair', 'actions', 'detail']);
  const unmanaged = report.counts.byClass.unmanaged ?? 0;
  if (unmanaged) io.out(t('cli.reconcile.unmanaged', { n: unmanaged }));
  if (report.guard?.tripped && !report.guard.confirmed) {
    const n = { n: report.guard.destructive, limit: report.guard.limit };
    io.out(report.mode === 'repair' ? t('cli.reconcile.guardRefused', n) : t('cli.reconcile.guardWouldTrip', n));
  }
  if (report.mode === 'repair-dry-run' && report.drift) io.out(t('cli.reconcile.dryRun'));
  return code;
}

// ------------------------------------------------------------------ audit

export interface AuditArgs {
  subject?: string;
  since?: string;
  limit?: string;
  json?: boolean;
}

/** One subject's trail, and its verification against the signed digests (exit 2 on a break). */
export async function auditCommand(target: CliTarget, args: AuditArgs, io: Io): Promise<number> {
  const t = say(io);
  if (!args.subject) throw new UsageError(t('cli.usage.auditSubject'));
  let since: Date | undefined;
  if (args.since) {
    since = new Date(args.since);
    if (Number.isNaN(since.getTime())) throw new UsageError(t('cli.usage.since', { since: args.since }));
  }
  const limit = args.limit ? Number(args.limit) : undefined;
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError(t('cli.usage.limit'));
  const [audit, integrity] = await Promise.all([target.audit(), target.auditIntegrity()]);
  const [records, chain] = await Promise.all([audit.bySubject(args.subject, { ...(since ? { since } : {}) }), verifyAudit(integrity.verify, { subject: args.subject })]);
  const shown = limit ? records.slice(-limit) : records;
  const code = chain.ok ? EXIT.ok : EXIT.drift;
  if (args.json) {
    io.out(JSON.stringify({ subject: args.subject, chain, records: shown }, null, 2));
    return code;
  }
  if (!shown.length) io.out(t('cli.audit.none', { subject: args.subject, since: since ? t('cli.audit.since', { at: since.toISOString() }) : '' }));
  table(
    io,
    shown.map((r: AuditRecord) => ({
      seq: r.seq,
      at: r.at,
      operator: r.operator,
      action: r.action,
      target: r.target ?? '',
      outcome: r.outcome,
      changes: (r.changes ?? []).map((c) => `${c.field}${c.old !== undefined || c.new !== undefined ? `: ${fmt(c.old)} → ${fmt(c.new)}` : ''}`).join('; '),
      reason: r.reason ?? '',
    })),
    ['seq', 'at', 'operator', 'action', 'target', 'outcome', 'changes', 'reason'],
  );
  if (chain.ok) io.out(t('cli.audit.chainVerified', { n: records.length, anchor: anchor(t, chain) }));
  else {
    io.out(t('cli.audit.chainBroken'));
    problemTable(io, chain.problems);
  }
  return code;
}

function anchor(t: Translate, v: AuditVerification): string {
  return v.digest ? t('cli.audit.anchor', { at: v.digest.createdAt }) : t('cli.audit.notAnchored');
}

function problemTable(io: Io, problems: ChainProblem[]): void {
  table(
    io,
    problems.map((p) => ({ subject: p.subject, seq: p.seq ?? '', kind: p.kind, detail: p.detail })),
    ['subject', 'seq', 'kind', 'detail'],
    100,
  );
}

export interface AuditVerifyArgs {
  subject?: string;
  all?: boolean;
  json?: boolean;
}

/**
 * `audit verify (--all | --subject ID)`: every subject of the newest signed digest plus every
 * subject with records since (or one subject), checked against the digest. Exit 2 on any
 * break, 0 otherwise.
 */
export async function auditVerifyCommand(target: CliTarget, args: AuditVerifyArgs, io: Io): Promise<number> {
  const t = say(io);
  if (Boolean(args.all) === Boolean(args.subject)) throw new UsageError(t('cli.usage.verifyScope'));
  const { verify } = await target.auditIntegrity();
  const result = await verifyAudit(verify, args.subject ? { subject: args.subject } : { all: true });
  const code = result.ok ? EXIT.ok : EXIT.drift;
  if (args.json) {
    io.out(JSON.stringify(result, null, 2));
    return code;
  }
  io.out(t('cli.verify.checked', { n: result.subjects, anchor: anchor(t, result), witness: result.witness ? t('cli.verify.witness', { at: result.witness.createdAt }) : '' }));
  if (result.ok) io.out(t('cli.verify.ok'));
  else {
    problemTable(io, result.problems);
    io.out(t('cli.verify.broken', { n: result.problems.length }));
  }
  return code;
}

/** `audit digest`: sign and store a digest of every chain head now (what the schedule does). */
export async function auditDigestCommand(target: CliTarget, args: { json?: boolean }, io: Io): Promise<number> {
  const t = say(io);
  const { digestJob } = await target.auditIntegrity();
  const result = await runAuditDigest(await digestJob());
  const code = result.problems.length ? EXIT.drift : EXIT.ok;
  if (args.json) {
    io.out(JSON.stringify(result, null, 2));
    return code;
  }
  io.out(
    t('cli.digest.stored', {
      name: result.name,
      subjects: result.subjects,
      advanced: result.advanced,
      records: result.recordsRead,
      since: result.previous ? t('cli.digest.since', { previous: result.previous }) : t('cli.digest.whole'),
    }),
  );
  if (result.problems.length) {
    problemTable(io, result.problems);
    io.out(t('cli.digest.broken', { n: result.problems.length }));
  }
  return code;
}

function fmt(v: unknown): string {
  if (v === undefined) return '?';
  if (v === null) return '∅';
  return redactText(typeof v === 'string' ? v : JSON.stringify(v));
}

// ------------------------------------------------------------------ dlq

export async function dlqCommand(target: CliTarget, sub: string | undefined, args: { id?: string; json?: boolean }, io: Io): Promise<number> {
  const t = say(io);
  if (sub === 'list') {
    const letters = await target.listDeadLetters();
    if (args.json) io.out(JSON.stringify(letters, null, 2));
    else if (!letters.length) io.out(t('cli.dlq.none'));
    else {
      table(io, letters as unknown as Array<Record<string, unknown>>, ['id', 'subject', 'source', 'hint', 'receiveCount', 'reason'], 80);
      io.out(t('cli.dlq.count', { n: letters.length }));
    }
    return EXIT.ok;
  }
  if (sub === 'redrive') {
    const n = await target.redrive(args.id);
    if (args.json) io.out(JSON.stringify({ redriven: n }));
    else io.out(n ? t('cli.dlq.redriven', { n }) : args.id ? t('cli.dlq.noId', { id: args.id }) : t('cli.dlq.nothing'));
    return args.id && n === 0 ? EXIT.failure : EXIT.ok;
  }
  throw new UsageError(t('cli.usage.dlqSub'));
}

// ------------------------------------------------------------------ approvals

/** The deletion guard's held actions: list, approve, reject (each decision audited with the operator). */
export async function approvalsCommand(target: CliTarget, sub: string, args: { ids: string[]; all?: boolean; json?: boolean; region?: string }, io: Io): Promise<number> {
  const t = say(io);
  const deps = await target.engineDeps();
  if (sub === 'list') {
    const held = await listHeld(deps);
    if (args.json) io.out(JSON.stringify(held, null, 2));
    else if (!held.length) io.out(t('cli.approvals.none'));
    else {
      table(io, held as unknown as Array<Record<string, unknown>>, ['subject', 'action', 'status', 'since', 'events', 'reason'], 90);
      const waiting = held.filter((h) => h.status === 'held').length;
      io.out(t('cli.approvals.waiting', { n: waiting }));
    }
    return EXIT.ok;
  }
  const subjects = args.all ? 'all' : args.ids.map((id) => (id.startsWith('user:') ? id : `user:${id}`) as Subject);
  const results = await decideHeld(deps, sub as Verdict, await operatorOf(target, args.region), subjects);
  if (args.json) io.out(JSON.stringify(results, null, 2));
  else if (!results.length) io.out(t('cli.approvals.nothingHeld'));
  else {
    table(io, results as unknown as Array<Record<string, unknown>>, ['subject', 'outcome']);
    if (sub === 'approve' && results.some((r) => r.outcome === 'approved')) io.out(t('cli.approvals.queued'));
  }
  return results.some((r) => r.outcome === 'not-held') ? EXIT.failure : EXIT.ok;
}

// ------------------------------------------------------------------ status

export interface StatusResult {
  target: string;
  queue?: { depth: number; deadLetters: number };
  subscription?: { id: string; expiresAt: string; hoursLeft?: number } | null;
  lastReconcile?: { at: string; action: string; outcome: string; summary?: string; operator: string } | null;
  health: HealthResult;
}

export async function statusCommand(target: CliTarget, args: { json?: boolean }, io: Io): Promise<number> {
  const t = say(io);
  const [health, audit] = await Promise.all([target.health().then(checkHealth), target.audit()]);
  // The newest reconcile record: the chain is per subject and ascending, the last one wins.
  const runs = await audit.bySubject(RECONCILE_SUBJECT, { since: new Date(Date.now() - 90 * 86_400_000) });
  const last = runs.at(-1);
  const result: StatusResult = {
    target: target.name,
    ...(health.queue ? { queue: health.queue } : {}),
    subscription: health.subscription ?? null,
    lastReconcile: last ? { at: last.at, action: last.action, outcome: last.outcome, operator: last.operator, ...(last.reason ? { summary: last.reason } : {}) } : null,
    health,
  };
  const code = health.ok ? EXIT.ok : EXIT.failure;
  if (args.json) {
    io.out(JSON.stringify(result, null, 2));
    return code;
  }
  io.out(labelled(t('cli.status.target')) + result.target);
  if (result.queue) io.out(labelled(t('cli.status.queue')) + t('cli.status.queueValue', { depth: result.queue.depth, dead: result.queue.deadLetters }));
  io.out(
    labelled(t('cli.status.subscription')) +
      (result.subscription ? t('cli.status.subscriptionValue', { id: result.subscription.id, at: result.subscription.expiresAt, hours: result.subscription.hoursLeft ?? '?' }) : t('cli.status.none')),
  );
  io.out(labelled(t('cli.status.lastReconcile')) + (last ? t('cli.status.lastReconcileValue', { at: last.at, operator: last.operator, what: last.reason ?? last.action }) : t('cli.status.never')));
  io.out('');
  table(
    io,
    health.checks.map((c) => ({ check: c.name, status: c.ok ? t('cli.status.checkOk') : c.severity === 'warn' ? t('cli.status.checkWarn') : t('cli.status.checkFailed'), detail: c.detail })),
    ['check', 'status', 'detail'],
    100,
  );
  io.out(health.ok ? t('cli.status.healthy') : t('cli.status.unhealthy'));
  return code;
}

// ------------------------------------------------------------------ local helpers (README demo)

/** Print a Graph access token of the local stack's (simulated) Graph, for curl. */
export async function localTokenCommand(target: CliTarget, io: Io): Promise<number> {
  if (!target.local) throw new CliError(say(io)('cli.localOnly', { command: 'local-token' }));
  io.out(await target.local.graphToken());
  return EXIT.ok;
}

/** Disable a person's mailbox account in the local stack's Graph: the offboarding demo. */
export async function demoOffboardCommand(target: CliTarget, userid: string | undefined, io: Io): Promise<number> {
  const t = say(io);
  if (!target.local) throw new CliError(t('cli.localOnly', { command: 'demo-offboard' }));
  if (!userid) throw new UsageError(t('cli.usage.demoNeedsUser'));
  const graph = await target.local.graph();
  const account = await graph.findByEmployeeId(userid);
  if (!account) throw new CliError(t('cli.demo.noAccount', { userid }));
  await graph.disable(account.id);
  io.out(t('cli.demo.done', { id: account.id, userid }));
  return EXIT.ok;
}

// ------------------------------------------------------------------ CSV

export interface ExportArgs {
  source?: string;
  out?: string;
}

export interface ImportArgs {
  file?: string;
  template?: string;
  apply?: boolean;
  json?: boolean;
  /** The deployed stack's region (for the operator's identity). */
  region?: string;
}

/** Messages for people to bootstrap through the engine (import-csv --apply). */
export function bootstrapMessages(userids: string[], operator: string, runId: string): SyncMessage[] {
  const now = new Date().toISOString();
  return userids.map((userid) => ({
    v: 1,
    subject: `user:${userid}`,
    source: 'cli',
    eventId: `${runId}:${userid}`,
    hint: 'create_user',
    operator,
    receivedAt: now,
  }));
}

/**
 * The CSV module (functions/sync/csv.ts, the official WeCom / Microsoft 365 templates, formula
 * neutralization) is loaded at run time and probed for its entry points, so the rest of the
 * CLI keeps working in a build without it.
 */
type CsvModule = Record<string, unknown>;
async function csvModule(t: Translate): Promise<CsvModule> {
  try {
    return (await import(/* @vite-ignore */ ['../../functions/sync', 'csv'].join('/'))) as CsvModule;
  } catch {
    throw new CliError(t('cli.csv.unavailable'));
  }
}
function pick<T>(t: Translate, mod: CsvModule, names: string[], what: string): T {
  for (const n of names) if (typeof mod[n] === 'function') return mod[n] as T;
  throw new CliError(t('cli.csv.missing', { what, names: names.join(' / ') }));
}

export async function exportCsvCommand(target: CliTarget, args: ExportArgs, io: Io): Promise<number> {
  const t = say(io);
  const source = (args.source ?? 'wecom') as 'wecom' | 'mailbox';
  const mod = await csvModule(t);
  const deps = await target.engineDeps();
  const bar = progress(io);
  let csv: string;
  try {
    if (source === 'wecom') {
      const ids = await deps.wecom.listUserIds();
      const users: import('../../functions/wecom/contacts').WecomUser[] = [];
      let done = 0;
      const { pool } = await import('../../functions/sync/reconcile');
      await pool(ids, 16, async (id) => {
        const u = await deps.wecom.getUser(id);
        if (u) users.push(u);
        bar.update(t('cli.progress.wecom'), ++done, ids.length);
      });
      users.sort((a, b) => a.userid.localeCompare(b.userid));
      const departments = await deps.wecom.listDepartments();
      const fn = pick<(u: unknown[], d: unknown[]) => string | Promise<string>>(t, mod, ['exportWecomCsv', 'toWecomCsv'], 'WeCom export');
      csv = await fn(users, departments);
    } else {
      const accounts: import('../../functions/mailbox/directory').MailboxAccount[] = [];
      let cursor: string | undefined;
      do {
        const page = await deps.mailbox.listPage(cursor);
        accounts.push(...page.accounts);
        bar.update(t('cli.progress.mailbox'), accounts.length);
        cursor = page.next;
      } while (cursor);
      const fn = pick<(a: unknown[]) => string | Promise<string>>(t, mod, ['exportM365Csv', 'exportMailboxCsv', 'toM365Csv'], 'Microsoft 365 export');
      csv = await fn(accounts);
    }
  } finally {
    bar.stop();
  }
  if (args.out) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(args.out, csv, { mode: 0o600 });
    io.err(t('cli.csv.written', { file: args.out }));
  } else {
    io.out(csv.trimEnd());
  }
  return EXIT.ok;
}

interface ImportRow {
  userid?: string;
  line?: number;
}
interface ImportResult {
  rows?: ImportRow[];
  errors?: Array<{ line?: number; field?: string; reason?: string; message?: string }>;
}

export async function importCsvCommand(target: CliTarget, args: ImportArgs, io: Io): Promise<number> {
  const t = say(io);
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(args.file!, 'utf8');
  } catch {
    throw new CliError(t('cli.csv.cannotRead', { file: args.file ?? '' }));
  }
  const mod = await csvModule(t);
  const parseFn = pick<(text: string, template?: string) => ImportResult | Promise<ImportResult>>(t, mod, ['importCsv', 'parseImportCsv', 'validateCsv'], 'import/validation');
  const parsed = await parseFn(text, args.template ?? 'wecom');
  const errors = parsed.errors ?? [];
  const rows = parsed.rows ?? [];
  const userids = [...new Set(rows.map((r) => r.userid).filter((u): u is string => Boolean(u)))];
  const result: Record<string, unknown> = { rows: rows.length, people: userids.length, errors, applied: false };
  if (!errors.length && args.apply) {
    const deps = await target.engineDeps();
    const { syncSubject } = await import('../../functions/sync/engine');
    const { pool } = await import('../../functions/sync/reconcile');
    const runId = `import-${Date.now().toString(36)}`;
    const outcomes: Array<{ subject: string; actions: string[]; error?: string }> = [];
    const bar = progress(io);
    let done = 0;
    try {
      await pool(bootstrapMessages(userids, await operatorOf(target, args.region), runId), 4, async (m) => {
        try {
          const o = await syncWhenFree(() => syncSubject(m, deps));
          outcomes.push({ subject: m.subject, actions: o.actions });
        } catch (err) {
          outcomes.push({ subject: m.subject, actions: ['failed'], error: redactText((err as Error).message) });
        }
        bar.update(t('cli.progress.bootstrap'), ++done, userids.length);
      });
    } finally {
      bar.stop();
    }
    result.applied = true;
    result.outcomes = outcomes;
  }
  if (args.json) io.out(JSON.stringify(result, null, 2));
  else {
    io.out(t('cli.import.summary', { rows: rows.length, people: userids.length, errors: errors.length }));
    table(io, errors.map((e) => ({ line: e.line ?? '', field: e.field ?? '', problem: e.reason ?? e.message ?? '' })), ['line', 'field', 'problem'], 100);
    if (result.outcomes) table(io, result.outcomes as Array<Record<string, unknown>>, ['subject', 'actions', 'error']);
    else if (!errors.length) io.out(t('cli.import.valid'));
  }
  if (errors.length) return EXIT.failure;
  const failed = ((result.outcomes as Array<{ error?: string }> | undefined) ?? []).some((o) => o.error);
  return failed ? EXIT.failure : EXIT.ok;
}

// ------------------------------------------------------------------ console

export interface ConsoleArgs {
  /** TCP port on 127.0.0.1 (default 0: any free port). */
  port?: number;
  /** Try to open the browser (default true). */
  open?: boolean;
  /** The program that opens a URL (default: xdg-open, open on macOS, explorer on Windows). */
  opener?: string;
  region?: string;
  /** Stops the console (default: SIGINT / SIGTERM). */
  signal?: AbortSignal;
}

/**
 * `console`: the operator console on 127.0.0.1 of this machine, against the same target as
 * every other command (the local stack, or a deployed stack through the operator's own AWS
 * credentials — nothing is deployed, no port is opened to the network). Prints a one-time
 * sign-in URL, tries to open a browser, and runs until interrupted.
 */
export async function consoleCommand(target: CliTarget, args: ConsoleArgs, io: Io): Promise<number> {
  const t = say(io);
  const { createConsole, serveConsole } = await import('../console/index');
  const operator = await operatorIdentity(target, 'console', args.region ? { region: args.region } : {});
  const app = createConsole({ target, operator });
  const server = await serveConsole({ console: app, port: args.port ?? 0 });
  const url = app.loginUrl(server.origin);
  io.out(t('cli.console.started', { target: target.name, operator }));
  io.out(t('cli.console.url', { url }));
  io.out(t('cli.console.stop'));
  if (args.open !== false) openBrowser(url, args.opener);
  await new Promise<void>((done) => {
    const stop = () => done();
    if (args.signal) {
      if (args.signal.aborted) return done();
      args.signal.addEventListener('abort', stop, { once: true });
    } else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
  });
  await server.close();
  return EXIT.ok;
}

/** Best effort: a desktop's opener if there is one; a headless machine just uses the printed URL. */
function openBrowser(url: string, opener?: string): void {
  const command = opener ?? (process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open');
  import('node:child_process')
    .then(({ spawn }) => {
      const child = spawn(command, [url], { stdio: 'ignore', detached: true });
      child.on('error', () => undefined); // no opener installed: the URL is printed
      child.unref();
    })
    .catch(() => undefined);
}

/**
 * The CLI runs the engine beside the queue's worker: a person the worker is syncing right now
 * (its intent is young: SubjectBusyError) is tried again each second until that run is done
 * or the intent's lease ends.
 */
async function syncWhenFree<T>(run: () => Promise<T>): Promise<T> {
  const { SubjectBusyError } = await import('../../functions/sync/errors');
  for (;;) {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof SubjectBusyError)) throw err;
      await new Promise((r) => setTimeout(r, Math.min(1_000, err.retryAfterMs)));
    }
  }
}
