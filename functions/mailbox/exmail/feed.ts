/**
 * Exmail's change feed: the operation log (`log/operation`, 系统日志 app), read on a schedule
 * from a stored cursor, each account record turned into ONE queue message
 * `mailbox:exmail:<address>` ("this account may have changed"; the worker re-reads it).
 *
 * Wire facts relied on (doc #10031 as copied by QQ::exmail::log, sinri/QQExMailApiSDK and
 * qqbizmail.com/api/407.html):
 * - `POST log/operation {type, begin_date: "YYYY-MM-DD", end_date}` → `{list: [{time (unix
 *   seconds), operator, type, operand, remark?}]}`. Whole days only, no paging, no record id.
 * - Record types we queue: 19 新增用户, 20 删除用户 (remark 1: the account was restored), 21 启用用户,
 *   22 禁用用户, 23 编辑用户, 24 编辑别名, 25 批量导入用户 — when the operand is an address. The
 *   rest (domains, departments, mail groups, settings) are not account events.
 * - The request's `type` is a category; the copies disagree on its numbering (0 = all with
 *   1..9 categories in one, 1 = all with 2..10 in the other). The published example sends 0:
 *   our default (`exmail.logType`), configurable.
 * - NOT confirmed: the longest begin..end range one request may span (we read at most
 *   `logMaxRangeDays` per request, 30 by default), how far back the log goes (`logLookbackDays`),
 *   the calendar of the dates (Beijing time assumed: `logUtcOffsetMinutes` 480), whether the
 *   answer is capped, and whether records appear in the log at once.
 *
 * Exactly once, without record ids. A record's key is a hash of everything it says plus its
 * rank among identical records of the same answer (two identical records in one second stay
 * two). The cursor `{since, seen}` says: records older than `since` are done; of the newer
 * ones, `seen` holds the keys already queued. A run reads whole days from `since`'s day up to
 * today (in windows of at most `logMaxRangeDays`), queues what is new, then stores the cursor
 * — AFTER the enqueue: a crash in between reads the same records again and queues them with
 * the same eventIds (the queue's dedupe, the inbox, or the level-driven worker absorb them).
 * `since` then moves to what was read minus `logOverlapSeconds`, so a record the log writes a
 * little late is still found; one later than that is the reconcile's. `seen` is pruned with
 * `since` and capped (`maxSeen`, whole seconds dropped oldest first) so the cursor stays a small
 * item in the state table even after a mass import.
 *
 * Without a cursor the feed starts from now: today's recent records are marked seen, nothing
 * is queued (what happened before is the reconcile's, as for Graph's delta feed). A cursor
 * older than `logLookbackDays` (the stack was down for months) is read from the lookback
 * horizon, with a warning to run a reconcile for the rest.
 */
import { log } from '../../core/log';
import type { SyncMessage } from '../../queue/messages';
import { eventKey } from '../event-keys';
import type { FeedCursorStore } from '../provider';
import type { ExmailClient } from './client';
import { normalizeId } from './wire';

/** Log record types that concern one account, and the hint each message carries. */
export const ACCOUNT_RECORD_HINTS: Readonly<Record<number, string>> = {
  19: 'exmail.created',
  20: 'exmail.deleted',
  21: 'exmail.enabled',
  22: 'exmail.disabled',
  23: 'exmail.updated',
  24: 'exmail.aliases',
  25: 'exmail.imported',
};

export interface ExmailLogRecord {
  time: number;
  operator?: string;
  type: number;
  operand?: string;
  remark?: string | number;
}

export interface LogPollSettings {
  logType: number;
  logMaxRangeDays: number;
  logOverlapSeconds: number;
  logLookbackDays: number;
  logUtcOffsetMinutes: number;
  /** Keys kept in the cursor at most (default 4000: about 80 KB of cursor). */
  maxSeen?: number;
}

export interface LogPollOptions extends LogPollSettings {
  cursor: FeedCursorStore;
  enqueue: (messages: SyncMessage[]) => Promise<void>;
  now: () => Date;
}

export interface LogPollResult {
  /** Messages queued. */
  changed: number;
  /** True when there was no cursor and the feed started from now. */
  full: boolean;
  /** Records read (all types, duplicates of earlier reads included). */
  read: number;
  /** Requests made to log/operation. */
  requests: number;
}

/** The stored cursor: records before `since` are done; `seen` (unix second → concatenated 16-hex keys) those at or after it already queued. */
interface Cursor {
  v: 1;
  since: number;
  seen: Record<string, string>;
}

const KEY_HEX = 16;
const DAY = 86_400;

export async function pollOperationLog(client: ExmailClient, o: LogPollOptions): Promise<LogPollResult> {
  const nowSec = Math.floor(o.now().getTime() / 1000);
  const off = o.logUtcOffsetMinutes * 60;
  const dayOf = (t: number) => Math.floor((t + off) / DAY);
  const maxSeen = o.maxSeen ?? 4000;
  let requests = 0;
  let read = 0;
  const fetchDays = async (d0: number, d1: number) => {
    requests++;
    const r = await client.call('log/operation', { body: { type: o.logType, begin_date: dateOf(d0), end_date: dateOf(d1) } });
    const list = keyed(parseRecords(r.list));
    read += list.length;
    return list;
  };

  const stored = parseCursor(await o.cursor.get());
  if (!stored) {
    const since = nowSec - o.logOverlapSeconds;
    const seen: Record<string, string> = {};
    for (const r of await fetchDays(dayOf(since), dayOf(nowSec))) if (r.time >= since) mark(seen, r);
    await o.cursor.put(JSON.stringify({ v: 1, since, seen } satisfies Cursor));
    log.info('exmail log feed started from now', { seen: countSeen(seen) });
    return { changed: 0, full: true, read, requests };
  }

  let { since, seen } = stored;
  const horizon = nowSec - o.logLookbackDays * DAY;
  if (since < horizon) {
    log.warn('exmail log cursor is older than the lookback: reading from the lookback on; run a reconcile for the rest', { days: Math.round((nowSec - since) / DAY) });
    since = horizon;
    seen = pruned(seen, since);
  }
  let changed = 0;
  const today = dayOf(nowSec);
  for (let d0 = dayOf(since); d0 <= today; d0 += o.logMaxRangeDays) {
    const d1 = Math.min(d0 + o.logMaxRangeDays - 1, today);
    const fresh = (await fetchDays(d0, d1)).filter((r) => r.time >= since && !isSeen(seen, r));
    const messages: SyncMessage[] = [];
    const receivedAt = o.now().toISOString();
    for (const r of fresh) {
      const m = toMessage(r, receivedAt);
      if (m) messages.push(m);
    }
    for (let i = 0; i < messages.length; i += 10) await o.enqueue(messages.slice(i, i + 10));
    changed += messages.length;
    for (const r of fresh) mark(seen, r);
    // Read up to the end of d1 (or now): what is older than that minus the overlap is done.
    since = Math.max(since, Math.min(nowSec, (d1 + 1) * DAY - off - 1) - o.logOverlapSeconds);
    ({ since, seen } = capped(pruned(seen, since), since, maxSeen));
    await o.cursor.put(JSON.stringify({ v: 1, since, seen } satisfies Cursor));
  }
  if (changed) log.info('exmail log feed queued account changes', { changed, requests });
  return { changed, full: false, read, requests };
}

type Keyed = ExmailLogRecord & { eventId: string; key: string };

/** A queue message for an account record with an address operand; undefined for any other record. */
function toMessage(r: Keyed, receivedAt: string): SyncMessage | undefined {
  const hint = ACCOUNT_RECORD_HINTS[r.type];
  const operand = typeof r.operand === 'string' ? normalizeId(r.operand) : '';
  if (!hint || !/^[^@\s:]+@[^@\s:]+\.[^@\s:]+$/.test(operand)) return undefined;
  return {
    v: 1,
    subject: `mailbox:exmail:${operand}`,
    source: 'mailbox',
    eventId: r.eventId,
    hint: r.type === 20 && String(r.remark ?? '') === '1' ? 'exmail.restored' : hint,
    operator: 'exmail-log',
    receivedAt,
  };
}

function parseRecords(list: unknown): ExmailLogRecord[] {
  if (!Array.isArray(list)) return [];
  const out: ExmailLogRecord[] = [];
  for (const x of list as Array<Record<string, unknown>>) {
    const time = Number(x?.time);
    const type = Number(x?.type);
    if (!Number.isFinite(time) || !Number.isInteger(type)) continue;
    out.push({
      time,
      type,
      ...(typeof x.operator === 'string' ? { operator: x.operator } : {}),
      ...(typeof x.operand === 'string' ? { operand: x.operand } : {}),
      ...(typeof x.remark === 'string' || typeof x.remark === 'number' ? { remark: x.remark } : {}),
    });
  }
  // The API's order is not documented. An answer that runs newest first is turned around
  // first, so records of one second keep the order they happened in; then oldest first.
  if (out.length > 1 && out[0]!.time > out[out.length - 1]!.time) out.reverse();
  return out.sort((a, b) => a.time - b.time);
}

/** Each record's eventId: what it says, plus its rank among identical records of this answer. */
function keyed(records: ExmailLogRecord[]): Keyed[] {
  const ranks = new Map<string, number>();
  return records.map((r) => {
    const parts = [String(r.time), String(r.type), r.operand ?? '', r.operator ?? '', String(r.remark ?? '')];
    const tuple = JSON.stringify(parts);
    const rank = ranks.get(tuple) ?? 0;
    ranks.set(tuple, rank + 1);
    const eventId = eventKey('exmail-log', ...parts, String(rank));
    return { ...r, eventId, key: eventId.slice(0, KEY_HEX) };
  });
}

function mark(seen: Record<string, string>, r: Keyed): void {
  const t = String(r.time);
  if (!isSeen(seen, r)) seen[t] = (seen[t] ?? '') + r.key;
}

function isSeen(seen: Record<string, string>, r: Keyed): boolean {
  const keys = seen[String(r.time)];
  if (!keys) return false;
  for (let i = 0; i < keys.length; i += KEY_HEX) if (keys.startsWith(r.key, i)) return true;
  return false;
}

function countSeen(seen: Record<string, string>): number {
  return Object.values(seen).reduce((n, s) => n + s.length / KEY_HEX, 0);
}

function pruned(seen: Record<string, string>, since: number): Record<string, string> {
  return Object.fromEntries(Object.entries(seen).filter(([t]) => Number(t) >= since));
}

/** Over `maxSeen` keys: drop whole seconds, oldest first, and move `since` past them (a second is never split). */
function capped(seen: Record<string, string>, since: number, maxSeen: number): { since: number; seen: Record<string, string> } {
  let total = countSeen(seen);
  if (total <= maxSeen) return { since, seen };
  const seconds = Object.keys(seen).map(Number).sort((a, b) => a - b);
  let i = 0;
  while (total > maxSeen && i < seconds.length - 1) total -= seen[String(seconds[i++])]!.length / KEY_HEX;
  const from = seconds[i]!;
  log.warn('exmail log cursor: too many records in the overlap; late records of the oldest seconds are left to the reconcile', { dropped: i });
  return { since: Math.max(since, from), seen: pruned(seen, from) };
}

function parseCursor(raw: string | undefined): Cursor | undefined {
  if (!raw) return undefined;
  try {
    const c = JSON.parse(raw) as Partial<Cursor>;
    if (c.v === 1 && typeof c.since === 'number' && c.seen && typeof c.seen === 'object') return { v: 1, since: c.since, seen: { ...c.seen } };
  } catch {
    // fall through
  }
  log.warn('exmail log cursor unreadable: starting from now; run a reconcile for the gap');
  return undefined;
}

/** Day number (days since 1970-01-01 in the log's calendar) → 'YYYY-MM-DD'. */
function dateOf(day: number): string {
  return new Date(day * DAY * 1000).toISOString().slice(0, 10);
}
