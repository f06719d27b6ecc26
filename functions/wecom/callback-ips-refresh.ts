/**
 * Fetch WeCom's callback source ranges and store them for the receiver (the hourly
 * `wecom-callback-ips` job; lib/stack.ts gives it the WeCom API secret and a write to this
 * one inbox item, nothing else).
 *
 * Wire contract (developer.work.weixin.qq.com/document/path/90238, "获取企业微信回调IP段"):
 *   GET /cgi-bin/gettoken?corpid=…&corpsecret=…           → { errcode: 0, access_token, expires_in }
 *   GET /cgi-bin/getcallbackip?access_token=…             → { errcode: 0, errmsg: 'ok', ip_list: [...] }
 * Any application's token may call it ("权限说明: 无限定"): the self-built app's secret is
 * tried first, the contacts-sync secret if that one is refused. An hourly gettoken is well
 * within WeCom's advice not to call it at high frequency, so this job keeps no token cache.
 *
 * A failed fetch, or a list with no usable entry, throws and leaves the stored list alone:
 * the receiver keeps enforcing it until it is `maxAge` old, then fails open (and alarms).
 * Errors name the API and the errcode, never the URL (the token travels in the query).
 */
import { log } from '../core/log';
import type { CallbackIpListStore } from '../store/callback-ip-list';
import { callbackIpRanges } from './callback-ips';
import { WecomApiError } from './contacts';
import { classifyErrcode } from './errcodes';

export interface CallbackIpSource {
  /** The raw `ip_list` as WeCom returned it. */
  fetch(): Promise<unknown[]>;
}

export interface WecomCallbackIpSourceOptions {
  apiBase: string;
  corpId: string;
  /** Tried in order (app secret first); the next one only when WeCom refuses the previous. */
  secrets: string[];
  fetch?: typeof fetch;
  timeoutMs?: number;
}

type Json = Record<string, unknown> & { errcode?: number };

export function wecomCallbackIpSource(opts: WecomCallbackIpSourceOptions): CallbackIpSource {
  const base = opts.apiBase.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? ((...a: Parameters<typeof fetch>) => globalThis.fetch(...a));

  async function get(api: string, query: Record<string, string>): Promise<Json> {
    let res: Response;
    try {
      res = await doFetch(`${base}/cgi-bin/${api}?${new URLSearchParams(query)}`, {
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new WecomApiError(`WeCom ${api} failed: ${(err as Error).name === 'TimeoutError' ? 'timeout' : 'network error'}`, -1, true);
    }
    let body: Json;
    try {
      body = (await res.json()) as Json;
    } catch {
      throw new WecomApiError(`WeCom ${api} failed: HTTP ${res.status}, not JSON`, -1, res.status >= 500);
    }
    const code = typeof body.errcode === 'number' ? body.errcode : 0;
    if (code !== 0) {
      const cls = classifyErrcode(code);
      throw new WecomApiError(`WeCom ${api} failed: errcode ${code} (${cls.reason})`, code, cls.kind === 'retryable');
    }
    return body;
  }

  async function withSecret(secret: string): Promise<unknown[]> {
    const token = await get('gettoken', { corpid: opts.corpId, corpsecret: secret });
    if (typeof token.access_token !== 'string') throw new WecomApiError('WeCom gettoken failed: no access_token', -1, true);
    const out = await get('getcallbackip', { access_token: token.access_token });
    if (!Array.isArray(out.ip_list)) throw new WecomApiError('WeCom getcallbackip failed: no ip_list', -1, true);
    return out.ip_list;
  }

  return {
    async fetch() {
      const secrets = opts.secrets.filter((s) => s.length > 0);
      if (secrets.length === 0) throw new Error('WeCom getcallbackip: no API secret configured');
      let last: unknown;
      for (const secret of secrets) {
        try {
          return await withSecret(secret);
        } catch (err) {
          last = err;
          // Busy / network: the other secret would fail the same way; the next run retries.
          if (err instanceof WecomApiError && err.retryable) throw err;
        }
      }
      throw last;
    },
  };
}

export interface RefreshCallbackIpsResult {
  stored: number;
  /** Entries WeCom sent that are neither an address nor a CIDR (skipped). */
  invalid: number;
  fetchedAt: string;
}

export class NoUsableCallbackIpsError extends Error {
  constructor(readonly received: number) {
    super(`WeCom getcallbackip returned no usable address (${received} entries): the stored list is kept`);
    this.name = 'NoUsableCallbackIpsError';
  }
}

export async function refreshCallbackIps(deps: {
  source: CallbackIpSource;
  store: Pick<CallbackIpListStore, 'write'>;
  now?: () => Date;
}): Promise<RefreshCallbackIpsResult> {
  const raw = await deps.source.fetch();
  const ranges = callbackIpRanges(raw);
  // An empty list stored would refuse every callback: never store one.
  if (ranges.valid.length === 0) throw new NoUsableCallbackIpsError(raw.length);
  if (ranges.invalid > 0) log.warn('WeCom getcallbackip: entries skipped (not an address or CIDR)', { skipped: ranges.invalid });
  const fetchedAt = (deps.now?.() ?? new Date()).toISOString();
  await deps.store.write({ ips: ranges.valid, fetchedAt });
  return { stored: ranges.valid.length, invalid: ranges.invalid, fetchedAt };
}
