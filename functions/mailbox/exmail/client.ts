/**
 * Tencent Exmail transport: one client per app secret (Exmail gives each of its apps —
 * 通讯录管理 contacts, 系统日志 log, … — its own secret and so its own token), on the Tencent
 * conventions shared with WeCom (core/tencent.ts: gettoken, errcode envelope, retry loop).
 *
 * Wire facts relied on (exmail.qq.com/qy_mng_logic/doc, as mirrored by the QQ::exmail and
 * sinri/QQExMailApiSDK clients and the service.rtxmail.net / qqbizmail.com copies):
 * - `GET https://api.exmail.qq.com/cgi-bin/gettoken?corpid=&corpsecret=` → `{access_token,
 *   expires_in: 7200}`; a bad secret answers `{errcode: 40001, errmsg: "invalid credential"}`
 *   (doc #10003). "每个应用有不同的secret": one token per app.
 * - Every other call: `?access_token=` in the query, HTTP 200 with errcode/errmsg.
 * - Not confirmed (we found no copy of Exmail's errcode appendix): that Exmail uses WeCom's
 *   codes beyond 40001 — 40014 / 42001 (token), -1 (busy), 45009 (frequency limit), 60102 (userid
 *   exists), 60111 (userid not found), 6000x (departments). The table below assumes it and
 *   says so; an unknown errcode is `unexpected` and not retried.
 * - Not confirmed either: the frequency limits. A client script quotes "每企业调用单个cgi/api不可超过
 *   500次/分，15000次/小时；每ip 10000次/分，300000次/小时"; the simulator's default follows it.
 * - 40001 on a call (not on gettoken) is read as a rejected token — WeChat's wording is
 *   "access_token无效" for it too — and refreshed once; refused again = `auth`.
 */
import { log } from '../../core/log';
import { RateLimiter } from '../../core/rate-limit';
import { TokenCache } from '../../core/retry';
import {
  gettokenUrl,
  TENCENT_SHARED_ERRCODES,
  tencentCall,
  tencentToken,
  type TencentErrClass,
  type TencentFailure,
  type TencentJson,
  type TencentLoopOptions,
} from '../../core/tencent';
import { MailboxError, type MailboxErrorKind } from '../directory';

export type ExmailApp = 'contacts' | 'log';

export interface ExmailClientOptions {
  apiBase: string;
  corpId: string;
  /** The secret of `app` (never logged, never in an error). */
  secret: string;
  app: ExmailApp;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  now?: () => Date;
  /** Retries of a busy / throttled / failed call before giving up retryable (default 4). */
  maxRetries?: number;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** A client-side budget per API (core/rate-limit.ts): calls wait rather than meet 45009. */
  callsPerMinute?: number;
}

interface ExmailErrClass extends TencentErrClass {
  /** The port's word for it (directory.ts MailboxErrorKind). */
  as: MailboxErrorKind;
}

const SHARED_AS: Record<number, MailboxErrorKind> = { 0: 'unexpected', [-1]: 'unavailable', 40014: 'auth', 42001: 'auth', 45009: 'throttled', 45011: 'throttled', 45033: 'throttled' };

/** Exmail's errcodes as far as we rely on them (see the header for what is assumed). */
export const EXMAIL_ERRCODES: Readonly<Record<number, ExmailErrClass>> = {
  ...Object.fromEntries(Object.entries(TENCENT_SHARED_ERRCODES).map(([k, v]) => [k, { ...v, as: SHARED_AS[Number(k)] ?? 'unexpected' }])),
  40001: { kind: 'token', reason: 'invalid credential (secret, or access_token)', as: 'auth' },
  40013: { kind: 'permanent', reason: 'invalid corpid', as: 'auth' },
  48002: { kind: 'permanent', reason: 'API forbidden: the app of this secret lacks the permission', as: 'auth' },
  60011: { kind: 'permanent', reason: 'no permission for this member or department', as: 'auth' },
  40003: { kind: 'permanent', reason: 'invalid userid', as: 'invalid' },
  40058: { kind: 'permanent', reason: 'invalid parameter', as: 'invalid' },
  47001: { kind: 'permanent', reason: 'malformed request body', as: 'invalid' },
  60003: { kind: 'not-found', reason: 'department not found', as: 'not-found' },
  60004: { kind: 'not-found', reason: 'parent department not found', as: 'not-found' },
  60008: { kind: 'permanent', reason: 'department name already exists under this parent', as: 'conflict' },
  60009: { kind: 'permanent', reason: 'invalid department name', as: 'invalid' },
  60102: { kind: 'permanent', reason: 'userid (address) already taken', as: 'conflict' },
  60103: { kind: 'permanent', reason: 'invalid mobile number', as: 'invalid' },
  60104: { kind: 'permanent', reason: 'mobile already used by another member', as: 'conflict' },
  60106: { kind: 'permanent', reason: 'address already used by another member', as: 'conflict' },
  60111: { kind: 'not-found', reason: 'userid not found', as: 'not-found' },
  60112: { kind: 'permanent', reason: 'invalid name', as: 'invalid' },
};

export function classifyExmail(errcode: number): ExmailErrClass {
  return EXMAIL_ERRCODES[errcode] ?? { kind: 'permanent', reason: 'unexpected Exmail error', as: 'unexpected' };
}

export class ExmailClient {
  readonly app: ExmailApp;
  readonly apiBase: string;
  readonly now: () => Date;
  private readonly tokens: TokenCache;
  private readonly loop: Omit<TencentLoopOptions, 'fail'>;
  private readonly limiter?: RateLimiter;

  constructor(private readonly opts: ExmailClientOptions) {
    this.app = opts.app;
    this.apiBase = opts.apiBase.replace(/\/+$/, '');
    this.now = opts.now ?? (() => new Date());
    this.loop = {
      fetch: opts.fetch ?? ((...a) => globalThis.fetch(...a)),
      sleep: opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      maxRetries: opts.maxRetries ?? 4,
      timeoutMs: opts.timeoutMs ?? 10_000,
      classify: classifyExmail,
    };
    this.tokens = new TokenCache(() => this.fetchToken(this.loop.maxRetries), () => this.now().getTime());
    if (opts.callsPerMinute) this.limiter = new RateLimiter({ perMinute: opts.callsPerMinute, sleep: this.loop.sleep });
  }

  /**
   * One API call (`api` like 'user/get'): GET with `query`, POST with `body`. Errcodes listed
   * in `pass` come back to the caller (e.g. 60111 on a delete) instead of throwing.
   */
  call(api: string, o: { query?: Record<string, string>; body?: unknown; pass?: number[] } = {}): Promise<TencentJson> {
    return tencentCall({
      ...this.loop,
      tokens: this.tokens,
      url: (token) => `${this.apiBase}/cgi-bin/${api}?${new URLSearchParams({ access_token: token, ...o.query })}`,
      ...(o.body !== undefined ? { body: o.body } : {}),
      pass: (code) => o.pass?.includes(code) ?? false,
      ...(this.limiter ? { before: () => this.limiter!.take(api) } : {}),
      tokenAfterRefresh: 'fail',
      fail: (f) => this.error(api, f),
    });
  }

  /** One token request, no cache, no retry: the health probe's question (does the secret still work?). */
  requestToken(): Promise<{ value: string; lifetimeMs: number }> {
    return this.fetchToken(0);
  }

  private fetchToken(maxRetries: number): Promise<{ value: string; lifetimeMs: number }> {
    return tencentToken(gettokenUrl(this.apiBase, this.opts.corpId, this.opts.secret), {
      ...this.loop,
      maxRetries,
      fail: (f) => this.error(`gettoken (${this.app} secret)`, f),
    });
  }

  /** Route and errcode only: Exmail's errmsg may echo what we sent, and URLs carry the token. */
  private error(api: string, f: TencentFailure): MailboxError {
    const cls = classifyExmail(f.errcode);
    const kind: MailboxErrorKind = f.retryable ? (cls.as === 'throttled' ? 'throttled' : 'unavailable') : cls.kind === 'token' ? 'auth' : cls.as;
    if (f.retryable) log.debug('exmail call gave up after retries', { api, errcode: f.errcode, attempts: f.attempts });
    const text = f.retryable ? `Exmail ${api} failed after ${f.attempts} attempts: errcode ${f.errcode} (${f.reason})` : `Exmail ${api} failed: errcode ${f.errcode} (${f.reason})`;
    return new MailboxError(text, f.retryable, String(f.errcode), f.retryAfterMs, kind);
  }
}
