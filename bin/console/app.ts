/**
 * The operator console as one request handler: `createConsole({ target, … }).handle(req, res)`
 * for every request under its mount point (default `/console`). The same handler serves the
 * local stack (mounted behind its local-caller check) and `wecom-sync console` against a
 * deployed stack (./server.ts); all it knows of either is the CliTarget the CLI uses.
 *
 * Doors, in the order they are checked:
 *  1. Host: only a loopback name (127.0.0.1, localhost, [::1]) — a DNS-rebinding page whose
 *     own name resolves to 127.0.0.1 is refused even though it reaches the port.
 *  2. Session: everything but the login, the language switch and the two static files.
 *  3. POST: same-origin (Origin / Sec-Fetch-Site when the browser sends them) AND the
 *     session's CSRF token in the form.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LOCALES, negotiateLocale, translator, type Locale } from '../../functions/core/messages';
import { redactText } from '../../functions/core/redact';
import type { CliTarget } from '../cli/target';
import { BodyError, cookie, cookies, newNonce, readForm, redirect, sendFile, sendHtml, sendText } from './http';
import { operatorIdentity } from './identity';
import { html } from './html';
import { layout, type PageContext } from './layout';
import { approvals, decide } from './pages/approvals';
import { config } from './pages/config';
import { deadLetters, redrive } from './pages/dead-letters';
import { loginPage } from './pages/login';
import { overview } from './pages/overview';
import { apply, peopleIndex, peopleSearch, person, planPage, preview } from './pages/people';
import { download, report, reports } from './pages/reports';
import { page, type Outcome, type Request, type Services } from './pages/types';
import { SubjectRefs } from './refs';
import { Sessions, type Session } from './session';

export interface ConsoleOptions {
  /** The stack to operate: a CliTarget, or a factory called at the first request that needs one (and again after a failure). */
  target: CliTarget | (() => Promise<CliTarget>);
  /** A long-lived token that also signs in (the local stack's admin token). Without it, only one-time login URLs do. */
  token?: string;
  /** The identity audited for this console's actions. Default: the OS user locally, the IAM principal for a stack (identity.ts). */
  operator?: string | (() => Promise<string>);
  /** Where the console is mounted (default '/console'). */
  basePath?: string;
  now?: () => Date;
}

export interface OperatorConsole {
  basePath: string;
  /** Handle a request whose path is under `basePath`. Never throws. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** A one-time sign-in URL (10 minutes, one use) for a console reachable at `origin`, e.g. http://127.0.0.1:3000. */
  loginUrl(origin: string): string;
  /** Close the target the console built from a factory (a target handed in stays the caller's to close). */
  close(): Promise<void>;
}

const SESSION_COOKIE = 'wsc_session';
const LANG_COOKIE = 'wsc_lang';
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/i;

const STATIC: Record<string, { file: string; type: string }> = {
  '/static/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/static/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
  '/static/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};
const staticFiles = new Map<string, string>();
function staticFile(name: string): string {
  let body = staticFiles.get(name);
  if (body === undefined) staticFiles.set(name, (body = readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8')));
  return body;
}

type Handler = (req: Request) => Promise<Outcome> | Outcome;
interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handler: Handler;
}

const REF = '([A-Za-z0-9_-]{20,200})';
const PLAN = '([0-9a-f-]{36})';
const REPORT = '([0-9TZ.-]{20,30})';
const ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/$/, handler: overview },
  { method: 'GET', pattern: /^\/people$/, handler: peopleIndex },
  { method: 'POST', pattern: /^\/people$/, handler: peopleSearch },
  { method: 'GET', pattern: new RegExp(`^/people/${REF}$`), handler: person },
  { method: 'POST', pattern: new RegExp(`^/people/${REF}/preview$`), handler: preview },
  { method: 'GET', pattern: new RegExp(`^/people/${REF}/(plans)/${PLAN}$`), handler: planPage },
  { method: 'POST', pattern: new RegExp(`^/people/${REF}/(plans)/${PLAN}/apply$`), handler: apply },
  { method: 'GET', pattern: /^\/approvals$/, handler: approvals },
  { method: 'POST', pattern: /^\/approvals$/, handler: decide },
  { method: 'GET', pattern: /^\/dead-letters$/, handler: deadLetters },
  { method: 'POST', pattern: /^\/dead-letters\/redrive$/, handler: redrive },
  { method: 'GET', pattern: /^\/reports$/, handler: reports },
  { method: 'GET', pattern: new RegExp(`^/reports/${REPORT}$`), handler: report },
  { method: 'GET', pattern: new RegExp(`^/reports/${REPORT}/csv$`), handler: (r) => download(r, 'csv') },
  { method: 'GET', pattern: new RegExp(`^/reports/${REPORT}/json$`), handler: (r) => download(r, 'json') },
  { method: 'GET', pattern: /^\/config$/, handler: config },
];

export function createConsole(opts: ConsoleOptions): OperatorConsole {
  const base = (opts.basePath ?? '/console').replace(/\/+$/, '');
  const now = opts.now ?? (() => new Date());
  const sessions = new Sessions({ ...(opts.token ? { token: opts.token } : {}), now: () => now().getTime() });
  const refs = new SubjectRefs();

  // Built once, retried after a failure (the local stack may not be up yet when mounted).
  let targetP: Promise<CliTarget> | undefined;
  let targetName = '';
  const target = () => {
    if (typeof opts.target !== 'function') return Promise.resolve(opts.target);
    const factory = opts.target;
    return (targetP ??= factory().catch((err: unknown) => {
      targetP = undefined;
      throw err;
    }));
  };
  let operatorP: Promise<string> | undefined;
  const operator = () => {
    if (typeof opts.operator === 'string') return Promise.resolve(opts.operator);
    const resolve = opts.operator ?? (async () => operatorIdentity(await target(), 'console'));
    return (operatorP ??= resolve().catch((err: unknown) => {
      operatorP = undefined;
      throw err;
    }));
  };
  const services: Services = { target, operator, now };

  function localeOf(req: IncomingMessage): Locale {
    const chosen = cookies(req)[LANG_COOKIE];
    return (LOCALES as readonly string[]).includes(chosen ?? '') ? (chosen as Locale) : negotiateLocale(req.headers['accept-language']);
  }

  async function respond(res: ServerResponse, ctx: PageContext, out: Outcome): Promise<void> {
    switch (out.kind) {
      case 'redirect':
        return redirect(res, out.to);
      case 'download':
        return sendFile(res, out.body, out.contentType, { 'content-disposition': `attachment; filename="${out.filename}"` });
      case 'not-found':
        return sendHtml(res, 404, layout(ctx, { title: ctx.t('console.error.notFound'), body: html`<p><a href="${base}/">${ctx.t('console.error.home')}</a></p>` }), ctx.nonce);
      case 'page':
        return sendHtml(res, out.status ?? 200, layout(ctx, { title: out.title, ...(out.section ? { section: out.section } : {}), body: out.body }), ctx.nonce);
    }
  }

  function sameOrigin(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
    const origin = req.headers.origin;
    return origin === undefined || origin === `http://${req.headers.host}`;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const sub = url.pathname.slice(base.length) || '';
    if (!LOOPBACK_HOST.test(req.headers.host ?? '')) return sendText(res, 403, 'refused: the console answers only to a loopback host name (127.0.0.1 or localhost)');
    if (sub === '') return redirect(res, `${base}/`);
    const file = STATIC[sub];
    if (file && req.method === 'GET') return sendFile(res, staticFile(file.file), file.type);

    const locale = localeOf(req);
    const session: Session | undefined = sessions.get(cookies(req)[SESSION_COOKIE]);
    const ctx: PageContext = {
      t: translator(session?.locale ?? locale),
      locale: session?.locale ?? locale,
      base,
      nonce: newNonce(),
      path: sub,
      targetName,
      refs,
      ...(session ? { session } : {}),
    };
    const method = req.method === 'POST' ? 'POST' : req.method === 'GET' || req.method === 'HEAD' ? 'GET' : undefined;
    if (!method) return sendText(res, 405, 'method not allowed');
    if (method === 'POST' && !sameOrigin(req)) return sendText(res, 403, 'refused: cross-site request');

    // ---- doors that need no session
    if (sub === '/login') {
      if (method === 'GET') {
        const token = url.searchParams.get('token');
        if (!token) return respond(res, ctx, loginPage(ctx));
        return signIn(res, ctx, token);
      }
      return signIn(res, ctx, (await readForm(req)).get('token') ?? '');
    }
    if (sub === '/lang' && method === 'POST') {
      const form = await readForm(req);
      const lang = form.get('lang') ?? '';
      const back = form.get('back') ?? '/';
      const safeBack = /^\/[A-Za-z0-9/_.?=&-]*$/.test(back) && !back.startsWith('//') ? back : '/';
      if (!(LOCALES as readonly string[]).includes(lang)) return redirect(res, `${base}${safeBack}`);
      if (session) session.locale = lang as Locale;
      return redirect(res, `${base}${safeBack}`, { 'set-cookie': cookie(LANG_COOKIE, lang, { path: base, maxAgeSeconds: 365 * 86_400 }) });
    }

    // ---- signed in from here on
    if (!session) return method === 'GET' ? redirect(res, `${base}/login`) : sendText(res, 401, 'sign in first');
    let form: URLSearchParams | undefined;
    if (method === 'POST') {
      form = await readForm(req);
      if (!sessions.checkCsrf(session, form.get('_csrf'))) return sendText(res, 403, 'refused: missing or wrong CSRF token (reload the page)');
    }
    if (sub === '/logout' && method === 'POST') {
      sessions.signOut(session);
      return redirect(res, `${base}/login`, { 'set-cookie': cookie(SESSION_COOKIE, '', { path: base, maxAgeSeconds: 0 }) });
    }
    try {
      ctx.operator = await operator();
      if (!targetName) targetName = (await target()).name;
      ctx.targetName = targetName;
    } catch (err) {
      return respond(res, ctx, errorPage(ctx, err));
    }
    for (const r of ROUTES) {
      if (r.method !== method) continue;
      const m = r.pattern.exec(sub);
      if (!m) continue;
      const request: Request = { ctx, services, params: m.slice(1), query: url.searchParams, ...(form ? { form } : {}) };
      let out: Outcome;
      try {
        out = await r.handler(request);
      } catch (err) {
        out = errorPage(ctx, err);
      }
      return respond(res, ctx, out);
    }
    return respond(res, ctx, { kind: 'not-found' });
  }

  function signIn(res: ServerResponse, ctx: PageContext, token: string): Promise<void> | void {
    const session = sessions.signIn(token);
    if (!session) return respond(res, ctx, loginPage(ctx, true));
    session.locale = ctx.locale;
    return redirect(res, `${base}/`, { 'set-cookie': cookie(SESSION_COOKIE, session.id, { path: base }) });
  }

  return {
    basePath: base,
    async handle(req, res) {
      try {
        await route(req, res);
      } catch (err) {
        if (res.headersSent) return void res.end();
        if (err instanceof BodyError) return sendText(res, err.status, err.message);
        sendText(res, 500, 'internal error');
      }
    },
    loginUrl: (origin) => `${origin.replace(/\/+$/, '')}${base}/login?token=${sessions.mintLoginToken()}`,
    close: async () => {
      if (typeof opts.target !== 'function' || !targetP) return;
      const built = await targetP.catch(() => undefined);
      targetP = undefined;
      await built?.close();
    },
  };
}

function errorPage(ctx: PageContext, err: unknown): Outcome {
  const detail = redactText(err instanceof Error ? (err.name === 'CliError' ? err.message : `${err.name}: ${err.message}`) : String(err));
  return page(ctx.t('console.error.title'), undefined, html`<p class="error">${detail}</p><p><a href="${ctx.base}/">${ctx.t('console.error.home')}</a></p>`, 502);
}
