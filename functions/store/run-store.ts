/**
 * Scratch space of a job that runs in chunks (a reconcile past one Lambda run): items in
 * partitions, each partition read back in key order page by page; every write is an
 * overwrite, so a chunk redone after a crash writes the same items again and nothing
 * doubles; everything expires by TTL a few days after the run. Plus one versioned item per
 * job — its checkpoint and lease — written with an optimistic version check, so two
 * executions of one job can never both advance it.
 *
 * Values are JSON. The caller decides what goes in and keeps personal data out: sensitive
 * fields only as keyed hashes and masks (sync/reconcile/records.ts).
 *
 * Order: keys compare by Unicode code point, which is UTF-8 byte order, which is how
 * DynamoDB sorts a string sort key. `compareKeys` is that order, for code that merges
 * partitions; JavaScript's `<` compares UTF-16 code units and differs above U+FFFF.
 */
import { VersionConflictError } from './ports';

export interface RunItem<T = unknown> {
  pk: string;
  sk: string;
  value: T;
}

export interface RunPage<T> {
  items: Array<RunItem<T>>;
  /** More items may follow the last one (false: the partition is exhausted). */
  more: boolean;
}

export interface RunStore {
  /** Write (overwrite) items; any number, any partitions. */
  put(items: readonly RunItem[]): Promise<void>;
  get<T>(pk: string, sk: string): Promise<T | undefined>;
  /** Items of `pk` whose key is greater than `after`, in key order, at most `limit`. */
  page<T>(pk: string, opts: { after?: string; limit: number }): Promise<RunPage<T>>;
  getVersioned<T>(pk: string, sk: string): Promise<{ value: T; version: number } | undefined>;
  /** Write if the stored version is `expected` (0 = must not exist); returns the new version. Throws VersionConflictError. */
  putVersioned(pk: string, sk: string, value: unknown, expected: number): Promise<number>;
}

/** Code-point (= UTF-8 byte = DynamoDB) order of two keys. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF, i.e. code points above U+FFFF) sort after every other BMP unit.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** In memory: tests, and an in-process run without a table (small directories). */
export class MemoryRunStore implements RunStore {
  private readonly parts = new Map<string, { keys: string[]; values: Map<string, string> }>();
  private readonly versioned = new Map<string, { value: string; version: number }>();
  /** Item writes so far (a test's count of write traffic). */
  writes = 0;

  async put(items: readonly RunItem[]): Promise<void> {
    for (const item of items) {
      this.writes++;
      let p = this.parts.get(item.pk);
      if (!p) this.parts.set(item.pk, (p = { keys: [], values: new Map() }));
      // Stored as JSON, as in DynamoDB: a caller mutating its object later changes nothing here.
      if (!p.values.has(item.sk)) p.keys.splice(lowerBound(p.keys, item.sk), 0, item.sk);
      p.values.set(item.sk, JSON.stringify(item.value));
    }
  }

  async get<T>(pk: string, sk: string): Promise<T | undefined> {
    const v = this.parts.get(pk)?.values.get(sk);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  async page<T>(pk: string, opts: { after?: string; limit: number }): Promise<RunPage<T>> {
    const p = this.parts.get(pk);
    if (!p) return { items: [], more: false };
    let from = opts.after === undefined ? 0 : lowerBound(p.keys, opts.after);
    if (opts.after !== undefined && p.keys[from] === opts.after) from++;
    const keys = p.keys.slice(from, from + opts.limit);
    return { items: keys.map((sk) => ({ pk, sk, value: JSON.parse(p.values.get(sk)!) as T })), more: from + keys.length < p.keys.length };
  }

  async getVersioned<T>(pk: string, sk: string): Promise<{ value: T; version: number } | undefined> {
    const v = this.versioned.get(`${pk}\u0000${sk}`);
    return v ? { value: JSON.parse(v.value) as T, version: v.version } : undefined;
  }

  async putVersioned(pk: string, sk: string, value: unknown, expected: number): Promise<number> {
    const key = `${pk}\u0000${sk}`;
    if ((this.versioned.get(key)?.version ?? 0) !== expected) throw new VersionConflictError(`${pk}/${sk}`);
    this.versioned.set(key, { value: JSON.stringify(value), version: expected + 1 });
    return expected + 1;
  }

  /** Items held (a test's measure of what a run left behind). */
  get size(): number {
    let n = 0;
    for (const p of this.parts.values()) n += p.keys.length;
    return n;
  }
}

function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
