/**
 * The callback source check: is this request's source address one WeCom calls back from?
 *
 * What it protects: the receiver's crypto and parser then only ever see traffic from WeCom's
 * own ranges, so a scan or a flood from elsewhere is refused before a byte is parsed, and a
 * stolen token/EncodingAESKey alone is not enough to inject events from an arbitrary host.
 * It adds to the signature check; it does not replace it.
 *
 * The list comes from the inbox-table item the scheduled refresher writes (the receiver
 * never holds the WeCom API secret), cached per container for `cacheMs`.
 *
 * FAIL OPEN, loudly, when the list cannot be trusted to be current: no item, an item older
 * than `maxAgeMs`, a read that fails, or a request without a source address. Refusing then
 * would drop WeCom's genuine callbacks (WeCom does not replay them) because of OUR outage,
 * while every callback is still signature-checked. Each such request is counted
 * (`CallbackSourceUnverified`, alarmed in lib/stack.ts) and the reason is logged once per load.
 *
 * Modes: 'enforce' refuses outside sources; 'report' counts and logs them but lets them
 * through (to roll the check out, or behind a proxy that hides the source); 'off' skips it.
 * Logs carry the reason and the address family, never the address.
 */
import { isIP } from 'node:net';
import { log } from '../core/log';
import type { CallbackIpListStore } from '../store/callback-ip-list';
import { callbackIpRanges, type CallbackIpRanges } from './callback-ips';

export const SOURCE_CHECK_MODES = ['enforce', 'report', 'off'] as const;
export type SourceCheckMode = (typeof SOURCE_CHECK_MODES)[number];

/** 'refused' only in enforce mode; 'reported' is an outside source let through in report mode. */
export type SourceVerdict = 'allowed' | 'refused' | 'reported' | 'unverified';

/** EMF metric names (namespace WecomMailboxSync, dimension service); lib/stack.ts alarms on `unverified`. */
export const SOURCE_CHECK_METRICS = {
  unverified: 'CallbackSourceUnverified',
  refused: 'CallbackSourceRefused',
} as const;

export interface SourceCheckMetrics {
  count(name: string): void;
}

export interface CallbackSourceCheckOptions {
  store: Pick<CallbackIpListStore, 'read'>;
  mode?: SourceCheckMode;
  /** A list fetched longer ago than this is not trusted: fail open. */
  maxAgeMs: number;
  /** How long a container keeps a loaded list before reading the item again. Default 5 min. */
  cacheMs?: number;
  /** How long a failed or empty read is kept before trying again. Default 30 s. */
  retryMs?: number;
  now?: () => number;
  metrics?: SourceCheckMetrics;
}

export type CallbackSourceCheck = (sourceIp: string | undefined) => Promise<SourceVerdict>;

type Loaded =
  | { kind: 'list'; ranges: CallbackIpRanges; fetchedAtMs: number; loadedAtMs: number }
  | { kind: 'none'; reason: 'missing' | 'unreadable'; loadedAtMs: number };

export function createCallbackSourceCheck(opts: CallbackSourceCheckOptions): CallbackSourceCheck {
  const mode = opts.mode ?? 'enforce';
  const now = opts.now ?? Date.now;
  const cacheMs = opts.cacheMs ?? 5 * 60_000;
  const retryMs = Math.min(opts.retryMs ?? 30_000, cacheMs);
  const count = (name: string) => opts.metrics?.count(name);
  let loaded: Loaded | undefined;
  let loading: Promise<Loaded> | undefined;
  let staleLogged = false;

  async function load(): Promise<Loaded> {
    const at = now();
    try {
      const record = await opts.store.read();
      if (!record) {
        log.warn('wecom callback source check: no WeCom callback IP list stored; accepting callbacks (fail open)', { reason: 'missing' });
        return { kind: 'none', reason: 'missing', loadedAtMs: at };
      }
      const ranges = callbackIpRanges(record.ips);
      const fetchedAtMs = Date.parse(record.fetchedAt);
      if (ranges.valid.length === 0 || Number.isNaN(fetchedAtMs)) {
        log.warn('wecom callback source check: stored WeCom callback IP list is unusable; accepting callbacks (fail open)', { reason: 'unreadable' });
        return { kind: 'none', reason: 'unreadable', loadedAtMs: at };
      }
      staleLogged = false;
      return { kind: 'list', ranges, fetchedAtMs, loadedAtMs: at };
    } catch (err) {
      log.warn('wecom callback source check: cannot read the WeCom callback IP list; accepting callbacks (fail open)', {
        reason: 'unreadable',
        error: err instanceof Error ? err.name : typeof err,
      });
      return { kind: 'none', reason: 'unreadable', loadedAtMs: at };
    }
  }

  async function current(): Promise<Loaded> {
    const t = now();
    const keep = loaded && t - loaded.loadedAtMs < (loaded.kind === 'list' ? cacheMs : retryMs);
    if (keep) return loaded!;
    // One read in flight per container, however many requests arrive meanwhile.
    loading ??= load().then((l) => {
      loaded = l;
      loading = undefined;
      return l;
    });
    return loading;
  }

  return async (sourceIp) => {
    if (mode === 'off') return 'allowed';
    if (!sourceIp || isIP(sourceIp) === 0) {
      count(SOURCE_CHECK_METRICS.unverified);
      return 'unverified';
    }
    const l = await current();
    if (l.kind === 'none') {
      count(SOURCE_CHECK_METRICS.unverified);
      return 'unverified';
    }
    const ageMs = now() - l.fetchedAtMs;
    if (ageMs > opts.maxAgeMs) {
      if (!staleLogged) {
        staleLogged = true;
        log.warn('wecom callback source check: WeCom callback IP list is stale; accepting callbacks (fail open)', {
          reason: 'stale',
          ageHours: Math.round(ageMs / 360_000) / 10,
        });
      }
      count(SOURCE_CHECK_METRICS.unverified);
      return 'unverified';
    }
    if (l.ranges.contains(sourceIp)) return 'allowed';
    count(SOURCE_CHECK_METRICS.refused);
    const family = isIP(sourceIp) === 4 ? 'ipv4' : 'ipv6';
    if (mode === 'report') {
      log.warn('wecom callback source not in WeCom callback ranges (report mode: accepted)', { family });
      return 'reported';
    }
    return 'refused';
  };
}
