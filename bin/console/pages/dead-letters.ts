/**
 * Dead letters: sync messages the worker parked (a permanent error, or retries exhausted),
 * with the reason, and sending them back (`CliTarget.redrive`, as `wecom-sync dlq redrive`).
 * A message says only which subject may have changed — no field values — and its reason is
 * redacted once more before it is shown.
 */
import { redactText } from '../../../functions/core/redact';
import { html } from '../html';
import { badge, personLink, postForm } from '../layout';
import { page, redirectTo, type Outcome, type Request } from './types';

export async function deadLetters(req: Request): Promise<Outcome> {
  const { ctx, services } = req;
  const { t } = ctx;
  const letters = await (await services.target()).listDeadLetters();
  if (!letters.length) return page(t('console.dlq.title'), 'dead-letters', html`<p>${badge(t('console.dlq.none'), 'ok')}</p><p class="muted">${t('console.dlq.explain')}</p>`);
  const rows = letters.map(
    (d) => html`<tr>
<td><code title="${d.id}">${d.id.slice(0, 8)}</code></td>
<td>${d.subject.startsWith('user:') ? personLink(ctx, d.subject as `user:${string}`) : d.subject}</td>
<td>${d.source ?? ''}</td><td>${d.hint ?? ''}</td><td class="num">${d.receiveCount ?? ''}</td><td>${redactText(d.reason)}</td>
<td>${postForm(ctx, '/dead-letters/redrive', html`<input type="hidden" name="id" value="${d.id}"><button type="submit">${t('console.dlq.redrive')}</button>`, { cls: 'inline' })}</td></tr>`,
  );
  const body = html`<p class="muted">${t('console.dlq.explain')}</p>
<table class="data"><thead><tr><th>${t('col.id')}</th><th>${t('col.subject')}</th><th>${t('col.source')}</th><th>${t('col.hint')}</th><th>${t('col.receiveCount')}</th><th>${t('col.reason')}</th><th></th></tr></thead><tbody>${rows}</tbody></table>
${postForm(ctx, '/dead-letters/redrive', html`<input type="hidden" name="all" value="yes"><button type="submit" class="primary">${t('console.dlq.redriveAll', { n: letters.length })}</button>`, { cls: 'actions', confirm: t('console.dlq.confirmAll') })}`;
  return page(t('console.dlq.title'), 'dead-letters', body);
}

export async function redrive(req: Request): Promise<Outcome> {
  const { ctx, services, form } = req;
  const { t } = ctx;
  const id = form?.get('id') ?? '';
  const all = form?.get('all') === 'yes';
  if (!all && !/^[A-Za-z0-9:_.#-]{1,200}$/.test(id)) return redirectTo(`${ctx.base}/dead-letters`);
  const n = await (await services.target()).redrive(all ? undefined : id);
  ctx.session!.flash = n ? { kind: 'ok', text: t('console.dlq.redriven', { n }) } : { kind: 'error', text: t('console.dlq.nothing') };
  return redirectTo(`${ctx.base}/dead-letters`);
}
