/**
 * Receiver for mailbox-side events: the configured provider's push notifications
 * (`/mailbox/events/<provider>`, parsed by the provider's NotificationReceiver, e.g.
 * graph/notifications.ts) and the generic signed webhook (`/mailbox/events/webhook`, webhook.ts).
 * Like the WeCom callback it only verifies, dedupes (inbox), enqueues and answers fast —
 * Graph wants a 2xx within 3 s and retries for up to 4 h. It never calls the mailbox system:
 * a notification is a signal that account X may have changed; the worker re-reads X.
 *
 * Persisting a batch (Graph sends up to 1,000 items per POST): record every item, enqueue,
 * mark — each step with `writeConcurrency` single-item writes in flight (DynamoDB has no
 * conditional batch write), and the queue batches in parallel. Parallel batches are safe
 * because a request yields ONE message per subject: there is no order to keep between
 * different subjects' messages. A step that fails for some items does not stop the others
 * (what succeeded is progress the retry does not redo); any failure answers 503, and an item is
 * marked `enqueued` only once its subject's message is on the queue, so everything not
 * acknowledged stays `pending` for the sender's retry or the inbox sweep (queue/sweep.ts),
 * which rebuilds the same messages.
 *
 * Lifecycle notices of the push channel are queued like any event (the worker hands them to
 * the provider's feed); `onLifecycle`, if given, is called afterwards as a best-effort hook
 * (local stack, tests): its failure does not fail the response, the queued message is the
 * source of truth.
 */
import type { HttpRequest, HttpResponse } from '../core/http';
import { json, text } from '../core/http';
import { log } from '../core/log';
import type { Subject } from '../core/model';
import type { SyncMessage, WorkQueue } from '../queue/messages';
import { chunks, mapSettled } from '../queue/parallel';
import { inboxMessages } from '../queue/sweep';
import type { Inbox, InboxEntry } from '../store/ports';
import type { LifecycleNotification, NotificationReceiver } from './provider';
import { loadNotificationReceiver } from './receivers';
import { parseWebhook } from './webhook';

export { addressKey, signWebhook } from './webhook';
export type { LifecycleNotification } from './provider';

export const EVENTS_PATH_PREFIX = '/mailbox/events/';
export const WEBHOOK_EVENTS_PATH = '/mailbox/events/webhook';

export interface MailboxReceiverDeps {
  inbox: Inbox;
  queue: WorkQueue;
  /** The configured provider (`config.provider`): `/mailbox/events/<provider>` goes to its notification parser. */
  provider: string;
  /** The secret the provider echoes in every notification (Graph: the subscription's clientState); '' refuses every notification. */
  clientState: string;
  webhookSecret: string;
  now?: () => Date;
  /** Webhook timestamp tolerance (default 300 s). */
  replayWindowSeconds?: number;
  /** Largest accepted body (default 1 MiB). */
  maxBodyBytes?: number;
  /** Width of the receipt-time bucket in dedupe keys of notifications without an id (default 10 s). */
  dedupeWindowSeconds?: number;
  onLifecycle?: (n: LifecycleNotification) => Promise<void>;
  /**
   * Inbox writes and queue sends in flight while persisting one request (default 32).
   * 1 = one at a time, the former sequential path (kept for the benchmark's comparison).
   */
  writeConcurrency?: number;
}

/** See the header: enough to hide DynamoDB's round trip, within the SDK's 50-socket pool. */
const DEFAULT_WRITE_CONCURRENCY = 32;
/** Messages per enqueue call: SQS SendMessageBatch's limit, so each call is one request. */
const ENQUEUE_CHUNK = 10;

/** Some items of a request were not persisted: the request is answered 503. Counts only, no ids. */
export class PersistIncompleteError extends Error {
  constructor(
    readonly recordFailed: number,
    readonly enqueueFailed: number,
    readonly markFailed: number,
    cause: unknown,
  ) {
    const name = cause instanceof Error ? cause.name : typeof cause;
    super(`inbox: ${recordFailed} record, ${enqueueFailed} enqueue, ${markFailed} mark failure(s) (${name})`);
    this.name = 'PersistIncompleteError';
  }
}

const accepted = (): HttpResponse => ({ statusCode: 202, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '' });
const reject = (statusCode: number, reason: string): HttpResponse => json(statusCode, { error: reason });

export function createMailboxReceiver(deps: MailboxReceiverDeps): (req: HttpRequest) => Promise<HttpResponse> {
  const now = deps.now ?? (() => new Date());
  const replayWindowSeconds = deps.replayWindowSeconds ?? 300;
  const maxBody = deps.maxBodyBytes ?? 1024 * 1024;
  const dedupeBucketMs = Math.max(1, (deps.dedupeWindowSeconds ?? 10) * 1000);
  const concurrency = Math.max(1, deps.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY);
  const providerPath = EVENTS_PATH_PREFIX + deps.provider;
  if (!deps.webhookSecret) throw new Error('mailbox receiver: webhookSecret is required');

  // Loaded at the first notification (a dynamic import inside the bundle), then kept.
  let parser: Promise<NotificationReceiver | undefined> | undefined;
  const notifications = () => {
    parser ??= loadNotificationReceiver(deps.provider);
    parser.catch(() => (parser = undefined));
    return parser;
  };

  /**
   * Record each entry; enqueue one message per subject of the new/pending ones; mark each
   * entry whose subjects are all on the queue. Throws PersistIncompleteError after doing all
   * it could when anything failed (see the header).
   */
  async function persist(entries: InboxEntry[]): Promise<{ fresh: number; duplicates: number }> {
    const recorded = await mapSettled(entries, concurrency, (e) => deps.inbox.record(e));
    let duplicates = 0;
    let firstError: unknown;
    const fresh: InboxEntry[] = [];
    const bySubject = new Map<Subject, SyncMessage>();
    recorded.forEach((r, i) => {
      if (!r.ok) return void (firstError ??= r.error);
      if (r.value === 'duplicate') return void duplicates++;
      const entry = entries[i]!;
      fresh.push(entry);
      for (const message of inboxMessages(entry)) {
        // One message per subject per request; a delete wins over an update in the hint.
        const prev = bySubject.get(message.subject);
        if (!prev || /\.deleted$/.test(message.hint ?? '')) bySubject.set(message.subject, prev ? { ...message, eventId: prev.eventId } : message);
      }
    });
    const recordFailed = recorded.filter((r) => !r.ok).length;

    // Each chunk holds distinct subjects, so the chunks may go in parallel (see the header).
    const batches = chunks([...bySubject.values()], ENQUEUE_CHUNK);
    const sent = await mapSettled(batches, concurrency, (batch) => deps.queue.enqueue(batch));
    const onQueue = new Set<Subject>();
    sent.forEach((r, i) => {
      if (r.ok) for (const m of batches[i]!) onQueue.add(m.subject);
      else firstError ??= r.error;
    });
    const enqueueFailed = sent.reduce((n, r, i) => (r.ok ? n : n + batches[i]!.length), 0);

    const done = fresh.filter((e) => inboxMessages(e).every((m) => onQueue.has(m.subject)));
    const marked = await mapSettled(done, concurrency, (e) => deps.inbox.markEnqueued(e.id));
    const markFailed = marked.filter((r) => !r.ok).length;
    for (const r of marked) if (!r.ok) firstError ??= r.error;

    if (recordFailed || enqueueFailed || markFailed) throw new PersistIncompleteError(recordFailed, enqueueFailed, markFailed, firstError);
    return { fresh: fresh.length, duplicates };
  }

  async function notification(req: HttpRequest): Promise<HttpResponse> {
    const receiver = await notifications();
    if (!receiver) return reject(404, 'not found');
    // Without the shared secret no notification can be told from a forgery.
    if (!deps.clientState) return reject(403, 'notifications are not configured');
    const parsed = receiver.parse(req, { clientState: deps.clientState, now: now(), dedupeBucketMs });
    if (parsed.kind === 'answer') return parsed.response;
    const { fresh, duplicates } = await persist(parsed.entries);
    log.info('mailbox notifications accepted', { provider: deps.provider, items: parsed.entries.length, fresh, duplicates, lifecycle: parsed.lifecycle.length });
    for (const n of parsed.lifecycle) {
      if (!deps.onLifecycle) break;
      await deps.onLifecycle(n).catch((err: unknown) => log.error('lifecycle hook failed (message is queued)', { err }));
    }
    return accepted();
  }

  async function webhook(req: HttpRequest): Promise<HttpResponse> {
    const parsed = parseWebhook(req, { secret: deps.webhookSecret, now: now(), replayWindowSeconds });
    if (!parsed.ok) return reject(parsed.status, parsed.reason);
    const { duplicates } = await persist([parsed.entry]);
    log.info('mailbox webhook accepted', { type: parsed.type, byEmail: parsed.byEmail, duplicate: duplicates > 0 });
    return accepted();
  }

  return async (req) => {
    const path = req.path.replace(/\/+$/, '');
    const isWebhook = path.endsWith(WEBHOOK_EVENTS_PATH);
    if (!isWebhook && !path.endsWith(providerPath)) return reject(404, 'not found');
    // The validation handshake has no body; a POST too large is refused before parsing.
    if (req.method === 'POST' && Buffer.byteLength(req.body, 'utf8') > maxBody) return reject(413, 'body too large');
    try {
      return isWebhook ? await webhook(req) : await notification(req);
    } catch (err) {
      // Store or queue trouble: 5xx so the sender retries; the inbox makes the retry safe.
      log.error('mailbox event not persisted', { err });
      return text(503, 'temporarily unavailable');
    }
  };
}
