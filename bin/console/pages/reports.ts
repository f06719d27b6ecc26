/**
 * Reports: the reconcile reports as tables, and their CSV. The JSON report is the source; the
 * CSV is rebuilt from it with the headers in the viewer's language (the report module's own
 * `reportCsv`, so cells are neutralized against spreadsheet formulas exactly as when written).
 * Report names (times) are the only thing in these URLs, plus a class filter.
 */
import { DRIFT_CLASSES, reportCsv, type DriftClass, type ReconcileReport } from '../../../functions/sync/report';
import { isReportName, reportTime, type ReportArchive } from '../report-archive';
import { html, type Html } from '../html';
import { badge, label, time, type PageContext } from '../layout';
import { page, type Outcome, type Request } from './types';

const LISTED = 30;

async function archiveOf(req: Request): Promise<ReportArchive | undefined> {
  const target = await req.services.target();
  return target.reportArchive ? target.reportArchive() : undefined;
}

async function readReport(archive: ReportArchive, name: string): Promise<ReconcileReport | undefined> {
  const text = await archive.read(name, 'json');
  if (!text) return undefined;
  try {
    return JSON.parse(text) as ReconcileReport;
  } catch {
    return undefined;
  }
}

export async function reports(req: Request): Promise<Outcome> {
  const { ctx } = req;
  const { t } = ctx;
  const archive = await archiveOf(req);
  if (!archive) return page(t('console.reports.title'), 'reports', html`<p>${t('console.reports.unavailable')}</p>`);
  const names = (await archive.list()).slice(0, LISTED);
  if (!names.length) return page(t('console.reports.title'), 'reports', html`<p>${t('console.reports.none')}</p><p class="muted">${t('console.overview.reconcileHint')}</p>`);
  const loaded = await Promise.all(names.map(async (name) => ({ name, report: await readReport(archive, name) })));
  const body = html`<table class="data"><thead><tr><th>${t('col.at')}</th><th>${t('col.mode')}</th><th>${t('console.reports.people')}</th><th>${t('console.reports.inSync')}</th><th>${t('console.overview.driftTotal')}</th><th>${t('console.reports.download')}</th></tr></thead><tbody>
${loaded.map(
  ({ name, report: r }) =>
    html`<tr><td><a href="${ctx.base}/reports/${name}">${time(reportTime(name))}</a></td><td>${r ? t(`report.mode.${r.mode}`) : ''}</td><td class="num">${r?.counts.wecomPeople ?? ''}</td><td class="num">${r?.counts.inSync ?? ''}</td><td class="num">${r ? (r.drift ? badge(String(r.drift), 'warn') : badge('0', 'ok')) : ''}</td><td>${downloads(ctx, name)}</td></tr>`,
)}
</tbody></table>`;
  return page(t('console.reports.title'), 'reports', body);
}

function downloads(ctx: PageContext, name: string): Html {
  return html`<a href="${ctx.base}/reports/${name}/csv" download>CSV</a> · <a href="${ctx.base}/reports/${name}/json" download>JSON</a>`;
}

export async function report(req: Request): Promise<Outcome> {
  const { ctx, query } = req;
  const { t } = ctx;
  const name = req.params[0] ?? '';
  const archive = await archiveOf(req);
  const r = archive && isReportName(name) ? await readReport(archive, name) : undefined;
  if (!r) return { kind: 'not-found' };
  const filter = query.get('class');
  const cls = (DRIFT_CLASSES as readonly string[]).includes(filter ?? '') ? (filter as DriftClass) : undefined;
  const findings = cls ? r.findings.filter((f) => f.class === cls) : r.findings;
  const counts = DRIFT_CLASSES.filter((c) => r.counts.byClass[c]);
  const body = html`<p>${downloads(ctx, name)}</p>
<dl class="facts">
<dt>${t('col.mode')}</dt><dd>${t(`report.mode.${r.mode}`)}</dd>
<dt>${t('console.reports.started')}</dt><dd>${time(r.startedAt)}</dd>
<dt>${t('console.reports.people')}</dt><dd>${r.counts.wecomPeople}</dd>
<dt>${t('console.reports.accounts')}</dt><dd>${r.counts.managedAccounts} / ${r.counts.mailboxAccounts}</dd>
<dt>${t('console.reports.inSync')}</dt><dd>${r.counts.inSync}</dd>
${r.guard ? html`<dt>${t('console.reports.guard')}</dt><dd>${r.guard.tripped ? badge(t('console.reports.guardTripped', { n: r.guard.destructive, limit: r.guard.limit }), 'warn') : badge(t('console.reports.guardOk', { n: r.guard.destructive, limit: r.guard.limit }), 'ok')}</dd>` : ''}
</dl>
<nav class="filters" aria-label="${t('console.reports.filter')}"><a href="${ctx.base}/reports/${name}"${cls ? '' : html` aria-current="true"`}>${t('console.reports.all', { n: r.findings.length })}</a>
${counts.map((c) => html` · <a href="${ctx.base}/reports/${name}?class=${c}"${cls === c ? html` aria-current="true"` : ''} title="${c}">${t(`drift.${c}`)} (${r.counts.byClass[c]})</a>`)}</nav>
${
  findings.length
    ? html`<div class="scroll"><table class="data"><thead><tr><th>${t('col.class')}</th><th>${t('col.subject')}</th><th>${t('col.fields')}</th><th>${t('col.detail')}</th><th>${t('col.repair')}</th><th>${t('col.actions')}</th></tr></thead><tbody>
${findings.map(
  (f) =>
    html`<tr><td title="${f.class}">${t(`drift.${f.class}`)}</td><td>${f.subject}</td><td>${(f.fields ?? []).map((x) => label(ctx, `field.${x}`, x)).join(', ')}</td><td>${f.detail ?? ''}</td><td>${f.repair ? label(ctx, `report.repair.${f.repair}`, f.repair) : ''}</td><td>${(f.actions ?? []).map((a) => label(ctx, `action.${a}`, a)).join(', ')}</td></tr>`,
)}
</tbody></table></div>`
    : html`<p>${badge(t('console.reports.noFindings'), 'ok')}</p>`
}`;
  return page(t('console.reports.reportTitle', { at: reportTime(name).slice(0, 19).replace('T', ' ') }), 'reports', body);
}

export async function download(req: Request, kind: 'csv' | 'json'): Promise<Outcome> {
  const name = req.params[0] ?? '';
  const archive = await archiveOf(req);
  if (!archive || !isReportName(name)) return { kind: 'not-found' };
  if (kind === 'json') {
    const text = await archive.read(name, 'json');
    return text ? { kind: 'download', filename: `reconcile-${name}.json`, contentType: 'application/json; charset=utf-8', body: text } : { kind: 'not-found' };
  }
  const r = await readReport(archive, name);
  return r ? { kind: 'download', filename: `reconcile-${name}.csv`, contentType: 'text/csv; charset=utf-8', body: reportCsv(r, req.ctx.locale) } : { kind: 'not-found' };
}
