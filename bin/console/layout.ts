/**
 * The page shell every console page shares — navigation, who is signed in against which
 * target, the language switch, the flash message of the last action — and the small pieces
 * pages are built from (times, forms with their CSRF field, value cells).
 */
import type { Locale, MessageKey, Translate } from '../../functions/core/messages';
import { isMessageKey, LOCALES } from '../../functions/core/messages';
import type { Shown } from './data/person';
import { html, type Html } from './html';
import type { SubjectRefs } from './refs';
import type { Session } from './session';

export interface PageContext {
  t: Translate;
  locale: Locale;
  /** Mount point, e.g. '/console'. */
  base: string;
  nonce: string;
  session?: Session;
  /** The request path (for the language switch to come back to). */
  path: string;
  targetName: string;
  operator?: string;
  refs: SubjectRefs;
}

export type Section = 'overview' | 'people' | 'approvals' | 'dead-letters' | 'reports' | 'config';

const NAV: Array<{ id: Section; path: string; key: MessageKey }> = [
  { id: 'overview', path: '/', key: 'console.nav.overview' },
  { id: 'people', path: '/people', key: 'console.nav.people' },
  { id: 'approvals', path: '/approvals', key: 'console.nav.approvals' },
  { id: 'dead-letters', path: '/dead-letters', key: 'console.nav.deadLetters' },
  { id: 'reports', path: '/reports', key: 'console.nav.reports' },
  { id: 'config', path: '/config', key: 'console.nav.config' },
];

const LOCALE_NAMES: Record<Locale, string> = { en: 'English', 'zh-CN': '简体中文' };

export function csrfField(ctx: PageContext): Html {
  return ctx.session ? html`<input type="hidden" name="_csrf" value="${ctx.session.csrf}">` : html``;
}

/** A POST form to `action` (relative to the mount point) with the CSRF field. */
export function postForm(ctx: PageContext, action: string, body: Html, opts: { cls?: string; confirm?: string } = {}): Html {
  return html`<form method="post" action="${ctx.base}${action}"${opts.cls ? html` class="${opts.cls}"` : ''}${opts.confirm ? html` data-confirm="${opts.confirm}"` : ''}>${csrfField(ctx)}${body}</form>`;
}

/** A time: UTC text without the script, the viewer's zone and language with it. */
export function time(iso: string | undefined, fmt: 'datetime' | 'day' | 'hour' = 'datetime'): Html {
  if (!iso) return html``;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return html`${iso}`;
  const text = fmt === 'day' ? d.toISOString().slice(0, 10) : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return html`<time datetime="${d.toISOString()}" data-fmt="${fmt}">${text}</time>`;
}

export function shownCell(ctx: PageContext, v: Shown): Html {
  if (v.kind === 'unknown') return html`<span class="muted" title="${ctx.t('console.value.unknownHint')}">${ctx.t('console.value.unknown')}</span>`;
  if (v.kind === 'cleared') return html`<span class="muted">${ctx.t('console.value.cleared')}</span>`;
  return v.masked ? html`<span class="masked">${v.text}</span>` : html`${v.text}`;
}

export function badge(text: string, tone: 'ok' | 'warn' | 'bad' | 'info' = 'info'): Html {
  return html`<span class="badge ${tone}">${text}</span>`;
}

export function personLink(ctx: PageContext, subject: `user:${string}`, label?: string): Html {
  return html`<a href="${ctx.base}/people/${ctx.refs.seal(subject)}">${label ?? subject.slice('user:'.length)}</a>`;
}

function languageSwitch(ctx: PageContext): Html {
  const options = LOCALES.map((l) => html`<option value="${l}"${l === ctx.locale ? ' selected' : ''}>${LOCALE_NAMES[l]}</option>`);
  // Not a session change, so no CSRF field is needed — it is only a cookie; it still posts
  // (no preference in a URL) and works before signing in.
  return html`<form method="post" action="${ctx.base}/lang" class="lang" data-autosubmit>
<input type="hidden" name="back" value="${ctx.path}">
<label><span class="sr-only">${ctx.t('console.lang.label')}</span><select name="lang" aria-label="${ctx.t('console.lang.label')}">${options}</select></label>
<button type="submit" class="js-hide">${ctx.t('console.lang.switch')}</button>
</form>`;
}

export function layout(ctx: PageContext, page: { title: string; section?: Section; body: Html }): string {
  const flash = ctx.session?.flash;
  if (ctx.session) delete ctx.session.flash;
  const nav = ctx.session
    ? html`<nav aria-label="${ctx.t('console.nav.label')}"><ul>${NAV.map(
        (n) => html`<li><a href="${ctx.base}${n.path}"${n.id === page.section ? html` aria-current="page"` : ''}>${ctx.t(n.key)}</a></li>`,
      )}</ul></nav>`
    : html``;
  const who = ctx.session
    ? html`<div class="who"><span title="${ctx.t('console.header.target')}">${ctx.targetName}</span>${ctx.operator ? html` · <span title="${ctx.t('console.header.operator')}">${ctx.operator}</span>` : ''}
${postForm(ctx, '/logout', html`<button type="submit" class="link">${ctx.t('console.header.signOut')}</button>`, { cls: 'inline' })}</div>`
    : html``;
  return html`<!doctype html>
<html lang="${ctx.locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · ${ctx.t('console.product')}</title>
<link rel="stylesheet" href="${ctx.base}/static/console.css">
<link rel="icon" href="${ctx.base}/static/favicon.svg" type="image/svg+xml">
<script src="${ctx.base}/static/app.js" nonce="${ctx.nonce}" defer></script>
</head>
<body>
<header>
<div class="brand"><a href="${ctx.base}/">${ctx.t('console.product')}</a></div>
${nav}
<div class="tools">${who}${languageSwitch(ctx)}</div>
</header>
<main id="main">
<h1>${page.title}</h1>
${flash ? html`<p class="flash ${flash.kind}" role="status">${flash.text}</p>` : ''}
${page.body}
</main>
</body>
</html>`.value;
}

/** A catalogue label for a value that may be outside the known set (a new check name, field or outcome): the raw value then. */
export function label(ctx: PageContext, key: string, fallback: string): string {
  return isMessageKey(key) ? ctx.t(key) : fallback;
}
