/**
 * What every resource module of the Exmail simulator gets: the tenant's state, the options,
 * the clock, and `record()` — the one door into the operation log, so every change the API or
 * the "console" makes is logged the way log/operation reads it back.
 */
import type { ExmailSimLogRecord, ExmailSimState } from './state';

export interface SimOptions {
  corpId: string;
  contactsSecret: string;
  logSecret: string;
  /** The tenant's mail domains: a new member's address must be on one. */
  domains: string[];
  tokenLifetimeSeconds: number;
  /** Longest begin..end span of log/operation, in days, both ends counted. */
  logMaxRangeDays: number;
  /** The calendar of log/operation's dates (minutes east of UTC; Beijing: 480). */
  logUtcOffsetMinutes: number;
  /** Who API writes are logged as (the real value is not documented). */
  apiOperator: string;
}

export type ExmailApp = 'contacts' | 'log';

export interface SimRequest {
  /** 'user/get', 'department/list', 'log/operation' … */
  api: string;
  method: string;
  query: URLSearchParams;
  /** The JSON body as an object ({} when there is none). */
  body: Record<string, unknown>;
  /** The app whose token the call carries. */
  app: ExmailApp;
}

/** `{errcode, errmsg, …}`: Exmail always answers HTTP 200 with one. */
export type Answer = Record<string, unknown> & { errcode: number; errmsg: string };

/** A resource module: its answer, or undefined when the API is not its own. */
export type Route = (req: SimRequest) => Answer | undefined;

export interface SimContext {
  state: ExmailSimState;
  opts: SimOptions;
  now: () => Date;
  /** Log one operation (time = now) by `operator` (default: the API's). */
  record(entry: Omit<ExmailSimLogRecord, 'time' | 'operator' | 'category'>, operator?: string): void;
}

const ERRMSG: Record<number, string> = {
  0: 'ok',
  [-1]: 'system busy',
  40001: 'invalid credential',
  40003: 'invalid userid',
  40013: 'invalid corpid',
  40014: 'invalid access_token',
  40058: 'invalid parameter',
  42001: 'access_token expired',
  45009: 'api freq out of limit',
  47001: 'data format error',
  48002: 'api forbidden',
  60003: 'department not found',
  60004: 'parent department not found',
  60005: 'department contains members',
  60006: 'department contains sub-departments',
  60007: 'root department cannot be deleted',
  60008: 'department name exists',
  60009: 'invalid department name',
  60102: 'userid existed',
  60103: 'mobile invalid',
  60111: 'userid not found',
  60112: 'invalid name',
};

export function answer(errcode: number, extra: Record<string, unknown> = {}): Answer {
  return { errcode, errmsg: ERRMSG[errcode] ?? 'error', ...extra };
}

export function bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
