/**
 * The delta query, read on a schedule (the feed upkeep, index.ts): "subject mailbox:graph:<id>
 * may have changed" for every user changed since the stored cursor.
 *
 * Delta (`GET /users/delta`): the first read returns every user, later reads what changed;
 * `@removed` marks a user gone from /users (reason `changed`: soft-deleted, restorable;
 * `deleted`: permanently); 410 means the token expired (about 7 days for directory objects)
 * and the read must start over. `$deltatoken=latest` gives a delta link without reading
 * anything ("sync from now", documented for Entra users and groups).
 */
import { log } from '../../core/log';
import type { SyncMessage } from '../../queue/messages';
import { MailboxError, type MailboxAccount } from '../directory';
import { eventKey } from '../event-keys';
import type { FeedCursorStore } from '../provider';
import type { GraphClient } from './client';
import { accountSubject } from './notifications';
import { toAccount, USER_SELECT, type GraphUserWire } from './wire';

export interface DeltaResult {
  /** Accounts created or changed since the last delta link. Keys absent from a delta page are undefined (unknown). */
  accounts: MailboxAccount[];
  /** Ids removed from the users collection (soft- or hard-deleted). */
  removed: string[];
  /** Subset of `removed` that Graph reports as permanently deleted. */
  permanentlyDeleted: string[];
  /** Keep it for the next call (valid about 7 days). */
  deltaLink: string;
}

/** The delta token is no longer valid (410 Gone): the caller must start over. */
export class DeltaExpired extends Error {
  constructor() {
    super('Graph delta token expired; a full resync is required');
    this.name = 'DeltaExpired';
  }
}

/** Users changed since `deltaLink` (or all users on the first call), following every nextLink. */
export async function readUserDelta(client: GraphClient, deltaLink?: string): Promise<DeltaResult> {
  const accounts: MailboxAccount[] = [];
  const removed: string[] = [];
  const permanentlyDeleted: string[] = [];
  let url: string | undefined = deltaLink ?? `/v1.0/users/delta?$select=${USER_SELECT}`;
  for (let page = 0; url; page++) {
    if (page > 100_000) throw new MailboxError('Graph delta: too many pages', false, 'DeltaRunaway', undefined, 'unexpected');
    const res = await client.call('GET', url, { route: 'GET /users/delta', accept: [410] });
    if (res.status === 410) throw new DeltaExpired();
    for (const u of (res.json?.value ?? []) as GraphUserWire[]) {
      if (u['@removed']) {
        removed.push(u.id);
        if (u['@removed'].reason === 'deleted') permanentlyDeleted.push(u.id);
      } else accounts.push(toAccount(u));
    }
    const next = res.json?.['@odata.nextLink'] as string | undefined;
    const done = res.json?.['@odata.deltaLink'] as string | undefined;
    if (next) url = next;
    else if (done) return { accounts, removed, permanentlyDeleted, deltaLink: done };
    else throw new MailboxError('Graph delta: page without nextLink or deltaLink', true, 'DeltaIncomplete', undefined, 'unavailable');
  }
  throw new MailboxError('Graph delta: no deltaLink', true, 'DeltaIncomplete', undefined, 'unavailable');
}

/** A delta link from now on, reading nothing (`$deltatoken=latest`). */
export async function latestDeltaLink(client: GraphClient): Promise<string> {
  return (await readUserDelta(client, `/v1.0/users/delta?$select=${USER_SELECT}&$deltatoken=latest`)).deltaLink;
}

export interface CatchUpOptions {
  cursor: FeedCursorStore;
  enqueue: (messages: SyncMessage[]) => Promise<void>;
  now: () => Date;
}

/**
 * The scheduled delta read: queue `mailbox:graph:<id>` for every user changed or removed since
 * the stored cursor, then store the new cursor (after the messages are queued: a crash in
 * between reads the same changes again, which the queue's dedupe or a level-driven run absorbs).
 * Without a cursor, or when it expired, it starts from now: what changed in the gap is the
 * reconcile's to find, and the log says so (reading every user into the queue instead would
 * be a reconcile without its deletion guard).
 */
export async function catchUp(client: GraphClient, o: CatchUpOptions): Promise<{ changed: number; full: boolean }> {
  const cursor = await o.cursor.get();
  let delta: DeltaResult | undefined;
  if (cursor) {
    try {
      delta = await readUserDelta(client, cursor);
    } catch (err) {
      if (!(err instanceof DeltaExpired)) throw err;
      log.warn('graph delta cursor expired: catching up from now on; run a reconcile for the gap');
    }
  }
  if (!delta) {
    await o.cursor.put(await latestDeltaLink(client));
    return { changed: 0, full: true };
  }
  const ids = [...new Set([...delta.accounts.map((a) => a.id), ...delta.removed].map((id) => id.toLowerCase()))];
  const receivedAt = o.now().toISOString();
  const round = eventKey('graph-delta', cursor!);
  const messages: SyncMessage[] = ids.map((id) => ({
    v: 1,
    subject: accountSubject(id),
    source: 'mailbox',
    eventId: eventKey(round, id),
    hint: 'graph.delta',
    operator: 'graph-delta',
    receivedAt,
  }));
  for (let i = 0; i < messages.length; i += 10) await o.enqueue(messages.slice(i, i + 10));
  await o.cursor.put(delta.deltaLink);
  log.info('graph delta catch-up', { changed: ids.length });
  return { changed: ids.length, full: false };
}
