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
 * - The exchange, the token request and the retry loop (backoff 200 ms … 5 s) are
 *   core/tencent.ts, shared with the Tencent Exmail client: the same conventions.
 */
import { WecomApiError, type WecomContacts, type WecomDepartment, type WecomUser, type WecomUserInput } from './contacts';
import { RateLimiter } from '../core/rate-limit';
import { TokenCache } from '../core/retry';
import { gettokenUrl, tencentCall, tencentToken, type TencentJson } from '../core/tencent';
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
type Json = TencentJson;

/** Fields WeCom hides under its sensitive-data policy, sometimes as "" rather than absent. */
const HIDDEN_AS_EMPTY = ['mobile', 'email', 'biz_mail', 'telephone', 'address', 'avatar', 'thumb_avatar', 'qr_code'] as const;

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
    return tencentCall({
      ...this.loop(),
      tokens: this.tokens[secret],
      url: (token) => `${this.base}/cgi-bin/${api}?${new URLSearchParams({ access_token: token, ...(opt.query ?? {}) })}`,
      ...(opt.body !== undefined ? { body: opt.body } : {}),
      pass: (_code, cls) => cls.kind === 'not-found' && !!opt.notFoundOk,
      ...(this.limiter ? { before: () => this.limiter!.take(api) } : {}),
      // A token refused right after a refresh: revoked under load; retried like busy.
      tokenAfterRefresh: 'retry',
      fail: (f) =>
        f.retryable
          ? new WecomApiError(`WeCom ${api} failed after ${f.attempts} attempts: errcode ${f.errcode} (${f.reason})`, f.errcode, true, f.retryAfterMs)
          : new WecomApiError(`WeCom ${api} failed: errcode ${f.errcode} (${f.reason})`, f.errcode, false),
    });
  }

  /** The transport settings of every call and token request (core/tencent.ts runs the loop). */
  private loop() {
    return {
      fetch: this.fetch,
      sleep: this.sleep,
      maxRetries: this.opts.maxRetries ?? 3,
      timeoutMs: this.opts.timeoutMs ?? 10_000,
      classify: classifyErrcode,
    };
  }

  private fetchToken(secret: Secret): Promise<{ value: string; lifetimeMs: number }> {
    const corpsecret = secret === 'app' ? this.opts.appSecret : this.opts.contactsSecret;
    return tencentToken(gettokenUrl(this.base, this.opts.corpId, corpsecret), {
      ...this.loop(),
      fail: (f) =>
        f.retryable
          ? new WecomApiError(`WeCom gettoken (${secret} secret) failed: ${f.reason}`, f.errcode, true)
          : new WecomApiError(`WeCom gettoken (${secret} secret) failed: errcode ${f.errcode} (${f.reason})`, f.errcode, false),
    });
  }
}
