/**
 * People: search (by POST — a mobile never appears in a URL), a person's page (both sides,
 * the state, the verified audit trail), and "Sync now" (dry-run preview → confirm → apply).
 * Person pages are addressed by a sealed reference (../refs.ts), not by userid.
 */
import type { Subject } from '../../../functions/core/model';
import type { AuditRecord, StateRecord } from '../../../functions/store/ports';
import { loadPerson, type PersonView } from '../data/person';
import { searchPeople } from '../data/people';
import { applySync, previewSync, type PlannedStep, type SyncPlan, type SyncResult } from '../data/sync-plan';
import { html, type Html } from '../html';
import { badge, label, personLink, postForm, shownCell, time, type PageContext } from '../layout';
import type { Session } from '../session';
import { page, redirectTo, type Outcome, type Request } from './types';

const MAX_PLANS = 20;

interface PlanEntry {
  plan: SyncPlan;
  result?: SyncResult;
}

function searchForm(ctx: PageContext, query = ''): Html {
  const { t } = ctx;
  return postForm(
    ctx,
    '/people',
    html`<label for="q">${t('console.people.searchLabel')}</label>
<div class="row"><input id="q" name="q" type="search" value="${query}" autocomplete="off" spellcheck="false" required maxlength="100" placeholder="${t('console.people.searchPlaceholder')}">
<button type="submit">${t('console.people.search')}</button></div>
<p class="muted small">${t('console.people.searchHint')}</p>`,
    { cls: 'search' },
  );
}

export function peopleIndex(req: Request): Outcome {
  return page(req.ctx.t('console.people.title'), 'people', searchForm(req.ctx));
}

export async function peopleSearch(req: Request): Promise<Outcome> {
  const { ctx, services, form } = req;
  const { t } = ctx;
  const query = (form?.get('q') ?? '').slice(0, 100);
  const deps = await (await services.target()).engineDeps();
  const { hits, more } = await searchPeople(deps, query);
  const results = hits.length
    ? html`<table class="data"><thead><tr><th>${t('col.userid')}</th><th>${t('col.name')}</th><th>${t('col.mobile')}</th><th>${t('col.departments')}</th><th>${t('col.status')}</th></tr></thead><tbody>
${hits.map(
  (h) =>
    html`<tr><td>${personLink(ctx, h.subject as `user:${string}`, h.userid)}</td><td>${h.name ?? ''}</td><td class="masked">${h.mobile ?? ''}</td><td>${(h.departments ?? []).join(', ')}</td><td>${h.wecomOnly ? badge(t('console.people.wecomOnly'), 'warn') : h.status ? statusBadge(ctx, h.status) : ''}</td></tr>`,
)}
</tbody></table>${more ? html`<p class="muted">${t('console.people.more')}</p>` : ''}`
    : html`<p>${t('console.people.noHits')}</p>`;
  return page(t('console.people.title'), 'people', html`${searchForm(ctx, query)}<section aria-live="polite"><h2>${t('console.people.results', { n: hits.length })}</h2>${results}</section>`);
}

function statusBadge(ctx: PageContext, status: StateRecord['status']): Html {
  const tone = status === 'active' ? 'ok' : status === 'gated' || status === 'pending-delete' ? 'warn' : 'bad';
  return badge(ctx.t(`state.status.${status}`), tone);
}

/** The person behind a ref, or undefined (a stale or forged ref, or not a user). */
function userOf(ctx: PageContext, ref: string | undefined): string | undefined {
  const subject: Subject | undefined = ref ? ctx.refs.open(ref) : undefined;
  return subject?.startsWith('user:') ? subject.slice('user:'.length) : undefined;
}

export async function person(req: Request): Promise<Outcome> {
  const { ctx, services } = req;
  const userid = userOf(ctx, req.params[0]);
  if (!userid) return { kind: 'not-found' };
  const target = await services.target();
  const [deps, audit, integrity] = await Promise.all([target.engineDeps(), target.audit(), target.auditIntegrity()]);
  const view = await loadPerson(deps, audit, integrity.verify, userid);
  return page(ctx.t('console.person.title', { userid }), 'people', personBody(ctx, view, req.params[0]!));
}

function personBody(ctx: PageContext, v: PersonView, ref: string): Html {
  const { t } = ctx;
  const syncNow = postForm(
    ctx,
    `/people/${ref}/preview`,
    html`<button type="submit" class="primary">${t('console.person.syncNow')}</button> <span class="muted small">${t('console.person.syncNowHint')}</span>`,
    { cls: 'inline' },
  );
  return html`<div class="grid">
<section class="panel"><h2>${t('console.person.sides')}</h2>
<dl class="facts">
<dt>${t('console.person.wecom')}</dt><dd>${v.wecom.present ? (v.wecom.enabled ? badge(t('console.person.enabled'), 'ok') : badge(t('console.person.disabled'), 'warn')) : badge(t('console.person.absent'), 'bad')}</dd>
<dt>${t('console.person.mailbox')}</dt><dd>${v.mailbox.present ? html`${v.mailbox.deleted ? badge(t('console.person.deleted'), 'bad') : v.mailbox.enabled ? badge(t('console.person.enabled'), 'ok') : badge(t('console.person.disabled'), 'warn')} <code>${v.mailbox.id}</code>` : badge(t('console.person.absent'), 'bad')}</dd>
</dl>
${syncNow}
</section>
${statePanel(ctx, v.state)}
</div>
<section class="panel"><h2>${t('console.person.fields')}</h2>
<table class="data"><thead><tr><th>${t('col.field')}</th><th>${t('console.person.wecom')}</th><th>${t('console.person.mailbox')}</th><th>${t('console.person.stored')}</th></tr></thead><tbody>
${v.rows.map(
  (r) =>
    html`<tr${r.differs ? html` class="differs"` : ''}><th scope="row">${t(`field.${r.field}`)}${r.differs ? html` ${badge(t('console.person.differs'), 'warn')}` : ''}</th><td>${shownCell(ctx, r.wecom)}</td><td>${shownCell(ctx, r.mailbox)}</td><td>${shownCell(ctx, r.stored)}</td></tr>`,
)}
</tbody></table>
<p class="muted small">${t('console.person.maskedHint')}</p>
${v.problems.length ? html`<h3>${t('console.person.problems')}</h3><ul>${v.problems.map((p) => html`<li>${label(ctx, `field.${p.field}`, p.field)}: ${p.reason}</li>`)}</ul>` : ''}
</section>
<section class="panel"><h2>${t('console.person.audit')} ${v.chain.ok ? badge(t('console.audit.chainOk'), 'ok') : badge(t('console.audit.chainBroken'), 'bad')}</h2>
<p class="muted small">${v.chain.digest ? html`${t('console.audit.anchored')} ${time(v.chain.digest.createdAt)}` : t('console.audit.notAnchored')}</p>
${v.chain.ok ? '' : html`<ul class="problems">${v.chain.problems.map((p) => html`<li><code>${p.kind}</code> seq ${p.seq ?? '?'}: ${p.detail}</li>`)}</ul>`}
${auditTable(ctx, v.audit)}
</section>`;
}

function statePanel(ctx: PageContext, s: StateRecord | undefined): Html {
  const { t, base } = ctx;
  if (!s) return html`<section class="panel"><h2>${t('console.person.state')}</h2><p>${t('console.person.noState')}</p></section>`;
  const row = (label: string, value: Html | string | undefined) => (value === undefined || value === '' ? '' : html`<dt>${label}</dt><dd>${value}</dd>`);
  return html`<section class="panel"><h2>${t('console.person.state')}</h2><dl class="facts">
${row(t('col.status'), statusBadge(ctx, s.status))}
${row(t('console.state.disabledBy'), s.disabledBy ? t(`state.disabledBy.${s.disabledBy}`) : undefined)}
${row(t('console.state.offboardedAt'), s.offboardedAt ? time(s.offboardedAt) : undefined)}
${row(t('console.state.deleteAfter'), s.deleteAfter ? time(s.deleteAfter) : undefined)}
${row(t('console.state.lastSynced'), time(s.lastSyncedAt))}
${row(t('console.state.lastEvent'), s.lastEventId ? html`<code>${s.lastEventId}</code>` : undefined)}
${row(t('console.state.version'), String(s.version))}
${row(t('console.state.sealed'), Object.keys(s.sensitive).length ? Object.keys(s.sensitive).map((f) => label(ctx, `field.${f}`, f)).join(', ') : undefined)}
${row(
  t('console.state.held'),
  s.held ? html`${badge(t(`held.status.${s.held.status}`), s.held.status === 'held' ? 'warn' : 'info')} ${s.held.reason} ${s.held.status === 'held' ? html`<a href="${base}/approvals">${t('console.state.toApprovals')}</a>` : ''}` : undefined,
)}
${row(t('console.state.intent'), s.intent ? t('console.state.intentLeft', { n: s.intent.steps.length, at: s.intent.at }) : undefined)}
</dl></section>`;
}

export function auditTable(ctx: PageContext, records: AuditRecord[]): Html {
  const { t } = ctx;
  if (!records.length) return html`<p>${t('console.audit.none')}</p>`;
  return html`<div class="scroll"><table class="data audit"><thead><tr><th>${t('col.seq')}</th><th>${t('col.at')}</th><th>${t('col.operator')}</th><th>${t('col.action')}</th><th>${t('col.target')}</th><th>${t('col.outcome')}</th><th>${t('col.changes')}</th><th>${t('col.reason')}</th></tr></thead><tbody>
${records.map(
  (r) =>
    html`<tr><td class="num">${r.seq}</td><td>${time(r.at)}</td><td>${r.operator}</td><td>${t(`action.${r.action}`)}</td><td>${r.target ? label(ctx, `target.${r.target}`, r.target) : ''}</td><td>${outcomeBadge(ctx, r.outcome)}</td><td>${changesList(ctx, r.changes ?? [])}</td><td>${r.reason ?? ''}</td></tr>`,
)}
</tbody></table></div>`;
}

function outcomeBadge(ctx: PageContext, outcome: string): Html {
  const tone = outcome === 'ok' ? 'ok' : outcome === 'dry-run' ? 'info' : outcome === 'refused' ? 'warn' : 'bad';
  return badge(label(ctx, `console.outcome.${outcome}`, outcome), tone);
}

function changesList(ctx: PageContext, changes: Array<{ field: string; old?: unknown; new?: unknown; sensitive?: boolean }>): Html {
  if (!changes.length) return html``;
  const v = (x: unknown) => (x === undefined ? '?' : x === null ? '∅' : typeof x === 'string' ? x : JSON.stringify(x));
  return html`<ul class="changes">${changes.map(
    (c) => html`<li><span class="field">${label(ctx, `field.${c.field}`, c.field)}</span> <span${c.sensitive ? html` class="masked"` : ''}>${v(c.old)}</span> → <span${c.sensitive ? html` class="masked"` : ''}>${v(c.new)}</span></li>`,
  )}</ul>`;
}

// ------------------------------------------------------------------ Sync now

function plans(session: Session): Map<string, PlanEntry> {
  return session.plans as Map<string, PlanEntry>;
}

function keep(session: Session, entry: PlanEntry): void {
  const map = plans(session);
  map.set(entry.plan.id, entry);
  while (map.size > MAX_PLANS) map.delete(map.keys().next().value!);
}

export async function preview(req: Request): Promise<Outcome> {
  const { ctx, services } = req;
  const ref = req.params[0]!;
  const userid = userOf(ctx, ref);
  if (!userid || !ctx.session) return { kind: 'not-found' };
  const deps = await (await services.target()).engineDeps();
  const plan = await previewSync(deps, userid, await services.operator());
  keep(ctx.session, { plan });
  return redirectTo(`${ctx.base}/people/${ref}/plans/${plan.id}`);
}

export async function apply(req: Request): Promise<Outcome> {
  const { ctx, services, form } = req;
  const [ref, , id] = req.params;
  const entry = ctx.session && id ? plans(ctx.session).get(id) : undefined;
  if (!entry || userOf(ctx, ref) !== entry.plan.userid) return { kind: 'not-found' };
  if (entry.result) return redirectTo(`${ctx.base}/people/${ref}/plans/${id}`); // applied once only
  if (entry.plan.destructive && form?.get('confirmDestructive') !== 'yes') {
    ctx.session!.flash = { kind: 'error', text: ctx.t('console.plan.confirmNeeded') };
    return redirectTo(`${ctx.base}/people/${ref}/plans/${id}`);
  }
  const deps = await (await services.target()).engineDeps();
  const result = await applySync(deps, entry.plan, await services.operator());
  if (result.status === 'changed') {
    keep(ctx.session!, { plan: result.plan });
    ctx.session!.flash = { kind: 'error', text: ctx.t('console.plan.changed') };
    return redirectTo(`${ctx.base}/people/${ref}/plans/${result.plan.id}`);
  }
  if (result.status === 'busy') {
    // Nothing applied and the plan still holds: no result is kept, so Apply can be pressed again.
    ctx.session!.flash = { kind: 'error', text: ctx.t('console.plan.busy', { userid: entry.plan.userid, seconds: result.retryAfterS }) };
    return redirectTo(`${ctx.base}/people/${ref}/plans/${id}`);
  }
  entry.result = result;
  ctx.session!.flash = result.status === 'applied' ? { kind: 'ok', text: ctx.t('console.plan.appliedFlash') } : { kind: 'error', text: ctx.t('console.plan.failedFlash') };
  return redirectTo(`${ctx.base}/people/${ref}/plans/${id}`);
}

export function planPage(req: Request): Outcome {
  const { ctx } = req;
  const { t } = ctx;
  const [ref, , id] = req.params;
  const entry = ctx.session && id ? plans(ctx.session).get(id) : undefined;
  if (!entry || userOf(ctx, ref) !== entry.plan.userid) return { kind: 'not-found' };
  const { plan, result } = entry;
  const e = plan.explanation;
  const why = html`<section class="panel"><h2>${t('console.plan.why')}</h2>
<dl class="facts">
<dt>${t('console.plan.decision')}</dt><dd>${t('console.plan.row', { row: e.decision.row })}: <strong>${t(`decision.${e.decision.kind}`)}</strong></dd>
<dt>${t('console.person.wecom')}</dt><dd>${t(`member.${e.decision.member}`)}</dd>
<dt>${t('console.person.mailbox')}</dt><dd>${t(`account.${e.decision.account}`)}</dd>
${e.decision.disabledBy ? html`<dt>${t('console.state.disabledBy')}</dt><dd>${label(ctx, `state.disabledBy.${e.decision.disabledBy}`, e.decision.disabledBy)}</dd>` : ''}
${e.decision.held ? html`<dt>${t('console.state.held')}</dt><dd>${t(`held.status.${e.decision.held}`)}</dd>` : ''}
</dl>
<h3>${t('console.plan.policy')}</h3>
<ul>
<li>${t('console.plan.fieldsLeave')}: ${e.policy.fields.map((f) => t(`field.${f}`)).join(', ')}</li>
${e.policy.protectedDepartment !== undefined ? html`<li>${t('console.plan.protected', { path: e.policy.protectedDepartment })}</li>` : ''}
${e.policy.abroad ? html`<li>${e.policy.crossBorderApproved ? t('console.plan.abroadApproved') : t('console.plan.abroadWithheld')}</li>` : ''}
${e.policy.withheld.map((w) => html`<li>${t('console.plan.withheld', { field: t(`field.${w.field}`) })}: ${w.reason}</li>`)}
${e.policy.mailboxAuthority.length ? html`<li>${t('console.plan.mailboxAuthority')}: ${e.policy.mailboxAuthority.map((f) => t(`field.${f}`)).join(', ')}</li>` : ''}
${e.policy.untouched.length ? html`<li>${t('console.plan.untouched')}: ${e.policy.untouched.map((f) => t(`field.${f}`)).join(', ')}</li>` : ''}
${e.policy.outOfScope ? html`<li>${t('console.plan.outOfScope')}</li>` : ''}
${e.policy.problems.map((p) => html`<li>${t('console.plan.refusedField', { field: p.field })}: ${p.reason}</li>`)}
</ul>
</section>`;

  const planned = html`<section class="panel"><h2>${t('console.plan.steps')} <span class="muted small">${t('console.plan.previewedAt')} ${time(plan.createdAt)}</span></h2>
${stepsTable(ctx, plan.steps)}
${!plan.changes ? html`<p>${badge(t('console.plan.inSync'), 'ok')} ${t('console.plan.nothing')}</p>` : ''}
</section>`;

  let action: Html;
  if (result) action = resultPanel(ctx, result);
  else if (!plan.changes) action = html``;
  else
    action = postForm(
      ctx,
      `/people/${ref}/plans/${plan.id}/apply`,
      html`${plan.destructive ? html`<p class="warn">${t('console.plan.destructive')}</p><label class="check"><input type="checkbox" name="confirmDestructive" value="yes" required> ${t('console.plan.confirmDestructive')}</label>` : ''}
<p>${t('console.plan.applyHint')}</p>
<button type="submit" class="primary">${t('console.plan.apply')}</button>`,
      { cls: 'panel', confirm: t('console.plan.applyConfirm') },
    );
  const body = html`<p><a href="${ctx.base}/people/${ref}">← ${t('console.plan.back', { userid: plan.userid })}</a></p>${why}${planned}${action}`;
  return page(t('console.plan.title', { userid: plan.userid }), 'people', body);
}

function stepsTable(ctx: PageContext, steps: PlannedStep[]): Html {
  const { t } = ctx;
  if (!steps.length) return html``;
  return html`<table class="data"><thead><tr><th>${t('col.action')}</th><th>${t('col.target')}</th><th>${t('col.changes')}</th><th>${t('col.reason')}</th><th>${t('col.outcome')}</th></tr></thead><tbody>
${steps.map((s) => html`<tr><td>${t(`action.${s.action}`)}</td><td>${s.target ? label(ctx, `target.${s.target}`, s.target) : ''}</td><td>${changesList(ctx, s.changes)}</td><td>${s.reason ?? ''}</td><td>${outcomeBadge(ctx, s.outcome)}</td></tr>`)}
</tbody></table>`;
}

function resultPanel(ctx: PageContext, r: SyncResult): Html {
  const { t } = ctx;
  if (r.status === 'failed') return html`<section class="panel"><h2>${t('console.plan.result')}</h2><p class="error">${t('console.plan.failed')}: ${r.error}</p></section>`;
  if (r.status !== 'applied') return html``;
  return html`<section class="panel"><h2>${t('console.plan.result')} <span class="muted small">${time(r.at)}</span></h2>
<p>${r.matchesPlan ? badge(t('console.plan.asPreviewed'), 'ok') : badge(t('console.plan.differsFromPreview'), 'warn')}</p>
${stepsTable(ctx, r.steps)}</section>`;
}
