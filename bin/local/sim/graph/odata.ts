/**
 * The OData and error plumbing every Graph resource shares: Graph's error body, the one
 * `$filter` form the adapter sends (`prop eq 'value'`), opaque tokens, and paging that costs
 * O(page) per request instead of O(offset): a `$skiptoken` names a live iterator kept for the
 * next page, so reading 100,000 users 999 at a time is linear (the drain benchmark found the
 * old copy-and-slice quadratic). A token whose iterator is gone (evicted, or a restart) is
 * still honoured by skipping from the start.
 */
import { randomUUID } from 'node:crypto';
import type { JsonAnswer } from '../loopback';

export type Res = JsonAnswer;

export function gErr(status: number, code: string, message: string, extra: Record<string, unknown> = {}): Res {
  return {
    status,
    body: { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() }, ...extra } },
  };
}

export const notFound = (id: string): Res => gErr(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);

export function parseFilter(filter: string): { prop: string; value: string } | 'unsupported' {
  const m = /^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$/.exec(filter);
  if (!m) return 'unsupported';
  return { prop: m[1]!, value: m[2]!.replace(/''/g, "'") };
}

export function b64(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

export function unb64<T>(s: string): T | undefined {
  try {
    return JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

interface Cursor<T> {
  it: Iterator<T>;
  /** Position of the next item this cursor yields. */
  at: number;
  /** One item read ahead (to know whether another page exists). */
  ahead?: { value: T };
}

/** Live iterators behind `$skiptoken`s: a few hundred readers at once is plenty for a simulator. */
export class Pager {
  private readonly cursors = new Map<string, Cursor<unknown>>();
  constructor(private readonly max = 256) {}

  /** Items [offset, offset + size) of `source()` and the token of the rest, if any. */
  page<T>(source: () => Iterator<T>, token: { o: number; c?: string } | undefined, size: number): { items: T[]; next?: { o: number; c: string } } {
    const offset = token?.o ?? 0;
    let id = token?.c;
    let cursor = id ? (this.cursors.get(id) as Cursor<T> | undefined) : undefined;
    if (id) this.cursors.delete(id);
    if (!cursor || cursor.at !== offset) {
      cursor = { it: source(), at: 0 };
      while (cursor.at < offset && !cursor.it.next().done) cursor.at++;
    }
    const take = (): { value: T } | undefined => {
      if (cursor.ahead) {
        const a = cursor.ahead;
        delete cursor.ahead;
        return a;
      }
      const r = cursor.it.next();
      return r.done ? undefined : { value: r.value };
    };
    const items: T[] = [];
    for (let next = items.length < size ? take() : undefined; next; next = items.length < size ? take() : undefined) {
      items.push(next.value);
      cursor.at++;
    }
    const ahead = take();
    if (!ahead) return { items };
    cursor.ahead = ahead;
    id ??= randomUUID();
    this.cursors.set(id, cursor);
    if (this.cursors.size > this.max) this.cursors.delete(this.cursors.keys().next().value!);
    return { items, next: { o: cursor.at, c: id } };
  }
}
