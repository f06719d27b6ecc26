/**
 * The scheduled catch-up behind the push channels (and the whole feed when they are off):
 * "subject mailbox:google:<id> may have changed" for accounts that changed since the last run.
 *
 * The Directory API has no delta query (no change token, no modification time on a user). What
 * it has is an `etag` per user that changes with every change, and a listing of the recently
 * deleted users (`showDeleted=true`). So the honest catch-up is a full listing — only `id` and
 * `etag` asked for (`fields=`), 500 a page — compared with the last one. Keeping every etag
 * would not fit the one state item the cursor lives in (100,000 users × ~60 bytes), so the
 * cursor is a DIGEST: 4,096 buckets (by a hash of the id), each the sum of a 32-bit hash of
 * (id, etag, live|deleted) over its users — 16 KiB whatever the directory's size. A bucket
 * whose sum moved holds at least one changed, created, deleted, restored or purged user, and
 * every user listed in it is queued (about users / 4,096 of them per change: ~25 for 100,000
 * users). A purged user cannot be named, but its deletion was seen 20 days earlier.
 *
 * Memory: one page of users at a time plus the id of every user listed in this run (to name
 * the members of a moved bucket) — O(users) strings, ~4 MB for 100,000.
 * Cost: users / 500 list calls (+ the deleted pages) per run, so it runs at most every
 * `catchUpIntervalMinutes` (default 60), not on every upkeep (which renews channels).
 * Without a digest (first run, or one from another format) the run only records one and
 * queues nothing: the gap is the reconcile's, as for Graph's expired delta token.
 *
 * The same state item also remembers the push channels (channels.ts): Google cannot list them.
 */
import { createHash } from 'node:crypto';
import { log } from '../../core/log';
import type { SyncMessage } from '../../queue/messages';
import { eventKey } from '../event-keys';
import type { FeedCursorStore } from '../provider';
import type { ChannelRecord } from './channels';
import type { GoogleClient } from './client';
import { MAX_RESULTS } from './directory';
import { accountSubject } from './notifications';

export const DIGEST_BUCKETS = 4096;
const FORMAT = 1;

export interface FeedState {
  channels: ChannelRecord[];
  /** base64 of DIGEST_BUCKETS little-endian uint32 sums. */
  digest?: string;
  /** When the catch-up last ran (ISO). */
  caughtUpAt?: string;
}

/** The feed state in its cursor (one JSON string); an unreadable one reads as empty. */
export function decodeFeedState(raw: string | undefined): FeedState {
  if (!raw) return { channels: [] };
  try {
    const v = JSON.parse(raw) as { v?: number; channels?: ChannelRecord[]; digest?: string; caughtUpAt?: string };
    if (v.v !== FORMAT) return { channels: [] };
    return { channels: Array.isArray(v.channels) ? v.channels : [], ...(v.digest ? { digest: v.digest } : {}), ...(v.caughtUpAt ? { caughtUpAt: v.caughtUpAt } : {}) };
  } catch {
    return { channels: [] };
  }
}

export function encodeFeedState(s: FeedState): string {
  return JSON.stringify({ v: FORMAT, ...s });
}

/** Where the state lives: the state table's cursor item when wired, else this process's memory. */
export function feedStateStore(cursor: FeedCursorStore | undefined): { load(): Promise<FeedState>; save(s: FeedState): Promise<void>; durable: boolean } {
  if (cursor) return { load: async () => decodeFeedState(await cursor.get()), save: (s) => cursor.put(encodeFeedState(s)), durable: true };
  let mem: FeedState = { channels: [] };
  return { load: async () => structuredClone(mem), save: async (s) => void (mem = structuredClone(s)), durable: false };
}

const u32 = (buf: Buffer, at = 0) => buf.readUInt32LE(at);
const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The bucket of a user id, and the hash its (etag, liveness) adds to it. */
export function digestTerm(id: string, etag: string, deleted: boolean): { bucket: number; term: number } {
  return { bucket: u32(sha(`b\0${id}`)) % DIGEST_BUCKETS, term: u32(sha(`t\0${id}\0${etag}\0${deleted ? 'd' : 'l'}`)) };
}

export interface CatchUpOptions {
  customer: string;
  state: FeedState;
  enqueue: (messages: SyncMessage[]) => Promise<void>;
  now: () => Date;
}

/** One listing of live and deleted users into a digest, and the ids per bucket. */
async function listDigest(client: GoogleClient, customer: string): Promise<{ sums: Uint32Array; ids: string[]; buckets: Uint16Array }> {
  const sums = new Uint32Array(DIGEST_BUCKETS);
  const ids: string[] = [];
  let buckets = new Uint16Array(1024);
  for (const deleted of [false, true]) {
    let pageToken: string | undefined;
    do {
      const { json } = await client.call('GET', '/admin/directory/v1/users', {
        route: deleted ? 'GET /users?showDeleted=true' : 'GET /users',
        query: { customer, maxResults: MAX_RESULTS, fields: 'nextPageToken,users(id,etag)', pageToken, ...(deleted ? { showDeleted: 'true' } : {}) },
      });
      for (const u of (json?.users ?? []) as Array<{ id?: string; etag?: string }>) {
        if (typeof u.id !== 'string') continue;
        const { bucket, term } = digestTerm(u.id, u.etag ?? '', deleted);
        sums[bucket] = (sums[bucket]! + term) >>> 0;
        if (ids.length === buckets.length) {
          const grown = new Uint16Array(buckets.length * 2);
          grown.set(buckets);
          buckets = grown;
        }
        buckets[ids.length] = bucket;
        ids.push(u.id);
      }
      pageToken = json?.nextPageToken;
    } while (pageToken);
  }
  return { sums, ids, buckets };
}

/**
 * Queue `mailbox:google:<id>` for the users of every bucket whose sum moved since the stored
 * digest, then return the new digest (the caller stores it after the messages are queued: a
 * crash in between queues the same round again, under the same event ids).
 */
export async function catchUp(client: GoogleClient, o: CatchUpOptions): Promise<{ changed: number; full: boolean; digest: string }> {
  const { sums, ids, buckets } = await listDigest(client, o.customer);
  const digest = Buffer.from(sums.buffer, sums.byteOffset, sums.byteLength).toString('base64');
  const before = o.state.digest ? Buffer.from(o.state.digest, 'base64') : undefined;
  if (!before || before.length !== DIGEST_BUCKETS * 4) {
    log.info('google catch-up: first digest recorded; changes before it are the reconcile\'s to find', { users: ids.length });
    return { changed: 0, full: true, digest };
  }
  const moved = new Set<number>();
  for (let b = 0; b < DIGEST_BUCKETS; b++) if (u32(before, b * 4) !== sums[b]) moved.add(b);
  const changed = [...new Set(ids.filter((_, i) => moved.has(buckets[i]!)))];
  const receivedAt = o.now().toISOString();
  const round = eventKey('google-catchup', o.state.digest!);
  const messages: SyncMessage[] = changed.map((id) => ({
    v: 1,
    subject: accountSubject(id),
    source: 'mailbox',
    eventId: eventKey(round, id),
    hint: 'google.catchup',
    operator: 'google-catchup',
    receivedAt,
  }));
  for (let i = 0; i < messages.length; i += 10) await o.enqueue(messages.slice(i, i + 10));
  log.info('google catch-up', { users: ids.length, bucketsMoved: moved.size, queued: changed.length });
  return { changed: changed.length, full: false, digest };
}
