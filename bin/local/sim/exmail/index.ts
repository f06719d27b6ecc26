/**
 * Loopback Tencent Exmail (api.exmail.qq.com): the part of the open API the adapter uses, for
 * tests, benchmarks and the local dev server (mounted under /_sim/exmail). One module per
 * resource: token.ts (gettoken, one token per app secret), users.ts, departments.ts, log.ts
 * (log/operation); state.ts holds the tenant (journaled with `persistDir`), context.ts the
 * shared plumbing. This file wires them: the errcode envelope (always HTTP 200), a frequency
 * limit per API (45009, as Exmail's "每企业调用单个cgi/api不可超过500次/分"), a random storm of
 * -1 / 45009 (`failRate`, refused before anything is applied), routing, recording, HTTP.
 *
 * `console` stands in for an administrator in Exmail's web console: its edits are logged with
 * the administrator as operator (category 7), as the feed must find them; API writes are
 * logged too (category 1, operator `apiOperator`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { answer, type Answer, type ExmailApp, type Route, type SimContext, type SimOptions } from './context';
import { departmentsRoute } from './departments';
import { logRoute } from './log';
import { newUser, openState, type ExmailSimDepartment, type ExmailSimLogRecord, type ExmailSimUser } from './state';
import { tokenEndpoint } from './token';
import { usersRoute } from './users';
import { listenOnLoopback } from '../loopback';

export type { ExmailSimDepartment, ExmailSimLogRecord, ExmailSimUser } from './state';

export interface ExmailSimOptions {
  corpId?: string;
  contactsSecret?: string;
  logSecret?: string;
  /** Mail domains of the tenant (default ['example.com']). */
  domains?: string[];
  /** Name of the root department (default 'Example Corp'). */
  rootName?: string;
  tokenLifetimeSeconds?: number;
  /** Calls per API (user/get, user/create …) per window, then 45009 until the window ends. */
  rateLimit?: { calls: number; windowMs?: number };
  /** Share of API calls answered -1 / 45009 before anything is applied (token calls excluded). */
  failRate?: number;
  failErrcodes?: number[];
  random?: () => number;
  now?: () => Date;
  logMaxRangeDays?: number;
  logUtcOffsetMinutes?: number;
  apiOperator?: string;
  /** Keep the tenant in `<persistDir>/exmail.jsonl` (../journal.ts): it survives a restart, even a kill -9. */
  persistDir?: string;
}

export interface ExmailRecordedRequest {
  api: string;
  method: string;
  app: ExmailApp | 'none';
  /** The query without access_token / corpsecret. */
  query: Record<string, string>;
  body: unknown;
  errcode: number;
}

/** An administrator in the Exmail console: each edit is logged as the console logs it. */
export interface ExmailConsole {
  create(u: Partial<ExmailSimUser> & { userid: string; name: string }): ExmailSimUser;
  update(userid: string, patch: Partial<Omit<ExmailSimUser, 'userid'>>): void;
  disable(userid: string): void;
  enable(userid: string): void;
  delete(userid: string): void;
  /** A deleted account restored from the console's recycle (logged as type 20 with remark 1). */
  restore(u: ExmailSimUser): void;
}

export interface ExmailSim {
  handle(req: IncomingMessage, res: ServerResponse, subpath: string): void;
  start(): Promise<{ baseUrl: string; close(): Promise<void> }>;
  users: Map<string, ExmailSimUser>;
  departments: Map<number, ExmailSimDepartment>;
  log: Map<number, ExmailSimLogRecord>;
  /** API name → calls (throttled ones included). */
  calls: Record<string, number>;
  requests: ExmailRecordedRequest[];
  console: ExmailConsole;
  /** Store a member directly (not logged, not counted). */
  seedUser(u: Partial<ExmailSimUser> & { userid: string; name: string }): ExmailSimUser;
  /** Append a raw operation-log record (tests of the feed: late, duplicate, foreign records). */
  appendLog(r: Omit<ExmailSimLogRecord, 'category'> & { category?: number }): void;
  setFailRate(rate: number, errcodes?: number[]): void;
  /** Invalidate every token (the next call gets 40014). */
  revokeTokens(): void;
  /** Milliseconds spent inside the simulator's request handling (its CPU share in benchmarks). */
  busyMs(): number;
}

export function createExmailSim(o: ExmailSimOptions = {}): ExmailSim {
  const domains = (o.domains ?? ['example.com']).map((d) => d.toLowerCase());
  const opts: SimOptions = {
    corpId: o.corpId ?? 'wm-corp',
    contactsSecret: o.contactsSecret ?? 'contacts-secret',
    logSecret: o.logSecret ?? 'log-secret',
    domains,
    tokenLifetimeSeconds: o.tokenLifetimeSeconds ?? 7200,
    logMaxRangeDays: o.logMaxRangeDays ?? 30,
    logUtcOffsetMinutes: o.logUtcOffsetMinutes ?? 480,
    apiOperator: o.apiOperator ?? 'openapi',
  };
  const now = o.now ?? (() => new Date());
  const random = o.random ?? Math.random;
  let failRate = o.failRate ?? 0;
  let failErrcodes = o.failErrcodes ?? [-1, 45009];
  const state = openState(o.persistDir, o.rootName ?? 'Example Corp');
  const calls: Record<string, number> = {};
  const requests: ExmailRecordedRequest[] = [];
  const admin = `admin@${domains[0]}`;
  let busy = 0;

  const ctx: SimContext = {
    state,
    opts,
    now,
    record(entry, operator) {
      state.append({ ...entry, time: Math.floor(now().getTime() / 1000), operator: operator ?? opts.apiOperator, category: operator ? 7 : 1 });
    },
  };
  const tokens = tokenEndpoint(opts, now);
  const contactRoutes: Route[] = [usersRoute(ctx), departmentsRoute(ctx)];
  const log = logRoute(ctx);
  const windows = new Map<string, { start: number; count: number }>();

  function limited(api: string): boolean {
    if (!o.rateLimit) return false;
    const t = now().getTime();
    const w = windows.get(api);
    if (!w || t - w.start >= (o.rateLimit.windowMs ?? 60_000)) {
      windows.set(api, { start: t, count: 1 });
      return false;
    }
    return ++w.count > o.rateLimit.calls;
  }

  function route(api: string, method: string, query: URLSearchParams, body: Record<string, unknown>): { app: ExmailApp | 'none'; res: Answer } {
    if (api === 'gettoken') return { app: 'none', res: tokens.issue(query) };
    const auth = tokens.check(query.get('access_token'));
    if ('errcode' in auth) return { app: 'none', res: answer(auth.errcode) };
    const { app } = auth;
    if (limited(api)) return { app, res: answer(45009) };
    if (failRate > 0 && random() < failRate) return { app, res: answer(failErrcodes[Math.floor(random() * failErrcodes.length)] ?? -1) };
    const req = { api, method, query, body, app };
    if (api.startsWith('log/')) return { app, res: app === 'log' ? (log(req) ?? answer(48002)) : answer(48002) };
    if (app !== 'contacts') return { app, res: answer(48002) };
    for (const r of contactRoutes) {
      const res = r(req);
      if (res) return { app, res };
    }
    return { app, res: answer(48002, { errmsg: 'api not supported by the simulator' }) };
  }

  function handle(req: IncomingMessage, res: ServerResponse, subpath: string): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const started = process.hrtime.bigint();
      const url = new URL(subpath, 'http://local');
      const m = /^\/cgi-bin\/(.+)$/.exec(url.pathname);
      const method = (req.method ?? 'GET').toUpperCase();
      let out: Answer;
      let app: ExmailApp | 'none' = 'none';
      const api = m?.[1] ?? url.pathname;
      let body: Record<string, unknown> = {};
      const raw = Buffer.concat(chunks).toString('utf8');
      if (!m) out = answer(48002, { errmsg: 'unknown path' });
      else {
        let parsed: unknown = {};
        try {
          parsed = raw ? JSON.parse(raw) : {};
        } catch {
          parsed = undefined;
        }
        if (parsed === undefined || typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) out = answer(47001);
        else {
          body = parsed as Record<string, unknown>;
          ({ app, res: out } = route(api, method, url.searchParams, body));
        }
      }
      calls[api] = (calls[api] ?? 0) + 1;
      const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'access_token' && k !== 'corpsecret'));
      requests.push({ api, method, app, query, body, errcode: out.errcode });
      const text = JSON.stringify(out);
      busy += Number(process.hrtime.bigint() - started) / 1e6;
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(text);
    });
  }

  const consoleEdit = {
    create(p: Partial<ExmailSimUser> & { userid: string; name: string }) {
      const u = newUser(p);
      state.putUser(u);
      ctx.record({ type: 19, operand: u.userid }, admin);
      return u;
    },
    update(userid: string, patch: Partial<Omit<ExmailSimUser, 'userid'>>) {
      const u = state.users.get(userid.toLowerCase());
      if (!u) throw new Error('no such member');
      state.putUser({ ...u, ...patch });
      ctx.record({ type: 23, operand: u.userid }, admin);
    },
    disable(userid: string) {
      const u = state.users.get(userid.toLowerCase());
      if (!u) throw new Error('no such member');
      state.putUser({ ...u, enable: 0 });
      ctx.record({ type: 22, operand: u.userid }, admin);
    },
    enable(userid: string) {
      const u = state.users.get(userid.toLowerCase());
      if (!u) throw new Error('no such member');
      state.putUser({ ...u, enable: 1 });
      ctx.record({ type: 21, operand: u.userid }, admin);
    },
    delete(userid: string) {
      const id = userid.toLowerCase();
      if (!state.users.has(id)) throw new Error('no such member');
      state.removeUser(id);
      ctx.record({ type: 20, operand: id }, admin);
    },
    restore(u: ExmailSimUser) {
      state.putUser(u);
      ctx.record({ type: 20, operand: u.userid, remark: 1 }, admin);
    },
  };

  return {
    handle,
    start: () => listenOnLoopback(handle),
    users: state.users,
    departments: state.departments,
    log: state.log,
    calls,
    requests,
    console: consoleEdit,
    seedUser(p) {
      const u = newUser(p);
      state.putUser(u);
      return u;
    },
    appendLog(r) {
      state.append({ category: 7, ...r });
    },
    setFailRate(rate, errcodes) {
      failRate = rate;
      if (errcodes) failErrcodes = errcodes;
    },
    revokeTokens: tokens.revoke,
    busyMs: () => busy,
  };
}
