/**
 * The inbox sweep: the second half of "nothing lost". A receiver records an event in the
 * inbox (`pending`), enqueues its messages, then marks it `enqueued` and answers. If it dies
 * between the first write and the last (Lambda timeout, crash, a queue outage and a sender
 * that never retries, as WeCom stops after a few tries) the item stays `pending` and no
 * message may exist. The sweep finds such items (Inbox.listPending, a sparse index) and
 * does what the receiver did not finish: rebuild the messages from the item, enqueue, mark.
 *
 * Why it is safe to run at any time, repeatedly, beside live receivers:
 * - a rebuilt message is the receiver's message (`inboxMessages` is used by both), so it has
 *   the same FIFO dedupe id (SHA-256 of eventId + subject): SQS drops a copy sent within its
 *   5-minute window; after that a copy is one more level-driven worker run, which converges;
 * - markEnqueued is an idempotent single-item update, so a receiver and the sweep marking the
 *   same item is harmless;
 * - an item is marked only after its messages are on the queue, so a sweep that fails midway
 *   leaves the rest `pending` for the next run;
 * - by default only items pending for more than 2 minutes are touched: receivers run with a
 *   5-second timeout, so no live receiver is still working on such an item.
 */
import { log } from '../core/log';
import type { Inbox, InboxEntry } from '../store/ports';
import type { SyncMessage, WorkQueue } from './messages';
import { mapSettled } from './parallel';

/** Default age before a pending item is swept: far beyond a receiver's 5 s timeout. */
export const DEFAULT_SWEEP_AGE_MS = 2 * 60_000;

/**
 * The queue messages an inbox entry stands for: one per subject, carrying the entry's id as
 * eventId. The receivers build their messages with this too, so receiver and sweep agree.
 */
export function inboxMessages(entry: InboxEntry): SyncMessage[] {
  if (entry.disposition === 'ignored') return [];
  return entry.subjects.map((subject) => ({
    v: 1,
    subject,
    source: entry.source,
    eventId: entry.id,
    ...(entry.hint ? { hint: entry.hint } : {}),
    operator: entry.operator,
    receivedAt: entry.receivedAt,
  }));
}

export interface SweepInboxOptions {
  inbox: Inbox;
  queue: WorkQueue;
  now?: () => Date;
  /** Sweep only items pending longer than this. Default 2 minutes; 0 = all (a local stack at start). */
  olderThanMs?: number;
  /** Most items handled in one run (default 1,000); the rest wait for the next run. */
  limit?: number;
  /** Items per listPending page (default 100). */
  pageSize?: number;
  /** markEnqueued calls in flight (default 16). */
  concurrency?: number;
}

export interface SweepResult {
  /** Pending items found old enough. */
  found: number;
  /** Items whose messages were enqueued again and which were then marked. */
  requeued: number;
  /** Messages enqueued (one per subject of each requeued item). */
  messages: number;
  /** Items without messages ('ignored' events) that were only marked. */
  ignored: number;
  /** Items left pending by a failed enqueue or mark: the next run tries again. */
  failed: number;
  /** The run stopped at `limit`: more pending items may be waiting. */
  more: boolean;
}

export async function sweepInbox(opts: SweepInboxOptions): Promise<SweepResult> {
  const now = opts.now ?? (() => new Date());
  const limit = opts.limit ?? 1000;
  const pageSize = Math.max(1, Math.min(opts.pageSize ?? 100, limit));
  const concurrency = opts.concurrency ?? 16;
  const before = new Date(now().getTime() - (opts.olderThanMs ?? DEFAULT_SWEEP_AGE_MS));
  const result: SweepResult = { found: 0, requeued: 0, messages: 0, ignored: 0, failed: 0, more: false };
  // The index is eventually consistent: an item marked in this run may be listed again by
  // the next page. Each item is handled once per run; a page with nothing new ends the run.
  const seen = new Set<string>();

  while (result.found < limit) {
    const page = await opts.inbox.listPending(before, Math.min(pageSize, limit - result.found));
    const fresh = page.filter((e) => !seen.has(e.id));
    if (fresh.length === 0) break;
    for (const e of fresh) seen.add(e.id);
    result.found += fresh.length;

    // One enqueue call per page, oldest first: a subject's messages keep the order of receipt.
    const messages = fresh.flatMap(inboxMessages);
    if (messages.length > 0) {
      try {
        await opts.queue.enqueue(messages);
        result.messages += messages.length;
      } catch (err) {
        // The queue is failing: mark only the items that have no message, and stop; the
        // others stay pending for the next run.
        const withMessages = fresh.filter((e) => inboxMessages(e).length > 0);
        log.error('inbox sweep: enqueue failed', { items: withMessages.length, error: errName(err) });
        result.failed += withMessages.length;
        await markAll(opts.inbox, fresh.filter((e) => inboxMessages(e).length === 0), concurrency, result);
        return result;
      }
    }
    await markAll(opts.inbox, fresh, concurrency, result);
    if (page.length < pageSize) break;
  }
  result.more = result.found >= limit;
  return result;
}

async function markAll(inbox: Inbox, entries: InboxEntry[], concurrency: number, result: SweepResult): Promise<void> {
  const marks = await mapSettled(entries, concurrency, (e) => inbox.markEnqueued(e.id));
  marks.forEach((m, i) => {
    const ignored = inboxMessages(entries[i]!).length === 0;
    if (m.ok) {
      if (ignored) result.ignored++;
      else result.requeued++;
    } else {
      // Its messages are on the queue; the next run sends them again (same dedupe ids) and marks.
      result.failed++;
      log.error('inbox sweep: mark failed', { error: errName(m.error) });
    }
  });
}

/** Only the error's class name: messages may carry ids or payload fragments. */
function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
