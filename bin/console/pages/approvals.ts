/**
 * Approvals: the destructive actions the event-path deletion guard holds, and the operator's
 * decision on them — the same functions as `wecom-sync approvals` (functions/sync/approvals.ts),
 * so each decision is a state write plus an audit record carrying the operator's identity
 * (never a name from the form: see ../identity.ts).
 */
import type { Subject } from '../../../functions/core/model';
import { decideHeld, listHeld, type Verdict } from '../../../functions/sync/approvals';
import { html } from '../html';
import { badge, label, personLink, postForm, time } from '../layout';
import { page, redirectTo, type Outcome, type Request } from './types';

export async function approvals(req: Request): Promise<Outcome> {
  const { ctx, services } = req;
  const { t } = ctx;
  const held = await listHeld(await (await services.target()).engineDeps());
  const waiting = held.filter((h) => h.status === 'held');
  if (!held.length) return page(t('console.approvals.title'), 'approvals', html`<p>${badge(t('console.approvals.none'), 'ok')}</p><p class="muted">${t('console.approvals.explain')}</p>`);
  const rows = held.map(
    (h) => html`<tr>
<td>${h.status === 'held' ? html`<input type="checkbox" name="ref" value="${ctx.refs.seal(h.subject)}" aria-label="${t('console.approvals.select', { userid: h.subject.slice(5) })}">` : ''}</td>
<td>${h.subject.startsWith('user:') ? personLink(ctx, h.subject as `user:${string}`) : h.subject}</td>
<td>${label(ctx, `held.action.${h.action}`, h.action)}</td>
<td>${badge(t(`held.status.${h.status}`), h.status === 'held' ? 'warn' : 'info')}${h.decidedBy ? html` <span class="muted small">${h.decidedBy}</span>` : ''}</td>
<td>${time(h.since)}</td><td class="num">${h.events}</td><td>${h.reason}</td></tr>`,
  );
  const body = html`<p class="muted">${t('console.approvals.explain')}</p>
${postForm(
  ctx,
  '/approvals',
  html`<table class="data"><thead><tr><th></th><th>${t('col.subject')}</th><th>${t('col.action')}</th><th>${t('col.status')}</th><th>${t('col.since')}</th><th>${t('col.events')}</th><th>${t('col.reason')}</th></tr></thead><tbody>${rows}</tbody></table>
${
  waiting.length
    ? html`<div class="actions">
<button type="submit" name="verdict" value="approve" class="primary">${t('console.approvals.approveSelected')}</button>
<button type="submit" name="verdict" value="reject">${t('console.approvals.rejectSelected')}</button>
<span class="sep"></span>
<button type="submit" name="verdict" value="approve-all">${t('console.approvals.approveAll', { n: waiting.length })}</button>
<button type="submit" name="verdict" value="reject-all">${t('console.approvals.rejectAll', { n: waiting.length })}</button>
</div><p class="muted small">${t('console.approvals.audited')}</p>`
    : ''
}`,
  { confirm: t('console.approvals.confirm') },
)}`;
  return page(t('console.approvals.title'), 'approvals', body);
}

export async function decide(req: Request): Promise<Outcome> {
  const { ctx, services, form } = req;
  const { t } = ctx;
  const raw = form?.get('verdict') ?? '';
  const verdict: Verdict | undefined = raw.startsWith('approve') ? 'approve' : raw.startsWith('reject') ? 'reject' : undefined;
  if (!verdict) return redirectTo(`${ctx.base}/approvals`);
  const all = raw.endsWith('-all');
  const subjects = (form?.getAll('ref') ?? []).map((r) => ctx.refs.open(r)).filter((s): s is Subject => s !== undefined && s.startsWith('user:'));
  if (!all && !subjects.length) {
    ctx.session!.flash = { kind: 'error', text: t('console.approvals.noneSelected') };
    return redirectTo(`${ctx.base}/approvals`);
  }
  const deps = await (await services.target()).engineDeps();
  const results = await decideHeld(deps, verdict, await services.operator(), all ? 'all' : subjects);
  const decided = results.filter((r) => r.outcome !== 'not-held').length;
  const notHeld = results.length - decided;
  ctx.session!.flash = {
    kind: notHeld ? 'error' : 'ok',
    text: `${t(verdict === 'approve' ? 'console.approvals.approved' : 'console.approvals.rejected', { n: decided })}${notHeld ? ` ${t('console.approvals.notHeld', { n: notHeld })}` : ''}`,
  };
  return redirectTo(`${ctx.base}/approvals`);
}
