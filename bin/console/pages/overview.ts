/**
 * Overview: is the sync healthy (tokens, subscription, dead letters, queue), what did it do
 * (events per hour, actions per day), and what did the last reconciles find. Each panel loads
 * on its own: one failing dependency (say, Graph unreachable) shows as that panel's error,
 * not as a broken page.
 */
import { isMessageKey, type MessageKey } from '../../../functions/core/messages';
import { redactText } from '../../../functions/core/redact';
import { checkHealth, type HealthResult } from '../../../functions/sync/health';
import { listHeld } from '../../../functions/sync/approvals';
import { DRIFT_CLASSES } from '../../../functions/sync/report';
import { barChart, legend } from '../charts';
import { ACTION_GROUPS, loadActivity, loadReconcileRuns, type Activity, type ReconcileRun } from '../data/activity';
import { html, type Html } from '../html';
import { badge, time, type PageContext } from '../layout';
import { page, type Outcome, type Request } from './types';

export async function overview(req: Request): Promise<Outcome> {
  const { ctx, services } = req;
  const target = await services.target();
  const now = services.now();
  const [health, activity, runs, held] = await Promise.allSettled([
    target.health().then(checkHealth),
    target.audit().then((a) => loadActivity(a, now)),
    target.audit().then((a) => loadReconcileRuns(a, now)),
    target.engineDeps().then((d) => listHeld(d)),
  ]);
  const body = html`<div class="grid">
${panel(ctx, 'console.overview.health', health, (h) => healthPanel(ctx, h, held.status === 'fulfilled' ? held.value.filter((x) => x.status === 'held').length : undefined))}
${panel(ctx, 'console.overview.lastReconcile', runs, (r) => lastReconcile(ctx, r))}
</div>
${panel(ctx, 'console.overview.activity', activity, (a) => activityPanel(ctx, a))}
${panel(ctx, 'console.overview.drift', runs, (r) => driftPanel(ctx, r))}`;
  return page(ctx.t('console.overview.title'), 'overview', body);
}

function panel<T>(ctx: PageContext, title: MessageKey, r: PromiseSettledResult<T>, render: (v: T) => Html): Html {
  const inner =
    r.status === 'fulfilled'
      ? render(r.value)
      : html`<p class="error">${ctx.t('console.error.panel')}: ${redactText(r.reason instanceof Error ? `${r.reason.name}: ${r.reason.message}` : String(r.reason))}</p>`;
  return html`<section class="panel"><h2>${ctx.t(title)}</h2>${inner}</section>`;
}

function checkName(ctx: PageContext, name: string): string {
  const key = `console.check.${name}`;
  return isMessageKey(key) ? ctx.t(key) : name;
}

function healthPanel(ctx: PageContext, h: HealthResult, heldWaiting: number | undefined): Html {
  const { t, base } = ctx;
  return html`<p>${h.ok ? badge(t('console.health.ok'), 'ok') : badge(t('console.health.failed'), 'bad')} <span class="muted">${t('console.health.checkedAt')} ${time(h.checkedAt)}</span></p>
<table class="data"><thead><tr><th>${t('col.check')}</th><th>${t('col.status')}</th><th>${t('col.detail')}</th></tr></thead><tbody>
${h.checks.map(
  (c) =>
    html`<tr><td>${checkName(ctx, c.name)}</td><td>${c.ok ? badge(t('console.health.checkOk'), 'ok') : c.severity === 'warn' ? badge(t('console.health.checkWarn'), 'warn') : badge(t('console.health.checkFailed'), 'bad')}</td><td>${c.detail}</td></tr>`,
)}
</tbody></table>
<dl class="facts">
${h.queue ? html`<dt>${t('console.overview.queueDepth')}</dt><dd>${h.queue.depth}</dd><dt>${t('console.overview.deadLetters')}</dt><dd><a href="${base}/dead-letters">${h.queue.deadLetters}</a></dd>` : ''}
${heldWaiting !== undefined ? html`<dt>${t('console.overview.heldWaiting')}</dt><dd><a href="${base}/approvals">${heldWaiting}</a></dd>` : ''}
<dt>${t('console.overview.subscription')}</dt><dd>${h.subscription ? html`${t('console.overview.subscriptionExpires')} ${time(h.subscription.expiresAt)} (${t('console.overview.hoursLeft', { hours: h.subscription.hoursLeft })})` : t('console.overview.noSubscription')}</dd>
</dl>`;
}

function lastReconcile(ctx: PageContext, runs: ReconcileRun[]): Html {
  const { t, base } = ctx;
  const last = runs[0];
  if (!last) return html`<p>${t('console.overview.neverReconciled')}</p><p class="muted">${t('console.overview.reconcileHint')}</p>`;
  return html`<dl class="facts">
<dt>${t('col.at')}</dt><dd>${time(last.at)}</dd>
<dt>${t('col.operator')}</dt><dd>${last.operator}</dd>
<dt>${t('console.overview.driftTotal')}</dt><dd>${last.drift ? badge(String(last.drift), 'warn') : badge('0', 'ok')}${last.dryRun ? html` ${badge(t('console.outcome.dry-run'))}` : ''}</dd>
</dl>
<p><a href="${base}/reports">${t('console.overview.toReports')}</a></p>`;
}

function activityPanel(ctx: PageContext, a: Activity): Html {
  const { t } = ctx;
  const hourly = barChart({
    title: t('console.overview.eventsPerHour'),
    labelEvery: 6,
    bars: a.hours.map((h) => ({
      label: `${h.start.slice(11, 16)}`,
      time: { iso: h.start, fmt: 'hour' as const },
      segments: [{ value: h.events, cls: 's-events', title: t('console.chart.events', { n: h.events }) }],
    })),
  });
  const daily = barChart({
    title: t('console.overview.actionsPerDay'),
    bars: a.days.map((d) => ({
      label: d.day.slice(5),
      time: { iso: `${d.day}T00:00:00.000Z`, fmt: 'date' as const },
      segments: ACTION_GROUPS.map((g) => ({ value: d.counts[g], cls: `s-${g}`, title: `${t(`console.group.${g}`)}: ${d.counts[g]}` })),
    })),
  });
  return html`<div class="charts">
<figure><figcaption>${t('console.overview.eventsPerHour')}</figcaption>${hourly}<p class="muted small">${t('console.overview.eventsHint')}</p></figure>
<figure><figcaption>${t('console.overview.actionsPerDay')}</figcaption>${daily}${legend(ACTION_GROUPS.map((g) => ({ cls: `s-${g}`, label: t(`console.group.${g}`) })))}</figure>
</div>
${a.partial ? html`<p class="warn">${t('console.overview.partial')}</p>` : ''}`;
}

function driftPanel(ctx: PageContext, runs: ReconcileRun[]): Html {
  const { t } = ctx;
  if (!runs.length) return html`<p>${t('console.overview.neverReconciled')}</p>`;
  const oldestFirst = [...runs].reverse();
  const chart = barChart({
    title: t('console.overview.drift'),
    height: 140,
    bars: oldestFirst.map((r) => ({
      label: r.at.slice(5, 10),
      time: { iso: r.at, fmt: 'day' as const },
      segments: [{ value: r.drift, cls: 's-drift', title: t('console.chart.drift', { n: r.drift }) }],
    })),
  });
  const classes = DRIFT_CLASSES.filter((c) => runs.some((r) => r.byClass[c]));
  return html`${chart}
<div class="scroll"><table class="data"><thead><tr><th>${t('col.at')}</th>${classes.map((c) => html`<th title="${c}">${t(`drift.${c}`)}</th>`)}<th>${t('console.overview.driftTotal')}</th></tr></thead><tbody>
${runs.map((r) => html`<tr><td>${time(r.at)}${r.dryRun ? html` ${badge(t('console.outcome.dry-run'))}` : ''}</td>${classes.map((c) => html`<td class="num">${r.byClass[c] ?? ''}</td>`)}<td class="num">${r.drift}</td></tr>`)}
</tbody></table></div>`;
}
