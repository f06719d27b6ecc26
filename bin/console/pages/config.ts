/**
 * Configuration: the effective runtime configuration the sync runs with (what the target's
 * engine was built from), each setting with its meaning, its default and whether it was
 * changed. Secrets are not part of it; see ../data/config.ts for the second line of defence.
 */
import { isMessageKey } from '../../../functions/core/messages';
import { configRows } from '../data/config';
import { html } from '../html';
import { badge } from '../layout';
import { page, type Outcome, type Request } from './types';

export async function config(req: Request): Promise<Outcome> {
  const { ctx, services } = req;
  const { t } = ctx;
  const deps = await (await services.target()).engineDeps();
  const rows = configRows(deps.config);
  const body = html`<p class="muted">${t('console.config.explain')}</p>
<table class="data config"><thead><tr><th>${t('console.config.setting')}</th><th>${t('console.config.value')}</th><th>${t('console.config.default')}</th><th>${t('console.config.meaning')}</th></tr></thead><tbody>
${rows.map((r) => {
  const key = `config.${r.path}`;
  return html`<tr${r.changed ? html` class="changed"` : ''}><th scope="row"><code>${r.path}</code>${r.changed ? html` ${badge(t('console.config.changed'), 'info')}` : ''}</th>
<td>${r.value ?? html`<span class="muted">${t('console.config.unset')}</span>`}${r.redacted ? html` ${badge(t('console.config.redacted'), 'warn')}` : ''}</td>
<td>${r.default ?? html`<span class="muted">${t('console.config.unset')}</span>`}</td>
<td>${isMessageKey(key) ? t(key) : html`<span class="muted">${t('console.config.noMeaning')}</span>`}</td></tr>`;
})}
</tbody></table>
<p class="muted small">${t('console.config.secrets')}</p>`;
  return page(t('console.config.title'), 'config', body);
}
