/**
 * WeCom contacts API client (the WecomContacts port over HTTPS, global fetch).
 *
 * Two secrets, two tokens (docs/architecture.md, "Facts from WeCom"): member DETAILS are read with the
 * self-built app's token (the contacts-sync secret gets 48009 for `user/get` from IPs added
 * after 2022-08-15); WRITES use the contacts-sync token (the app secret may not write,
 * 60011). `user/list_id` works with either: contacts-sync first, app as the fallback.
 *
 * - Tokens are cached per secret until 5 minutes before `expires_in`, one in-flight
 *   `gettoken` shared by concurrent callers, refreshed once on 40014 / 42001 / 42009.
 * - Busy (-1), rate limits (45009 …), network errors, timeouts and HTTP 5xx are retried with
 *   exponential backoff and jitter; when retries run out the error is retryable and carries
 *   WeCom's block time so the queue can wait it out. Everything else is permanent with a
 *   reason an operator can act on (errcodes.ts).
 * - Errors name the API and the errcode only: the token travels in the query string, as WeCom
 *   requires, so URLs are never put in an error or a log line.
 */
import { WecomApiError, type WecomContacts, type WecomDepartment, type WecomUser, type WecomUserInput } from './contacts';
import { RateLimiter } from '../core/rate-limit';
import { backoffMs, TokenCache } from '../core/retry';
import { classifyErrcode } from './errcodes';

export interface WecomApiOptions {
  apiBase: string;
  corpId: string;
  contactsSecret: string;
  appSecret: string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Retries after the first attempt for retryable failures (default 3). */
  maxRetries?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  now?: () => number;
  /**
   * This process's budget per API per minute (core/rate-limit.ts): calls wait for it instead
   * of meeting WeCom's limit (10,000/min per API per corp, then a 60 s block). Absent: none.
   */
  callsPerMinute?: number;
  /** Rows per user/list_id page (WeCom's maximum and the default: 10,000; tests page with fewer). */
  listLimit?: number;
}

type Secret = 'app' | 'contacts';
type Json = Record<string, unknown> & { errcode?: number; errmsg?: string };

/** Fields WeCom hides under its sensitive-data policy, sometimes as "" rather than absent. */
const HIDDEN_AS_EMPTY = ['mobile', 'email', 'biz_mail', 'telephone', 'address', 'avatar', 'thumb_avatar', 'qr_code'] as const;
/** WeCom asks for retries of busy (-1) and rate limits to back off: 200 ms … 5 s. */
const BACKOFF = { baseMs: 200, capMs: 5_000 };

export class WecomApiClient implements WecomContacts {
  private readonly tokens: Record<Secret, TokenCache>;
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly base: string;
  private readonly listLimit: number;
  /** Per-API budget of this process (undefined: no limit). */
  readonly limiter?: RateLimiter;

  constructor(private readonly opts: WecomApiOptions) {
    this.fetch = opts.fetch ?? ((...a) => globalThis.fetch(...a));
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = opts.now ?? Date.now;
    this.base = opts.apiBase.replace(/\/+$/, '');
    this.listLimit = opts.listLimit ?? 10_000;
    this.tokens = { app: new TokenCache(() => this.fetchToken('app'), this.now), contacts: new TokenCache(() => this.fetchToken('contacts'), this.now) };
    if (opts.callsPerMinute) this.limiter = new RateLimiter({ perMinute: opts.callsPerMinute, now: this.now, sleep: this.sleep });
  }

  async getUser(userid: string): Promise<WecomUser | undefined> {
    const r = await this.call('user/get', 'app', { query: { userid }, notFoundOk: true });
    if (r.errcode === 60111) return undefined;
    const { errcode: _e, errmsg: _m, ...user } = r;
    // "" for a hidden field means "WeCom did not tell us", not "the field is empty": drop it so
    // it stays unknown and can never erase the mailbox's value.
    for (const f of HIDDEN_AS_EMPTY) if (user[f] === '') delete user[f];
    return user as unknown as WecomUser;
  }

  async listUserIds(): Promise<string[]> {
    try {
      return await this.listUserIdsWith('contacts');
    } catch (err) {
      if (err instanceof WecomApiError && (err.errcode === 48009 || err.errcode === 60011)) return this.listUserIdsWith('app');
      throw err;
    }
  }

  async listUserIdPage(cursor?: string): Promise<{ ids: string[]; next?: string }> {
    try {
      return await this.listUserIdPageWith('contacts', cursor);
    } catch (err) {
      if (err instanceof WecomApiError && (err.errcode === 48009 || err.errcode === 60011)) return this.listUserIdPageWith('app', cursor);
      throw err;
    }
  }

  async listDepartments(): Promise<WecomDepartment[]> {
    const r = await this.call('department/list', 'app');
    const list = (r.department ?? []) as Array<WecomDepartment & Record<string, unknown>>;
    return list.map((d) => ({ id: d.id, name: d.name, parentid: d.parentid, ...(d.order !== undefined ? { order: d.order } : {}) }));
  }

  async updateUser(userid: string, patch: Partial<Omit<WecomUser, 'userid'>>): Promise<void> {
    await this.call('user/update', 'contacts', { body: { ...patch, userid } });
  }

  async createUser(user: WecomUserInput): Promise<void> {
    await this.call('user/create', 'contacts', { body: user });
  }

  async createDepartment(name: string, parentId: number): Promise<number> {
    const r = await this.call('department/create', 'contacts', { body: { name, parentid: parentId } });
    if (typeof r.id !== 'number') throw new WecomApiError('WeCom department/create answered without an id', 0, false);
    return r.id;
  }

  async deleteUser(userid: string): Promise<void> {
    // 60111: already gone, which is what we wanted.
    await this.call('user/delete', 'contacts', { query: { userid }, notFoundOk: true });
  }

  async addTagUsers(tagId: number, userids: string[]): Promise<void> {
    const r = await this.call('tag/addtagusers', 'contacts', { body: { tagid: tagId, userlist: userids } });
    const invalid = r.invalidlist ?? r.invaliduserlist;
    if ((typeof invalid === 'string' && invalid) || (Array.isArray(invalid) && invalid.length)) {
      throw new WecomApiError('WeCom tag/addtagusers: some members were not tagged', 0, false);
    }
  }

  /** Force the next call to fetch fresh tokens (e.g. after rotating a secret). */
  invalidateTokens(): void {
    for (const t of Object.values(this.tokens)) t.drop();
  }

  private async listUserIdPageWith(secret: Secret, cursor: string | undefined): Promise<{ ids: string[]; next?: string }> {
    const r = await this.call('user/list_id', secret, { body: { ...(cursor ? { cursor } : {}), limit: this.listLimit } });
    const ids = ((r.dept_user ?? []) as Array<{ userid: string }>).map((row) => row.userid);
    const next = typeof r.next_cursor === 'string' && r.next_cursor ? r.next_cursor : undefined;
    return { ids, ...(next ? { next } : {}) };
  }

  private async listUserIdsWith(secret: Secret): Promise<string[]> {
    const ids = new Set<string>();
    let cursor: string | undefined;
    do {
      const r = await this.call('user/list_id', secret, { body: { ...(cursor ? { cursor } : {}), limit: this.listLimit } });
      // A member in several departments is listed once per department.
      for (const row of (r.dept_user ?? []) as Array<{ userid: string }>) ids.add(row.userid);
      cursor = typeof r.next_cursor === 'string' && r.next_cursor ? r.next_cursor : undefined;
    } while (cursor);
    return [...ids];
  }

  // ------------------------------------------------------------------ transport

  private async call(
    api: string,
    secret: Secret,
    opt: { query?: Record<string, string>; body?: unknown; notFoundOk?: boolean } = {},
  ): Promise<Json> {
    const maxRetries = this.opts.maxRetries ?? 3;
    let refreshed = false;
    for (let attempt = 0; ; ) {
      const token = await this.tokens[secret].get();
      await this.limiter?.take(api);
      const query = new URLSearchParams({ access_token: token, ...(opt.query ?? {}) });
      let r: Json | undefined;
      let failure: { reason: string; retryAfterMs?: number; errcode: number } | undefined;
      try {
        r = await this.request(`${this.base}/cgi-bin/${api}?${query}`, opt.body);
      } catch (err) {
        failure = { reason: (err as Error).message, errcode: -1 };
      }
      if (r) {
        const code = typeof r.errcode === 'number' ? r.errcode : 0;
        const cls = classifyErrcode(code);
        if (cls.kind === 'ok' || (cls.kind === 'not-found' && opt.notFoundOk)) return r;
        if (cls.kind === 'token') {
          this.tokens[secret].drop(token);
          if (!refreshed) {
            refreshed = true;
            continue; // the first fresh token is not a retry
          }
        }
        if (cls.kind !== 'retryable' && cls.kind !== 'token') {
          throw new WecomApiError(`WeCom ${api} failed: errcode ${code} (${cls.reason})`, code, false);
        }
        failure = { reason: cls.reason, errcode: code, ...(cls.retryAfterMs ? { retryAfterMs: cls.retryAfterMs } : {}) };
      }
      if (attempt >= maxRetries) {
        throw new WecomApiError(`WeCom ${api} failed after ${attempt + 1} attempts: errcode ${failure!.errcode} (${failure!.reason})`, failure!.errcode, true, failure!.retryAfterMs);
      }
      await this.sleep(backoffMs(attempt++, BACKOFF));
    }
  }

  /** One HTTP exchange; throws a plain Error (no URL in it) on transport failure or 5xx. */
  private async request(url: string, body: unknown): Promise<Json> {
    let res: Response;
    try {
      res = await this.fetch(url, {
        method: body === undefined ? 'GET' : 'POST',
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new Error((err as Error).name === 'TimeoutError' ? 'timeout' : 'network error');
    }
    if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
    try {
      return (await res.json()) as Json;
    } catch {
      throw new Error(`HTTP ${res.status}: not JSON`);
    }
  }

  private async fetchToken(secret: Secret): Promise<{ value: string; lifetimeMs: number }> {
    const corpsecret = secret === 'app' ? this.opts.appSecret : this.opts.contactsSecret;
    const query = new URLSearchParams({ corpid: this.opts.corpId, corpsecret });
    const maxRetries = this.opts.maxRetries ?? 3;
    for (let attempt = 0; ; attempt++) {
      let r: Json | undefined;
      let reason = 'network error';
      let code = -1;
      try {
        r = await this.request(`${this.base}/cgi-bin/gettoken?${query}`, undefined);
      } catch (err) {
        reason = (err as Error).message;
      }
      if (r) {
        code = typeof r.errcode === 'number' ? r.errcode : 0;
        if (code === 0 && typeof r.access_token === 'string') {
          return { value: r.access_token, lifetimeMs: (typeof r.expires_in === 'number' ? r.expires_in : 7200) * 1000 };
        }
        const cls = classifyErrcode(code);
        if (cls.kind !== 'retryable') throw new WecomApiError(`WeCom gettoken (${secret} secret) failed: errcode ${code} (${cls.reason})`, code, false);
        reason = cls.reason;
      }
      if (attempt >= maxRetries) throw new WecomApiError(`WeCom gettoken (${secret} secret) failed: ${reason}`, code, true);
      await this.sleep(backoffMs(attempt, BACKOFF));
    }
  }
}
