/**
 * The polling change feed (capability `changes: 'poll'`): run on the upkeep schedule, it queues
 * `mailbox:ldap:<id>` for every account changed since a persisted high-water mark, and for
 * every account the product knows (`feed.known`: the state table's targetIds) that left the
 * directory. Each change becomes a message once: a new feed instance over the same cursor store
 * continues where the last left off.
 *
 * Active Directory (`uSNChanged`), after Microsoft's "Polling for Changes Using USNChanged":
 * read the rootDSE's `highestCommittedUSN` FIRST, then search `uSNChanged >= mark + 1`; the new
 * mark is that highestCommittedUSN (an entry changed while the pages were read carries a higher
 * USN and is read again next time: its key is kept in `seen` so it is queued once). USNs are
 * per domain controller (not replicated): the cursor records the DC (`dnsHostName`) and its
 * `invocationId` (changes when the DC is restored from backup). Another DC, or a restored one,
 * means the mark is meaningless there: the feed re-reads by `whenChanged` (set by each DC when
 * it applies a change) from `rebaseMinutes` before the last poll, and takes that DC's
 * highestCommittedUSN as the new mark. Deleted objects leave the tree (Deleted Objects needs
 * the Show Deleted control and rights we do not ask for), so deletions are found by comparing.
 *
 * OpenLDAP (`modifyTimestamp`): one-second resolution and no server clock to read, so every
 * poll re-reads from `overlapSeconds` before the mark (the boundary second included) and skips
 * what it already queued: the key of a change is id + `entryCSN` (microseconds: two changes
 * within one second are two keys), or id + modifyTimestamp where there is no entryCSN. The
 * overlap also covers a paged read that outlasts the change it races with, and a replica that
 * delivers a change a little late.
 *
 * The first run (no cursor) starts from now: what changed before is the reconcile's to find
 * (queuing every account would be a reconcile without its deletion guard). A gap (the stack
 * down for an hour) is no different from a long interval: the mark does not expire.
 *
 * Deletions: every `deletionSweepMinutes` (0: every run) the ids of the directory are read
 * (ids only, paged) and compared with `known()`; an id missing from the directory is queued
 * once — the cursor keeps short hashes of the ids reported gone, pruned to those still known
 * and still missing, so an id that comes back (AD Recycle Bin restore) and leaves again is
 * reported again.
 *
 * Order of effects: messages first, then the cursor. A crash in between queues the same
 * messages again, with the same event ids (the queue's dedupe and the level-driven worker
 * absorb it); never a change lost. The cursor holds ids only as truncated hashes: no personal
 * data. Its size is bounded (SEEN_MAX, GONE_MAX): past the bound a change may be queued twice,
 * never lost.
 */
import { createHash } from 'node:crypto';
import { GreaterThanEqualsFilter, type Filter } from 'ldapts';
import { log } from '../../core/log';
import type { SyncMessage } from '../../queue/messages';
import { MailboxError } from '../directory';
import { eventKey } from '../event-keys';
import type { FeedCursorStore, FeedUpkeepResult } from '../provider';
import type { LdapEntry } from './client';
import type { LdapProfile, LdapSettings } from './config';
import { entryId, first, guidToString, values } from './wire';

/** At most this many change keys are kept for the overlap (a bulk change beyond it moves the next run's start: FeedState.floor). */
export const SEEN_MAX = 5_000;
/** At most this many gone ids are remembered. */
export const GONE_MAX = 20_000;

export interface DcState {
  /** The DC the USNs belong to (dnsHostName, else dsServiceName). */
  dc: string;
  invocationId?: string;
  /** highestCommittedUSN, read before the search. */
  usn: bigint;
  /** The DC's clock (rootDSE currentTime). */
  time?: Date;
}

/** What the feed reads from the directory: small enough to fake with recorded AD entries. */
export interface PollSource {
  /** AD only: the DC's identity and highestCommittedUSN. */
  dcState(): Promise<DcState>;
  /** The user entries matching `extra` (AND the user filter), paged, with these attributes. */
  scan(extra: Filter | undefined, attributes: string[]): AsyncIterable<LdapEntry[]>;
}

/** The cursor, as JSON in the feed cursor store. */
export interface FeedState {
  v: 1;
  kind: 'usn' | 'time';
  /** usn: highestCommittedUSN; time: epoch seconds of the newest modifyTimestamp seen. Decimal. */
  mark: string;
  /** [marker, key] of changes at or after the next run's lower bound that were queued already. */
  seen: Array<[string, string]>;
  /** Hashes of known ids reported gone and still missing. */
  gone: string[];
  /**
   * time: the next run reads from no earlier than this second (epoch seconds). Set only after
   * a bulk change left more keys in the overlap window than `seen` keeps: the seconds whose
   * keys were dropped are not read again (else they would be queued again on every poll until
   * the mark moves), at the cost of a late write stamped in them (the reconcile finds it).
   */
  floor?: number;
  /**
   * time, with a change key (OpenLDAP's entryCSN, which sorts as the change's time): after a
   * bulk change beyond the bound, the newest change key read. An entry re-read later whose
   * change key is at or below it was read (and queued) already; a change made afterwards, even
   * within the same second, has a greater one. Used instead of `floor` where there is a key.
   */
  changeFloor?: string;
  sweptAt?: string;
  /** AD: where the USNs come from, and the DC's clock at the last poll. */
  dc?: { name: string; invocationId?: string; at: string };
}

export interface PollOptions {
  profile: LdapProfile;
  feed: LdapSettings['feed'];
  cursor: FeedCursorStore;
  enqueue: (messages: SyncMessage[]) => Promise<void>;
  known?: () => AsyncIterable<string>;
  now: () => Date;
}

export const short = (...parts: string[]) => createHash('sha256').update(JSON.stringify(parts), 'utf8').digest('hex').slice(0, 12);

/** Generalized time ('20261203102342Z', '20261203102342.0Z', '…+0800') → epoch seconds; undefined when it is not one. */
export function parseGeneralizedTime(value: string | undefined): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:[.,]\d+)?(Z|[+-]\d{2}(?:\d{2})?)$/.exec(value ?? '');
  if (!m) return undefined;
  const utc = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? 0)) / 1000;
  if (m[7] === 'Z') return utc;
  const sign = m[7]!.startsWith('-') ? -1 : 1;
  const off = (+m[7]!.slice(1, 3) * 60 + +(m[7]!.slice(3, 5) || 0)) * 60;
  return utc - sign * off;
}

/** Epoch seconds → '20261203102342Z'. */
export function formatGeneralizedTime(seconds: number): string {
  return new Date(Math.max(0, seconds) * 1000).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

function parseState(raw: string | undefined, kind: FeedState['kind']): FeedState | undefined {
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as FeedState;
    if (s?.v === 1 && s.kind === kind && /^\d+$/.test(s.mark) && Array.isArray(s.seen) && Array.isArray(s.gone)) return s;
  } catch {
    /* below */
  }
  log.warn('ldap feed cursor unreadable or of another schema: starting from now');
  return undefined;
}

export function accountSubject(id: string): `mailbox:ldap:${string}` {
  return `mailbox:ldap:${id}`;
}

/** The feed's upkeep: poll changes (and, when due, deletions), queue them, move the cursor. */
export async function pollChanges(src: PollSource, o: PollOptions): Promise<FeedUpkeepResult> {
  const p = o.profile;
  const kind = p.marker.kind;
  const prev = parseState(await o.cursor.get(), kind);
  const now = o.now();
  const receivedAt = now.toISOString();
  const messages: SyncMessage[] = [];
  const queued = new Set<string>();
  const emit = (id: string, eventId: string, hint: string) => {
    if (queued.has(id)) return;
    queued.add(id);
    messages.push({ v: 1, subject: accountSubject(id), source: 'mailbox', eventId, hint, operator: 'ldap-poll', receivedAt });
  };
  const idAttr = p.attributes.id;
  const markerAttrs = [idAttr, p.marker.attribute, ...(p.changeKey ? [p.changeKey] : [])];
  const seenBefore = new Set((prev?.seen ?? []).map(([, k]) => k));
  /** Every id of the directory, when this run read them all anyway (the first OpenLDAP run). */
  let allIds: Set<string> | undefined;
  let next: FeedState;
  let full = false;

  if (kind === 'usn') {
    const dc = await src.dcState();
    const dcInfo = { name: dc.dc, ...(dc.invocationId ? { invocationId: dc.invocationId } : {}), at: (dc.time ?? now).toISOString() };
    next = { v: 1, kind, mark: dc.usn.toString(), seen: [], gone: prev?.gone ?? [], ...(prev?.sweptAt ? { sweptAt: prev.sweptAt } : {}), dc: dcInfo };
    const sameDc = prev?.dc?.name === dc.dc && (!prev.dc.invocationId || !dc.invocationId || prev.dc.invocationId === dc.invocationId);
    if (!prev) {
      full = true;
    } else if (!sameDc) {
      // USNs of another DC (or of this one before a restore) mean nothing here: re-read by whenChanged.
      const since = Date.parse(prev.dc?.at ?? receivedAt) / 1000 - o.feed.rebaseMinutes * 60;
      log.warn('ldap feed: another domain controller (or a restored one) answers; re-reading changes by whenChanged', { rebaseMinutes: o.feed.rebaseMinutes });
      for await (const page of src.scan(new GreaterThanEqualsFilter({ attribute: 'whenChanged', value: formatGeneralizedTime(since) }), markerAttrs)) {
        for (const e of page) {
          const id = entryId(p, e);
          if (id) emit(id, eventKey('ldap-change', id, 'rebase', dc.dc, first(e, p.marker.attribute) ?? ''), 'ldap.changed');
        }
      }
    } else {
      const from = BigInt(prev.mark) + 1n;
      for await (const page of src.scan(new GreaterThanEqualsFilter({ attribute: p.marker.attribute, value: from.toString() }), markerAttrs)) {
        for (const e of page) {
          const id = entryId(p, e);
          const usn = first(e, p.marker.attribute);
          if (!id || !usn || !/^\d+$/.test(usn)) continue;
          const key = short(id, usn);
          if (!seenBefore.has(key)) emit(id, eventKey('ldap-change', id, dc.dc, usn), 'ldap.changed');
          // Changed while we read: above the new mark, so read again next time.
          if (BigInt(usn) > dc.usn) next.seen.push([usn, key]);
        }
      }
    }
  } else {
    const overlap = o.feed.overlapSeconds;
    const seen: Array<[number, string]> = (prev?.seen ?? []).map(([m, k]) => [Number(m), k]);
    let mark = prev ? Number(prev.mark) : 0;
    const lower = prev ? Math.max(mark - overlap, prev.floor ?? -Infinity) : undefined;
    const changeFloor = prev?.changeFloor;
    let newestChange = changeFloor;
    if (!prev) {
      full = true;
      allIds = new Set();
    }
    const extra = lower === undefined ? undefined : new GreaterThanEqualsFilter({ attribute: p.marker.attribute, value: formatGeneralizedTime(lower) });
    for await (const page of src.scan(extra, markerAttrs)) {
      for (const e of page) {
        const id = entryId(p, e);
        const ts = parseGeneralizedTime(first(e, p.marker.attribute));
        if (!id) continue;
        allIds?.add(id);
        if (ts === undefined) continue;
        const change = p.changeKey ? first(e, p.changeKey) : undefined;
        const key = short(id, change ?? String(ts));
        const readBefore = change !== undefined && changeFloor !== undefined && change <= changeFloor;
        if (prev && !seenBefore.has(key) && !readBefore) emit(id, eventKey('ldap-change', id, change ?? String(ts)), 'ldap.changed');
        if (change !== undefined && (newestChange === undefined || change > newestChange)) newestChange = change;
        seen.push([ts, key]);
        if (ts > mark) mark = ts;
      }
    }
    // The keys the next run must not queue again: those at or after its lower bound, once each.
    const window = new Map<string, number>();
    for (const [ts, k] of seen) if (ts >= mark - overlap && ts > (window.get(k) ?? -Infinity)) window.set(k, ts);
    let keep = [...window].map(([k, ts]): [number, string] => [ts, k]).sort((a, b) => a[0] - b[0]);
    // A floor stays while it is above the overlap's start: the seconds below it stay unread.
    let floor: number | undefined = prev?.floor !== undefined && prev.floor > mark - overlap ? prev.floor : undefined;
    let nextChangeFloor = changeFloor;
    if (keep.length > SEEN_MAX) {
      // Bulk change: keep whole seconds, newest first, as many as fit. With a change key, what
      // was read is recognised by it (changeFloor) and the overlap stays whole; without one the
      // next run starts at the oldest second kept, or after the boundary second if that alone
      // does not fit (a write landing in the skipped seconds is then left to the reconcile).
      const boundary = keep.length - SEEN_MAX;
      const firstWhole = keep.findIndex(([ts], i) => i >= boundary && (i === 0 || keep[i - 1]![0] !== ts));
      keep = firstWhole < 0 ? [] : keep.slice(firstWhole);
      if (newestChange !== undefined) nextChangeFloor = newestChange;
      else floor = keep.length ? keep[0]![0] : mark + 1;
      log.warn('ldap feed: more changes in the overlap window than the cursor keeps', { kept: keep.length, window: window.size, by: newestChange !== undefined ? 'change key' : 'floor second' });
    }
    next = {
      v: 1,
      kind,
      mark: String(mark),
      seen: keep.map(([ts, k]) => [String(ts), k]),
      gone: prev?.gone ?? [],
      ...(prev?.sweptAt ? { sweptAt: prev.sweptAt } : {}),
      ...(floor !== undefined ? { floor } : {}),
      ...(nextChangeFloor !== undefined ? { changeFloor: nextChangeFloor } : {}),
    };
  }

  // ---------------------------------------------------------------- deletions
  let skipped: string | undefined;
  if (!o.known) {
    skipped = 'deletions not looked for: no known ids wired (feed.known)';
  } else if (!prev?.sweptAt || o.feed.deletionSweepMinutes === 0 || now.getTime() - Date.parse(prev.sweptAt) >= o.feed.deletionSweepMinutes * 60_000) {
    let ids = allIds;
    if (!ids) {
      ids = new Set();
      for await (const page of src.scan(undefined, [idAttr])) for (const e of page) {
        const id = entryId(p, e);
        if (id) ids.add(id);
      }
    }
    const before = new Set(prev?.gone ?? []);
    const gone: string[] = [];
    const round = prev?.sweptAt ?? 'first';
    for await (const known of o.known()) {
      const id = known.toLowerCase();
      if (ids.has(id)) continue;
      const h = short(id);
      gone.push(h);
      if (!before.has(h)) emit(id, eventKey('ldap-gone', id, round), 'ldap.gone');
    }
    if (gone.length > GONE_MAX) log.warn('ldap feed: more gone ids than the cursor keeps; the oldest may be reported again', { gone: gone.length });
    next.gone = [...new Set(gone)].slice(-GONE_MAX);
    next.sweptAt = receivedAt;
  }

  for (let i = 0; i < messages.length; i += 10) await o.enqueue(messages.slice(i, i + 10));
  await o.cursor.put(JSON.stringify(next));
  log.info('ldap poll', { changed: messages.length, full, mark: next.mark });
  return { kind: 'poll', caughtUp: { changed: messages.length, full }, ...(skipped ? { skipped } : {}) };
}

/** The feed's reads over the adapter's client: rootDSE for AD, paged scans on their own connection. */
export function clientSource(o: {
  profile: LdapProfile;
  pageSize: number;
  users: (extra?: Filter) => Filter;
  client: {
    rootDse(attributes: string[]): Promise<LdapEntry | undefined>;
    search(route: string, base: string, s: { scope?: 'base'; filter?: string; attributes: string[]; binary?: string[] }): Promise<LdapEntry[]>;
    pages(route: string, base: string, s: { filter?: Filter; attributes: string[]; binary?: string[] }, pageSize: number): AsyncIterable<LdapEntry[]>;
  };
}): PollSource {
  const p = o.profile;
  return {
    async dcState() {
      const dse = await o.client.rootDse(['highestCommittedUSN', 'dnsHostName', 'dsServiceName', 'currentTime']);
      const usn = dse ? first(dse, 'highestCommittedUSN') : undefined;
      if (!dse || !usn || !/^\d+$/.test(usn)) {
        throw new MailboxError('LDAP: the rootDSE has no highestCommittedUSN (not Active Directory? set ldap.schema)', false, 'NoUsn', undefined, 'invalid');
      }
      const service = first(dse, 'dsServiceName');
      let invocationId: string | undefined;
      if (service) {
        // The NTDS Settings object of this DC: its invocationId changes when the DC is restored.
        const ntds = await o.client.search('read invocationId', service, { scope: 'base', filter: '(objectClass=*)', attributes: ['invocationId'], binary: ['invocationId'] }).catch(() => []);
        const raw = ntds[0] ? values(ntds[0], 'invocationId')[0] : undefined;
        if (Buffer.isBuffer(raw) && raw.length === 16) invocationId = guidToString(raw);
      }
      const time = parseGeneralizedTime(first(dse, 'currentTime'));
      return {
        dc: first(dse, 'dnsHostName') ?? service ?? 'unknown',
        ...(invocationId ? { invocationId } : {}),
        usn: BigInt(usn),
        ...(time !== undefined ? { time: new Date(time * 1000) } : {}),
      };
    },
    scan(extra, attributes) {
      return o.client.pages('poll changes', p.baseDn, { filter: o.users(extra), attributes, ...(p.idKind === 'guid' ? { binary: [p.attributes.id] } : {}) }, o.pageSize);
    },
  };
}
