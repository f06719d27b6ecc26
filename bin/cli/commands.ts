/**
 * The operator CLI's commands, as functions of (target, arguments, io) → exit code, so the
 * e2e test can run them in-process as well as through the binary.
 *
 * Exit codes: 0 success / in sync, 2 drift found (reconcile) or audit trail broken,
 * 1 failure, 64 usage error.
 */
import { userInfo } from 'node:os';
import type { SyncMessage } from '../../functions/queue/messages';
import { runAuditDigest } from '../../functions/audit/run';
import { verifyAudit, type AuditVerification } from '../../functions/audit/verify';
import { redactText } from '../../functions/core/redact';
import type { ChainProblem } from '../../functions/store/audit-chain';
import type { AuditRecord } from '../../functions/store/ports';
import { decideHeld, listHeld, type Verdict } from '../../functions/sync/approvals';
import { checkHealth, type HealthResult } from '../../functions/sync/health';
import type { Subject } from '../../functions/core/model';
import { RECONCILE_SUBJECT, reconcileAll, summary } from '../../functions/sync/reconcile';
import type { ReconcileReport } from '../../functions/sync/report';
import { progress, table, type Io } from './output';
import { CliError, type CliTarget } from './target';

export const EXIT = { ok: 0, failure: 1, drift: 2, usage: 64 } as const;

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

export function operatorName(): string {
  let user = 'unknown';
  try {
    user = process.env.WECOM_SYNC_OPERATOR || userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  return `cli:${user}`;
}

// ------------------------------------------------------------------ reconcile

export interface ReconcileArgs {
  repair?: boolean;
  apply?: boolean;
  confirm?: boolean;
  json?: boolean;
}

export async function reconcileCommand(target: CliTarget, args: ReconcileArgs, io: Io): Promise<number> {
  if ((args.apply || args.confirm) && !args.repair) throw new UsageError('--apply and --confirm only make sense with --repair');
  const bar = progress(io);
  const labels = { wecom: 'WeCom users', mailbox: 'mailbox accounts', repair: 'repair' } as const;
  let report: ReconcileReport;
  try {
    report = await reconcileAll(
      { ...(await target.engineDeps()), reports: await target.reports(), progress: (p) => bar.update(labels[p.phase], p.done, p.total) },
      { repair: args.repair === true, apply: args.apply === true, confirm: args.confirm === true, operator: operatorName() },
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
  io.out(summary(report));
  const rows = report.findings.filter((f) => f.class !== 'unmanaged');
  table(io, rows as unknown as Array<Record<string, unknown>>, report.mode === 'report' ? ['class', 'subject', 'fields', 'detail'] : ['class', 'subject', 'fields', 'repair', 'actions', 'detail']);
  const unmanaged = report.counts.byClass.unmanaged ?? 0;
  if (unmanaged) io.out(`${unmanaged} unmanaged mailbox account(s) (no employeeId): listed in the report, never touched.`);
  if (report.guard?.tripped && !report.guard.confirmed) {
    io.out(
      report.mode === 'repair'
        ? `DELETION GUARD: ${report.guard.destructive} people would be disabled or deleted (limit ${report.guard.limit}); none of those was applied. Re-run with --repair --apply --confirm after checking the report.`
        : `deletion guard would trip: ${report.guard.destructive} people would be disabled or deleted (limit ${report.guard.limit}); applying will need --confirm.`,
    );
  }
  if (report.mode === 'repair-dry-run' && report.drift) io.out('dry run: nothing was written (audited as dry-run). Add --apply to repair.');
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
  if (!args.subject) throw new UsageError('audit needs --subject (e.g. user:zhangsan, party:2, reconcile)');
  let since: Date | undefined;
  if (args.since) {
    since = new Date(args.since);
    if (Number.isNaN(since.getTime())) throw new UsageError(`--since is not an ISO date: ${args.since}`);
  }
  const limit = args.limit ? Number(args.limit) : undefined;
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive integer');
  const [audit, integrity] = await Promise.all([target.audit(), target.auditIntegrity()]);
  const [records, chain] = await Promise.all([audit.bySubject(args.subject, { ...(since ? { since } : {}) }), verifyAudit(integrity.verify, { subject: args.subject })]);
  const shown = limit ? records.slice(-limit) : records;
  const code = chain.ok ? EXIT.ok : EXIT.drift;
  if (args.json) {
    io.out(JSON.stringify({ subject: args.subject, chain, records: shown }, null, 2));
    return code;
  }
  if (!shown.length) io.out(`no audit records for ${args.subject}${since ? ` since ${since.toISOString()}` : ''}`);
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
  if (chain.ok) io.out(`chain: verified (${records.length} record(s) shown of the subject's chain; ${anchor(chain)})`);
  else {
    io.out('CHAIN BROKEN:');
    problemTable(io, chain.problems);
  }
  return code;
}

function anchor(v: AuditVerification): string {
  return v.digest ? `newest signed digest ${v.digest.createdAt}` : 'no signed digest yet: the newest records are not anchored';
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
  if (Boolean(args.all) === Boolean(args.subject)) throw new UsageError('audit verify needs --all or --subject ID (not both)');
  const { verify } = await target.auditIntegrity();
  const result = await verifyAudit(verify, args.subject ? { subject: args.subject } : { all: true });
  const code = result.ok ? EXIT.ok : EXIT.drift;
  if (args.json) {
    io.out(JSON.stringify(result, null, 2));
    return code;
  }
  io.out(`${result.subjects} subject(s) checked against ${anchor(result)}${result.witness ? ` (and the digest of ${result.witness.createdAt} for expired records)` : ''}`);
  if (result.ok) io.out('audit trail: verified');
  else {
    problemTable(io, result.problems);
    io.out(`AUDIT TRAIL BROKEN: ${result.problems.length} problem(s)`);
  }
  return code;
}

/** `audit digest`: sign and store a digest of every chain head now (what the schedule does). */
export async function auditDigestCommand(target: CliTarget, args: { json?: boolean }, io: Io): Promise<number> {
  const { digestJob } = await target.auditIntegrity();
  const result = await runAuditDigest(await digestJob());
  const code = result.problems.length ? EXIT.drift : EXIT.ok;
  if (args.json) {
    io.out(JSON.stringify(result, null, 2));
    return code;
  }
  io.out(`digest ${result.name} stored: ${result.subjects} subject(s), ${result.advanced} head(s) advanced, ${result.recordsRead} record(s) read${result.previous ? ` since ${result.previous}` : ' (the whole retention window)'}`);
  if (result.problems.length) {
    problemTable(io, result.problems);
    io.out(`AUDIT TRAIL BROKEN: ${result.problems.length} problem(s); heads were not advanced past them`);
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
  if (sub === 'list') {
    const letters = await target.listDeadLetters();
    if (args.json) io.out(JSON.stringify(letters, null, 2));
    else if (!letters.length) io.out('no dead letters');
    else {
      table(io, letters as unknown as Array<Record<string, unknown>>, ['id', 'subject', 'source', 'hint', 'receiveCount', 'reason'], 80);
      io.out(`${letters.length} dead letter(s). Redrive with: wecom-sync dlq redrive [--id ID]`);
    }
    return EXIT.ok;
  }
  if (sub === 'redrive') {
    const n = await target.redrive(args.id);
    if (args.json) io.out(JSON.stringify({ redriven: n }));
    else io.out(n ? `${n} message(s) sent back to the work queue` : args.id ? `no dead letter with id ${args.id}` : 'no dead letters to redrive');
    return args.id && n === 0 ? EXIT.failure : EXIT.ok;
  }
  throw new UsageError('dlq needs a subcommand: list | redrive [--id ID]');
}

// ------------------------------------------------------------------ approvals

/** The deletion guard's held actions: list, approve, reject (each decision audited with the operator). */
export async function approvalsCommand(target: CliTarget, sub: string, args: { ids: string[]; all?: boolean; json?: boolean }, io: Io): Promise<number> {
  const deps = await target.engineDeps();
  if (sub === 'list') {
    const held = await listHeld(deps);
    if (args.json) io.out(JSON.stringify(held, null, 2));
    else if (!held.length) io.out('no held actions');
    else {
      table(io, held as unknown as Array<Record<string, unknown>>, ['subject', 'action', 'status', 'since', 'events', 'reason'], 90);
      const waiting = held.filter((h) => h.status === 'held').length;
      io.out(`${waiting} waiting for a decision: wecom-sync approvals approve|reject (--all | ID…)`);
    }
    return EXIT.ok;
  }
  const subjects = args.all ? 'all' : args.ids.map((id) => (id.startsWith('user:') ? id : `user:${id}`) as Subject);
  const results = await decideHeld(deps, sub as Verdict, operatorName(), subjects);
  if (args.json) io.out(JSON.stringify(results, null, 2));
  else if (!results.length) io.out('nothing held');
  else {
    table(io, results as unknown as Array<Record<string, unknown>>, ['subject', 'outcome']);
    if (sub === 'approve' && results.some((r) => r.outcome === 'approved')) io.out('approved runs queued: the sync applies what is still needed.');
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
  io.out(`target:          ${result.target}`);
  if (result.queue) io.out(`queue:           ${result.queue.depth} waiting, ${result.queue.deadLetters} dead letter(s)`);
  io.out(`subscription:    ${result.subscription ? `${result.subscription.id} expires ${result.subscription.expiresAt} (${result.subscription.hoursLeft} h)` : 'none'}`);
  io.out(`last reconcile:  ${last ? `${last.at} by ${last.operator}: ${last.reason ?? last.action}` : 'never (in the last 90 days)'}`);
  io.out('');
  table(io, health.checks.map((c) => ({ check: c.name, status: c.ok ? 'ok' : c.severity === 'warn' ? 'WARN' : 'FAILED', detail: c.detail })), ['check', 'status', 'detail'], 100);
  io.out(health.ok ? 'healthy' : 'UNHEALTHY');
  return code;
}

// ------------------------------------------------------------------ local helpers (README demo)

/** Print a Graph access token of the local stack's (simulated) Graph, for curl. */
export async function localTokenCommand(target: CliTarget, io: Io): Promise<number> {
  if (!target.local) throw new CliError('local-token works against the local stack only');
  io.out(await target.local.graphToken());
  return EXIT.ok;
}

/** Disable a person's mailbox account in the local stack's Graph: the offboarding demo. */
export async function demoOffboardCommand(target: CliTarget, userid: string | undefined, io: Io): Promise<number> {
  if (!target.local) throw new CliError('demo-offboard works against the local stack only');
  if (!userid) throw new UsageError('demo-offboard needs a WeCom userid');
  const graph = await target.local.graph();
  const account = await graph.findByEmployeeId(userid);
  if (!account) throw new CliError(`no mailbox account carries employeeId ${userid}`);
  await graph.disable(account.id);
  io.out(`mailbox account ${account.id} of ${userid} disabled; the Graph notification will offboard the WeCom member`);
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
async function csvModule(): Promise<CsvModule> {
  try {
    return (await import(/* @vite-ignore */ ['../../functions/sync', 'csv'].join('/'))) as CsvModule;
  } catch {
    throw new CliError('CSV support (functions/sync/csv.ts) is not available in this build');
  }
}
function pick<T>(mod: CsvModule, names: string[], what: string): T {
  for (const n of names) if (typeof mod[n] === 'function') return mod[n] as T;
  throw new CliError(`functions/sync/csv.ts has no ${what} (${names.join(' / ')})`);
}

export async function exportCsvCommand(target: CliTarget, args: ExportArgs, io: Io): Promise<number> {
  const source = (args.source ?? 'wecom') as 'wecom' | 'mailbox';
  const mod = await csvModule();
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
        bar.update('WeCom users', ++done, ids.length);
      });
      users.sort((a, b) => a.userid.localeCompare(b.userid));
      const departments = await deps.wecom.listDepartments();
      const fn = pick<(u: unknown[], d: unknown[]) => string | Promise<string>>(mod, ['exportWecomCsv', 'toWecomCsv'], 'WeCom export');
      csv = await fn(users, departments);
    } else {
      const accounts: import('../../functions/mailbox/directory').MailboxAccount[] = [];
      let cursor: string | undefined;
      do {
        const page = await deps.mailbox.listPage(cursor);
        accounts.push(...page.accounts);
        bar.update('mailbox accounts', accounts.length);
        cursor = page.next;
      } while (cursor);
      const fn = pick<(a: unknown[]) => string | Promise<string>>(mod, ['exportM365Csv', 'exportMailboxCsv', 'toM365Csv'], 'Microsoft 365 export');
      csv = await fn(accounts);
    }
  } finally {
    bar.stop();
  }
  if (args.out) {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(args.out, csv, { mode: 0o600 });
    io.err(`written to ${args.out}`);
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
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(args.file!, 'utf8');
  } catch {
    throw new CliError(`cannot read ${args.file}`);
  }
  const mod = await csvModule();
  const parseFn = pick<(text: string, template?: string) => ImportResult | Promise<ImportResult>>(mod, ['importCsv', 'parseImportCsv', 'validateCsv'], 'import/validation');
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
      await pool(bootstrapMessages(userids, operatorName(), runId), 4, async (m) => {
        try {
          const o = await syncSubject(m, deps);
          outcomes.push({ subject: m.subject, actions: o.actions });
        } catch (err) {
          outcomes.push({ subject: m.subject, actions: ['failed'], error: redactText((err as Error).message) });
        }
        bar.update('bootstrap', ++done, userids.length);
      });
    } finally {
      bar.stop();
    }
    result.applied = true;
    result.outcomes = outcomes;
  }
  if (args.json) io.out(JSON.stringify(result, null, 2));
  else {
    io.out(`${rows.length} row(s), ${userids.length} people, ${errors.length} error(s)`);
    table(io, errors.map((e) => ({ line: e.line ?? '', field: e.field ?? '', problem: e.reason ?? e.message ?? '' })), ['line', 'field', 'problem'], 100);
    if (result.outcomes) table(io, result.outcomes as Array<Record<string, unknown>>, ['subject', 'actions', 'error']);
    else if (!errors.length) io.out('valid. Dry run: nothing written; add --apply to bootstrap the mailbox accounts through the sync engine.');
  }
  if (errors.length) return EXIT.failure;
  const failed = ((result.outcomes as Array<{ error?: string }> | undefined) ?? []).some((o) => o.error);
  return failed ? EXIT.failure : EXIT.ok;
}
