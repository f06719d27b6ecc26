/**
 * The Overview's numbers, read from the audit log (the one record of what the sync did, on
 * both the local stack and a deployment): events per hour over the last day, actions per day
 * over the last week, and the drift counts of the last reconcile runs.
 *
 * "Events" are the distinct events that led to an audited action — an event that changed
 * nothing leaves no audit record, so it is not counted (the page says so). Dry runs are
 * previews, not activity, and are left out. The read is bounded: past `maxRecords` the charts
 * stop at the days already read, newest first, and say they are partial.
 */
import type { AuditAction, AuditLog, AuditRecord } from '../../../functions/store/ports';
import { RECONCILE_SUBJECT } from '../../../functions/sync/reconcile';
import { DRIFT_CLASSES, INFORMATIONAL, type DriftClass } from '../../../functions/sync/report';

export const ACTION_GROUPS = ['onboard', 'update', 'offboard', 'guard', 'problem', 'other'] as const;
export type ActionGroup = (typeof ACTION_GROUPS)[number];

/** Every audit action in a group: a new action fails to compile here until it is placed. */
const GROUP: Record<AuditAction, ActionGroup> = {
  create: 'onboard',
  enable: 'onboard',
  restore: 'onboard',
  update: 'update',
  disable: 'offboard',
  delete: 'offboard',
  held: 'guard',
  approve: 'guard',
  reject: 'guard',
  revert: 'update',
  failed: 'problem',
  refused: 'problem',
  noop: 'other',
  skip: 'other',
};

/** Every audit action (the keys of the grouping, which the compiler keeps complete). */
export const AUDIT_ACTIONS = Object.keys(GROUP) as AuditAction[];

export interface Activity {
  /** The last 24 whole hours and the current one, oldest first. */
  hours: Array<{ start: string; events: number }>;
  /** The last 7 days (UTC), oldest first. */
  days: Array<{ day: string; counts: Record<ActionGroup, number> }>;
  /** The record cap was reached: older days are missing. */
  partial: boolean;
}

export interface ReconcileRun {
  at: string;
  operator: string;
  dryRun: boolean;
  drift: number;
  byClass: Partial<Record<DriftClass, number>>;
  summary?: string;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export async function loadActivity(audit: Pick<AuditLog, 'byTime'>, now: Date, maxRecords = 50_000): Promise<Activity> {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const firstHour = Math.floor(now.getTime() / HOUR) * HOUR - 24 * HOUR;
  const hours = Array.from({ length: 25 }, (_, i) => ({ start: firstHour + i * HOUR, events: new Set<string>() }));
  const days = Array.from({ length: 7 }, (_, i) => ({ day: today - (6 - i) * DAY, counts: emptyCounts() }));
  let read = 0;
  let partial = false;
  // Newest day first, so a cap cuts the old end of the week, never the last hours.
  for (let i = days.length - 1; i >= 0; i--) {
    if (read >= maxRecords) {
      partial = true;
      break;
    }
    const from = new Date(days[i]!.day);
    const to = new Date(Math.min(days[i]!.day + DAY - 1, now.getTime()));
    const records = await audit.byTime(from, to);
    read += records.length;
    for (const r of records) count(r, days[i]!.counts, hours, firstHour);
  }
  return {
    hours: hours.map((h) => ({ start: new Date(h.start).toISOString(), events: h.events.size })),
    days: days.map((d) => ({ day: new Date(d.day).toISOString().slice(0, 10), counts: d.counts })),
    partial,
  };
}

function emptyCounts(): Record<ActionGroup, number> {
  return Object.fromEntries(ACTION_GROUPS.map((g) => [g, 0])) as Record<ActionGroup, number>;
}

function count(r: AuditRecord, day: Record<ActionGroup, number>, hours: Array<{ start: number; events: Set<string> }>, firstHour: number): void {
  if (r.outcome === 'dry-run' || r.subject === RECONCILE_SUBJECT) return;
  day[GROUP[r.action] ?? 'other']++;
  const h = Math.floor((Date.parse(r.at) - firstHour) / HOUR);
  if (h >= 0 && h < hours.length) hours[h]!.events.add(r.eventId ?? `${r.subject}#${r.seq}`);
}

/** The last `n` reconcile runs, newest first, with their drift counts by class. */
export async function loadReconcileRuns(audit: Pick<AuditLog, 'bySubject'>, now: Date, n = 10): Promise<ReconcileRun[]> {
  const records = await audit.bySubject(RECONCILE_SUBJECT, { since: new Date(now.getTime() - 90 * DAY) });
  return records
    .slice(-n)
    .reverse()
    .map((r) => {
      const byClass: Partial<Record<DriftClass, number>> = {};
      for (const c of r.changes ?? []) if ((DRIFT_CLASSES as readonly string[]).includes(c.field) && typeof c.new === 'number') byClass[c.field as DriftClass] = c.new;
      // Counted as the reconcile counts its drift: informational classes (unmanaged accounts) are not drift.
      const drift = Object.entries(byClass).reduce((sum, [cls, v]) => (INFORMATIONAL.has(cls as DriftClass) ? sum : sum + (v ?? 0)), 0);
      return { at: r.at, operator: r.operator, dryRun: r.outcome === 'dry-run', drift, byClass, ...(r.reason ? { summary: r.reason } : {}) };
    });
}
