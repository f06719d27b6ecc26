/**
 * The reconcile report: one row per finding, written as CSV (for people) and JSON (for
 * scripts) to a ReportSink. Rows never carry a mobile, address or other sensitive value in
 * clear: findings name people by userid / account id and fields by name; values that help
 * an operator tell two cases apart are masked (maskPhone / maskEmail) before they get here.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { message, type Locale } from '../core/messages';
import { redactText } from '../core/redact';

export const DRIFT_CLASSES = [
  'missing-in-mailbox',
  'gated',
  // lifecycle.source 'mailbox': the mailbox account is the record
  'not-yet-linked',
  'missing-in-wecom',
  'incomplete',
  'userid-collision',
  'userid-invalid',
  'extra-in-mailbox',
  'fields-differ',
  'offboarded-in-mailbox',
  'disabled-in-wecom',
  'duplicate-mobile',
  'duplicate-email',
  'invalid-field',
  'department-unmapped',
  'department-duplicate-path',
  'mailbox-department-unknown',
  'unmanaged',
] as const;
export type DriftClass = (typeof DRIFT_CLASSES)[number];

/** Classes a repair can act on (through the engine). The others are reported for a human. */
export const REPAIRABLE: ReadonlySet<DriftClass> = new Set<DriftClass>([
  'missing-in-mailbox',
  // Held by the onboarding gate because the mailbox creation failed: a repair retries it.
  'gated',
  'extra-in-mailbox',
  'fields-differ',
  'offboarded-in-mailbox',
  'disabled-in-wecom',
  // Born through the engine (derive, link, create disabled), recreated, or enabled once complete.
  'not-yet-linked',
  'missing-in-wecom',
  'incomplete',
]);

/** Listed for information: an account without employeeId is not ours and is never touched. */
export const INFORMATIONAL: ReadonlySet<DriftClass> = new Set<DriftClass>(['unmanaged']);

export type RepairStatus = 'applied' | 'dry-run' | 'refused' | 'failed' | 'unchanged';

export interface Finding {
  class: DriftClass;
  /** `user:<id>`, `party:<id>` or `mailbox:<provider>:<accountId>`. */
  subject: string;
  userid?: string;
  accountId?: string;
  departmentId?: number;
  /** Field names that differ (fields-differ). */
  fields?: string[];
  /** Human detail, masked (never a clear mobile or address). */
  detail?: string;
  /** What the repair did (repair mode only). */
  repair?: RepairStatus;
  /** The engine's audited actions for this subject in the repair. */
  actions?: string[];
}

export interface ReconcileCounts {
  /** People in WeCom (after scope) and mailbox accounts listed. */
  wecomPeople: number;
  mailboxAccounts: number;
  managedAccounts: number;
  departments: number;
  inSync: number;
  byClass: Partial<Record<DriftClass, number>>;
}

export interface GuardResult {
  /** People the repair would disable or delete. */
  destructive: number;
  limit: number;
  tripped: boolean;
  confirmed: boolean;
}

export interface ReconcileReport {
  runId: string;
  startedAt: string;
  finishedAt: string;
  mode: 'report' | 'repair-dry-run' | 'repair';
  counts: ReconcileCounts;
  /** Drift that a repair could act on (excludes informational classes). */
  drift: number;
  guard?: GuardResult;
  findings: Finding[];
  /** Where the report went (sink locations). */
  locations?: string[];
}

export interface ReportFiles {
  csv: string;
  json: string;
}

/** Where reports go: S3 in AWS (report-s3.ts), `.data/reports/` locally. */
export interface ReportSink {
  /** `name` is a file stem like `2026-11-01T18-00-00Z`; returns the written locations. */
  write(name: string, files: ReportFiles): Promise<string[]>;
}

/**
 * A cell a spreadsheet would evaluate (=, +, -, @, tab, CR) is prefixed with a quote, so a
 * department or job title typed by a WeCom admin cannot become a formula in Excel (CSV
 * injection, OWASP). Redaction runs again as a last line of defence.
 */
export function neutralizeCell(value: string): string {
  const clean = redactText(value);
  return /^[=+\-@\t\r]/.test(clean) ? `'${clean}` : clean;
}

export const CSV_COLUMNS = ['class', 'subject', 'userid', 'accountId', 'departmentId', 'fields', 'detail', 'repair', 'actions'] as const;

/** The header row in the reader's language (English: the column names themselves); order and meaning never change. */
export function csvHeader(locale: Locale = 'en'): string[] {
  return CSV_COLUMNS.map((c) => message(locale, `report.column.${c}`));
}

export function reportCsv(report: ReconcileReport, locale: Locale = 'en'): string {
  const rows = report.findings.map((f) =>
    [f.class, f.subject, f.userid ?? '', f.accountId ?? '', f.departmentId?.toString() ?? '', (f.fields ?? []).join(' '), f.detail ?? '', f.repair ?? '', (f.actions ?? []).join(' ')].map(neutralizeCell),
  );
  // A UTF-8 BOM so Excel opens Chinese names correctly.
  return '\ufeff' + stringify([csvHeader(locale), ...rows]);
}

export function reportJson(report: ReconcileReport): string {
  return JSON.stringify(report, (_k, v: unknown) => (typeof v === 'string' ? redactText(v) : v), 2);
}

export function reportName(at: Date): string {
  // Milliseconds kept: two runs in the same second must not overwrite each other's report.
  return at.toISOString().replace(/:/g, '-');
}

/** Local sink: `<dir>/<name>.csv` and `.json`, readable by the owner only. */
export class LocalReportSink implements ReportSink {
  constructor(private readonly dir: string) {}

  async write(name: string, files: ReportFiles): Promise<string[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const csv = join(this.dir, `${name}.csv`);
    const json = join(this.dir, `${name}.json`);
    await writeFile(csv, files.csv, { mode: 0o600 });
    await writeFile(json, files.json, { mode: 0o600 });
    return [csv, json];
  }
}

/** Keeps reports in memory (tests, and callers that only want the object). */
export class MemoryReportSink implements ReportSink {
  readonly written: Array<{ name: string } & ReportFiles> = [];
  async write(name: string, files: ReportFiles): Promise<string[]> {
    this.written.push({ name, ...files });
    return [`memory:${name}.csv`, `memory:${name}.json`];
  }
}
