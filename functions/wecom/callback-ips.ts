/**
 * WeCom's callback source ranges as a matcher.
 *
 * WeCom publishes the addresses its callbacks come from (`GET /cgi-bin/getcallbackip`, any
 * access token: `{ errcode: 0, ip_list: ['1.2.3.4', '101.226.103.0/25', …] }`,
 * developer.work.weixin.qq.com/document/path/90238 and /98988), entries being single
 * addresses or CIDR ranges. The list changes; old and new ranges overlap for a while, and
 * WeCom advises refreshing it daily.
 *
 * Matching uses node:net's BlockList (IPv4 and IPv6 ranges; an IPv4-mapped IPv6 source such
 * as `::ffff:1.2.3.4`, what a dual-stack socket reports, matches its IPv4 range). Entries that
 * are not an address or a CIDR are skipped and counted, never guessed at.
 */
import { BlockList, isIP } from 'node:net';

export interface CallbackIpRanges {
  /** The entries that parsed, normalized ('1.2.3.4', '10.0.0.0/24', '2001:db8::/32'). */
  valid: string[];
  /** How many entries were skipped as not an address or CIDR. */
  invalid: number;
  contains(ip: string): boolean;
}

/** '1.2.3.4' → a single address; '10.0.0.0/24' → a range; anything else → undefined. */
function parseEntry(entry: unknown): { address: string; prefix?: number; family: 'ipv4' | 'ipv6' } | undefined {
  if (typeof entry !== 'string') return undefined;
  const text = entry.trim();
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (slash === -1) return { address, family };
  const bits = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = Number(bits);
  if (prefix > (version === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family };
}

export function callbackIpRanges(entries: readonly unknown[]): CallbackIpRanges {
  const list = new BlockList();
  const valid: string[] = [];
  let invalid = 0;
  for (const entry of entries) {
    const e = parseEntry(entry);
    if (!e) {
      invalid++;
      continue;
    }
    if (e.prefix === undefined) {
      list.addAddress(e.address, e.family);
      valid.push(e.address);
    } else {
      list.addSubnet(e.address, e.prefix, e.family);
      valid.push(`${e.address}/${e.prefix}`);
    }
  }
  return {
    valid,
    invalid,
    contains(ip: string): boolean {
      const version = isIP(ip);
      if (version === 0) return false;
      return list.check(ip, version === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
