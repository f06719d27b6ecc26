/**
 * The WeCom callback source check: the ranges matcher (addresses and CIDRs, IPv4 and IPv6,
 * IPv4-mapped sources) and the check around it (fresh list enforced; missing, stale or
 * unreadable list fails open and counts the metric; report and off modes; per-container cache).
 */
import { describe, expect, it } from 'vitest';
import { MemoryCallbackIpList, type CallbackIpListStore } from '../../functions/store/callback-ip-list';
import { callbackIpRanges } from '../../functions/wecom/callback-ips';
import { createCallbackSourceCheck, SOURCE_CHECK_METRICS, type SourceCheckMode } from '../../functions/wecom/callback-source';

const HOUR = 3_600_000;

describe('callbackIpRanges', () => {
  const ranges = callbackIpRanges(['101.226.103.0/25', '182.254.11.176', ' 2001:db8:10::/48 ', '240e:ff:e000::1']);

  it('matches single addresses and CIDR ranges at their boundaries', () => {
    expect(ranges.contains('182.254.11.176')).toBe(true);
    expect(ranges.contains('182.254.11.177')).toBe(false);
    expect(ranges.contains('101.226.103.0')).toBe(true);
    expect(ranges.contains('101.226.103.127')).toBe(true); // last address of the /25
    expect(ranges.contains('101.226.103.128')).toBe(false); // first address past it
    expect(ranges.contains('101.226.102.255')).toBe(false);
  });

  it('matches IPv6 ranges and addresses, in any spelling', () => {
    expect(ranges.contains('2001:db8:10:ffff::1')).toBe(true);
    expect(ranges.contains('2001:DB8:10:0:0:0:0:2')).toBe(true);
    expect(ranges.contains('2001:db8:11::1')).toBe(false);
    expect(ranges.contains('240e:ff:e000:0::1')).toBe(true);
    expect(ranges.contains('240e:ff:e000::2')).toBe(false);
  });

  it('an IPv4-mapped IPv6 source (a dual-stack socket) matches its IPv4 range', () => {
    expect(ranges.contains('::ffff:101.226.103.5')).toBe(true);
    expect(ranges.contains('::ffff:8.8.8.8')).toBe(false);
  });

  it('skips and counts entries that are not an address or a CIDR; never matches a non-address', () => {
    const r = callbackIpRanges(['10.0.0.0/33', '1.2.3', 'example.com', '10.0.0.0/x', 42, '', '::/129', '10.1.0.0/16']);
    expect(r.valid).toEqual(['10.1.0.0/16']);
    expect(r.invalid).toBe(7);
    expect(r.contains('10.1.2.3')).toBe(true);
    expect(r.contains('10.0.0.1')).toBe(false);
    expect(r.contains('not-an-ip')).toBe(false);
    expect(r.contains('')).toBe(false);
  });
});

function harness(opts: { mode?: SourceCheckMode; record?: { ips: string[]; fetchedAt: string }; store?: CallbackIpListStore } = {}) {
  let t = Date.parse('2026-12-01T08:00:00Z');
  const memory = new MemoryCallbackIpList();
  if (opts.record) memory.record = opts.record;
  const store = opts.store ?? memory;
  const counted: string[] = [];
  const check = createCallbackSourceCheck({
    store,
    mode: opts.mode ?? 'enforce',
    maxAgeMs: 24 * HOUR,
    cacheMs: 5 * 60_000,
    retryMs: 30_000,
    now: () => t,
    metrics: { count: (n) => void counted.push(n) },
  });
  return { check, memory, counted, advance: (ms: number) => void (t += ms), at: () => new Date(t).toISOString() };
}

const fresh = { ips: ['101.226.103.0/25', '2001:db8::/32'], fetchedAt: '2026-12-01T07:30:00Z' };

describe('createCallbackSourceCheck', () => {
  it('a fresh list: sources inside pass, outside are refused and counted', async () => {
    const h = harness({ record: fresh });
    expect(await h.check('101.226.103.9')).toBe('allowed');
    expect(await h.check('2001:db8::9')).toBe('allowed');
    expect(await h.check('203.0.113.7')).toBe('refused');
    expect(h.counted).toEqual([SOURCE_CHECK_METRICS.refused]);
  });

  it('no stored list: fails open, each such callback counted as unverified', async () => {
    const h = harness();
    expect(await h.check('203.0.113.7')).toBe('unverified');
    expect(await h.check('101.226.103.9')).toBe('unverified');
    expect(h.counted).toEqual([SOURCE_CHECK_METRICS.unverified, SOURCE_CHECK_METRICS.unverified]);
  });

  it('a list older than the max age: fails open with the metric; refreshed, it is enforced again', async () => {
    const h = harness({ record: fresh });
    expect(await h.check('203.0.113.7')).toBe('refused');
    h.advance(24 * HOUR); // fetched 24.5 h ago now
    expect(await h.check('203.0.113.7')).toBe('unverified');
    expect(h.counted.at(-1)).toBe(SOURCE_CHECK_METRICS.unverified);
    await h.memory.write({ ...fresh, fetchedAt: h.at() });
    h.advance(5 * 60_000); // past the container cache
    expect(await h.check('203.0.113.7')).toBe('refused');
  });

  it('a store that cannot be read, or an unusable item: fails open with the metric, and retries soon', async () => {
    let reads = 0;
    const failing: CallbackIpListStore = {
      read: async () => {
        reads++;
        if (reads === 1) throw new Error('ProvisionedThroughputExceededException');
        return reads === 2 ? { ips: ['garbage'], fetchedAt: '2026-12-01T07:30:00Z' } : fresh;
      },
      write: async () => {},
    };
    const h = harness({ store: failing });
    expect(await h.check('203.0.113.7')).toBe('unverified');
    h.advance(31_000);
    expect(await h.check('203.0.113.7')).toBe('unverified'); // read 2: no usable entry
    h.advance(31_000);
    expect(await h.check('203.0.113.7')).toBe('refused'); // read 3: a good list
    expect(h.counted).toEqual([SOURCE_CHECK_METRICS.unverified, SOURCE_CHECK_METRICS.unverified, SOURCE_CHECK_METRICS.refused]);
  });

  it('no source address (not behind API Gateway): unverified, counted', async () => {
    const h = harness({ record: fresh });
    expect(await h.check(undefined)).toBe('unverified');
    expect(await h.check('nonsense')).toBe('unverified');
    expect(h.counted).toEqual([SOURCE_CHECK_METRICS.unverified, SOURCE_CHECK_METRICS.unverified]);
  });

  it('report mode lets an outside source through but counts it; off mode does not even read the list', async () => {
    const r = harness({ mode: 'report', record: fresh });
    expect(await r.check('203.0.113.7')).toBe('reported');
    expect(await r.check('101.226.103.9')).toBe('allowed');
    expect(r.counted).toEqual([SOURCE_CHECK_METRICS.refused]);
    const off = harness({ mode: 'off', record: fresh });
    expect(await off.check('203.0.113.7')).toBe('allowed');
    expect(off.memory.reads).toBe(0);
  });

  it('reads the item once per cache window per container, however many callbacks arrive at once', async () => {
    const h = harness({ record: fresh });
    await Promise.all(Array.from({ length: 20 }, () => h.check('101.226.103.9')));
    expect(h.memory.reads).toBe(1);
    h.advance(4 * 60_000);
    await h.check('101.226.103.9');
    expect(h.memory.reads).toBe(1);
    h.advance(60_001);
    await h.check('101.226.103.9');
    expect(h.memory.reads).toBe(2);
  });
});

describe('the deployed handler’s settings (CALLBACK_SOURCE_CHECK, CALLBACK_IPS_MAX_AGE_SECONDS)', () => {
  it('off unless configured; a mode and a max age from env; nonsense refused at cold start', async () => {
    const { sourceCheckSettings } = await import('../../functions/handlers/wecom-callback');
    expect(sourceCheckSettings({})).toBeUndefined();
    expect(sourceCheckSettings({ CALLBACK_SOURCE_CHECK: 'off' })).toBeUndefined();
    expect(sourceCheckSettings({ CALLBACK_SOURCE_CHECK: 'enforce', CALLBACK_IPS_MAX_AGE_SECONDS: '7200' })).toEqual({ mode: 'enforce', maxAgeMs: 7_200_000 });
    expect(sourceCheckSettings({ CALLBACK_SOURCE_CHECK: 'report' })).toEqual({ mode: 'report', maxAgeMs: 86_400_000 });
    expect(() => sourceCheckSettings({ CALLBACK_SOURCE_CHECK: 'block' })).toThrow(/CALLBACK_SOURCE_CHECK must be one of enforce, report, off/);
    expect(() => sourceCheckSettings({ CALLBACK_SOURCE_CHECK: 'enforce', CALLBACK_IPS_MAX_AGE_SECONDS: '-1' })).toThrow(/CALLBACK_IPS_MAX_AGE_SECONDS/);
  });
});
