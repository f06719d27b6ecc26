/**
 * Receiver for mailbox-side events: Microsoft Graph change + lifecycle notifications and a
 * generic HMAC-signed webhook (any other mail system or HR tool). Like the WeCom callback it
 * only verifies, dedupes (inbox), enqueues and answers fast — Graph wants a 2xx within 3 s
 * (else retries for up to 4 h) and the validation echo within 10 s. It never calls Graph:
 * a notification is a signal that user X may have changed; the worker re-reads X.
 *
 * Decisions, and why:
 * - clientState: every item of a Graph POST must carry ours (constant-time compare). One
 *   forged item rejects the whole request with 403 and nothing recorded. Graph stamps every
 *   item of a delivery with the subscription's clientState, so a mixed batch is not Graph;
 *   all-or-nothing keeps a tampered request from smuggling anything in, and any genuine
 *   change lost that way is recovered by the scheduled delta read.
 * - Dedupe key of a change item: when Graph gives the notification an `id` (the documented
 *   changeNotification.id, repeated on Graph's redeliveries) the key is SHA-256 over
 *   subscriptionId, changeType, resource, tenantId and that id: exact, no time involved.
 *   Basic user notifications carry no data, so WITHOUT an id two distinct changes to one
 *   user (say disable, then soft delete a second later) are byte-identical to a retry. Then
 *   the key adds a short bucket of receipt time (default 10 s, `dedupeWindowSeconds`):
 *   over-deduping loses a change until the scheduled delta read finds it, under-deduping
 *   only costs one idempotent (level-driven) worker run, so the bucket stays short.
 * - Lifecycle notifications (reauthorizationRequired → renew; subscriptionRemoved →
 *   recreate; missed → catch-up delta read) are enqueued as subject
 *   `mailbox:graph:subscription` with hint `graph.lifecycle.<event>` — durable, retried,
 *   handled by the worker with ensureGraphSubscriptions / a delta read. `onLifecycle`, if
 *   given, is called afterwards as a best-effort hook (local stack, tests); its failure
 *   does not fail the response because the queued message is the source of truth.
 * - Webhook: `userid` is preferred (subject `user:<userid>`). An email-only event must not
 *   put the address in clear into the inbox or queue, so its subject is
 *   `mailbox:address:<HMAC-SHA-256(webhookSecret, 'address:' + lower(email))>` (see
 *   `addressKey`): the worker resolves it by computing the same key over the addresses of
 *   the mailbox accounts / state it knows. A plain SHA-256 would be reversible by guessing
 *   `<userid>@<domain>`; the keyed hash is not without the secret.
 * - Persisting a batch (Graph sends up to 1,000 items per POST and wants 2xx within 3 s):
 *   record every item, enqueue, mark — each step with `writeConcurrency` single-item writes
 *   in flight (DynamoDB has no conditional batch write), and the SQS batches in parallel.
 *   Parallel batches are safe because a request yields ONE message per subject: there is no
 *   order to keep between different subjects' messages. A step that fails for some items
 *   does not stop the others (what succeeded is progress the retry does not redo); any
 *   failure answers 503, and an item is marked `enqueued` only once its subject's message is
 *   on the queue, so everything not acknowledged stays `pending` for the sender's retry or
 *   the inbox sweep (functions/queue/sweep.ts), which rebuilds the same messages.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { HttpRequest, HttpResponse } from '../core/http';
import { json, text } from '../core/http';
import { log } from '../core/log';
import type { SyncMessage, WorkQueue } from '../queue/messages';
import { chunks, mapSettled } from '../queue/parallel';
import { inboxMessages } from '../queue/sweep';
import type { Inbox, InboxEntry } from '../store/ports';
import type { Subject } from '../core/model';

export const GRAPH_EVENTS_PATH = '/mailbox/events/graph';
export const WEBHOOK_EVENTS_PATH = '/mailbox/events/webhook';
export const SUBSCRIPTION_SUBJECT: Subject = 'mailbox:graph:subscription';

export type LifecycleEvent = 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed';

export interface LifecycleNotification {
  lifecycleEvent: LifecycleEvent;
  subscriptionId: string;
  subscriptionExpirationDateTime?: string;
}

export interface MailboxReceiverDeps {
  inbox: Inbox;
  queue: WorkQueue;
  provider: 'graph';
  clientState: string;
  webhookSecret: string;
  now?: () => Date;
  /** Webhook timestamp tolerance (default 300 s). */
  replayWindowSeconds?: number;
  /** Largest accepted body (default 1 MiB). */
  maxBodyBytes?: number;
  /** Width of the receipt-time bucket in dedupe keys of Graph items without an id (default 10 s). */
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

// ---------------------------------------------------------------- schemas

const changeItem = z.looseObject({
  subscriptionId: z.string().min(1).max(200),
  clientState: z.string().nullish(),
  changeType: z.enum(['created', 'updated', 'deleted']),
  resource: z.string().min(1).max(500),
  resourceData: z.looseObject({ id: z.string().max(200).optional() }).optional(),
  tenantId: z.string().max(200).optional(),
  id: z.string().max(200).optional(),
  subscriptionExpirationDateTime: z.string().max(100).optional(),
});
const lifecycleItem = z.looseObject({
  subscriptionId: z.string().min(1).max(200),
  clientState: z.string().nullish(),
  lifecycleEvent: z.enum(['reauthorizationRequired', 'subscriptionRemoved', 'missed']),
  subscriptionExpirationDateTime: z.string().max(100).optional(),
});
const graphBody = z.object({
  value: z.array(z.union([lifecycleItem, changeItem])).min(1).max(1000),
});

/** WeCom userids: 1–64 of letters, digits and _ - . @ */
const wecomUserid = z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/);
const webhookBody = z
  .object({
    type: z.enum(['mailbox.disabled', 'mailbox.deleted', 'mailbox.enabled']),
    userid: wecomUserid.optional(),
    email: z.email().max(320).optional(),
    occurredAt: z.iso.datetime({ offset: true }),
  })
  .refine((b) => b.userid !== undefined || b.email !== undefined, { message: 'userid or email is required' });

/** Graph user ids are GUIDs; accept any short opaque id of safe characters. */
const USER_RESOURCE = /^users\/([A-Za-z0-9-]{1,64})$/i;

// ---------------------------------------------------------------- helpers

function sha256(...parts: string[]): string {
  return createHash('sha256').update(JSON.stringify(parts), 'utf8').digest('hex');
}

/** Constant time whatever the lengths: compare digests (equal-length buffers). */
function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/** Pseudonymous, non-reversible key for an email-only webhook event (see file header). */
export function addressKey(webhookSecret: string, email: string): string {
  return createHmac('sha256', webhookSecret).update('address:' + email.trim().toLowerCase(), 'utf8').digest('hex');
}

/** `sha256=<hex HMAC-SHA-256(secret, timestamp + '.' + rawBody)>` — exported for senders and tests. */
export function signWebhook(secret: string, timestamp: string, rawBody: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${rawBody}`, 'utf8').digest('hex');
}

const accepted = (): HttpResponse => ({ statusCode: 202, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '' });
const reject = (statusCode: number, reason: string): HttpResponse => json(statusCode, { error: reason });

// ---------------------------------------------------------------- receiver

export function createMailboxReceiver(deps: MailboxReceiverDeps): (req: HttpRequest) => Promise<HttpResponse> {
  const now = deps.now ?? (() => new Date());
  const replayWindow = deps.replayWindowSeconds ?? 300;
  const maxBody = deps.maxBodyBytes ?? 1024 * 1024;
  const bucketMs = Math.max(1, (deps.dedupeWindowSeconds ?? 10) * 1000);
  if (!deps.clientState || !deps.webhookSecret) throw new Error('mailbox receiver: clientState and webhookSecret are required');

  const concurrency = Math.max(1, deps.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY);

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
        if (!prev || message.hint === 'graph.deleted') bySubject.set(message.subject, prev ? { ...message, eventId: prev.eventId } : message);
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

  async function graph(req: HttpRequest): Promise<HttpResponse> {
    const token = req.query.validationToken;
    if (token !== undefined) {
      // Validation handshake: echo the (already URL-decoded) token verbatim, nothing else.
      return { statusCode: 200, headers: { 'content-type': 'text/plain', 'x-content-type-options': 'nosniff' }, body: token };
    }
    if (req.method !== 'POST') return reject(405, 'method not allowed');
    if (Buffer.byteLength(req.body, 'utf8') > maxBody) return reject(413, 'body too large');
    let raw: unknown;
    try {
      raw = JSON.parse(req.body);
    } catch {
      return reject(400, 'body is not JSON');
    }
    const parsed = graphBody.safeParse(raw);
    if (!parsed.success) return reject(400, 'not a Graph notification collection');
    const items = parsed.data.value;
    if (!items.every((i) => typeof i.clientState === 'string' && safeEqual(i.clientState, deps.clientState))) {
      log.warn('graph notification with a wrong clientState rejected', { items: items.length, sourceIp: req.sourceIp });
      return reject(403, 'clientState mismatch');
    }

    const receivedAt = now();
    const bucket = String(Math.floor(receivedAt.getTime() / bucketMs));
    const at = receivedAt.toISOString();
    const entries: InboxEntry[] = [];
    const lifecycle: LifecycleNotification[] = [];
    for (const item of items) {
      const life = lifecycleItem.safeParse(item);
      if (life.success) {
        const l = life.data;
        const id = sha256('graph-lifecycle', l.subscriptionId, l.lifecycleEvent, l.subscriptionExpirationDateTime ?? '', bucket);
        const n: LifecycleNotification = { lifecycleEvent: l.lifecycleEvent, subscriptionId: l.subscriptionId };
        if (l.subscriptionExpirationDateTime) n.subscriptionExpirationDateTime = l.subscriptionExpirationDateTime;
        lifecycle.push(n);
        entries.push({
          id,
          source: 'mailbox',
          kind: `graph/lifecycle/${l.lifecycleEvent}`,
          subjects: [SUBSCRIPTION_SUBJECT],
          disposition: 'accepted',
          receivedAt: at,
          hint: `graph.lifecycle.${l.lifecycleEvent}`,
          operator: 'graph-lifecycle',
        });
        continue;
      }
      const c = changeItem.parse(item);
      const m = USER_RESOURCE.exec(c.resource.replace(/^\//, ''));
      const userId = m?.[1];
      if (c.resourceData?.id !== undefined && userId !== undefined && c.resourceData.id.toLowerCase() !== userId.toLowerCase()) {
        return reject(400, 'resource and resourceData disagree');
      }
      const id = c.id
        ? sha256('graph', c.subscriptionId, c.changeType, c.resource.toLowerCase(), c.tenantId ?? '', 'id', c.id)
        : sha256('graph', c.subscriptionId, c.changeType, c.resource.toLowerCase(), c.tenantId ?? '', 'bucket', bucket);
      if (!userId) {
        // Valid, but not a user resource we subscribed to: record (so retries stop) and ignore.
        entries.push({ id, source: 'mailbox', kind: `graph/${c.changeType}`, subjects: [], disposition: 'ignored', receivedAt: at, operator: 'graph-notification' });
        continue;
      }
      const subject: Subject = `mailbox:graph:${userId.toLowerCase()}`;
      const hint = c.changeType === 'deleted' ? 'graph.deleted' : 'graph.updated';
      entries.push({ id, source: 'mailbox', kind: `graph/${c.changeType}`, subjects: [subject], disposition: 'accepted', receivedAt: at, hint, operator: 'graph-notification' });
    }
    const { fresh, duplicates } = await persist(entries);
    log.info('graph notifications accepted', { items: items.length, fresh, duplicates, lifecycle: lifecycle.length });
    for (const n of lifecycle) {
      if (!deps.onLifecycle) break;
      await deps.onLifecycle(n).catch((err: unknown) => log.error('lifecycle hook failed (message is queued)', { err }));
    }
    return accepted();
  }

  async function webhook(req: HttpRequest): Promise<HttpResponse> {
    if (req.method !== 'POST') return reject(405, 'method not allowed');
    if (Buffer.byteLength(req.body, 'utf8') > maxBody) return reject(413, 'body too large');
    const sig = req.headers['x-signature'];
    const ts = req.headers['x-timestamp'];
    if (!sig || !ts) return reject(401, 'missing signature');
    if (!/^\d{1,12}$/.test(ts)) return reject(401, 'bad timestamp');
    const skew = Math.abs(now().getTime() / 1000 - Number(ts));
    if (skew > replayWindow) return reject(401, 'stale timestamp');
    const m = /^sha256=([0-9a-f]{64})$/i.exec(sig);
    if (!m) return reject(401, 'bad signature');
    const expected = createHmac('sha256', deps.webhookSecret).update(`${ts}.${req.body}`, 'utf8').digest();
    // Both 32 bytes: timingSafeEqual's equal-length requirement holds by construction.
    if (!timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'))) {
      log.warn('webhook with a bad signature rejected', { sourceIp: req.sourceIp });
      return reject(401, 'bad signature');
    }
    // Only a verified body is parsed.
    let raw: unknown;
    try {
      raw = JSON.parse(req.body);
    } catch {
      return reject(400, 'body is not JSON');
    }
    const parsed = webhookBody.safeParse(raw);
    if (!parsed.success) return reject(400, 'malformed event');
    const ev = parsed.data;
    const receivedAt = now().toISOString();
    // A sender's retry repeats the body (its timestamp header may differ): the body is the key.
    const id = sha256('webhook', req.body);
    const subject: Subject = ev.userid ? `user:${ev.userid}` : `mailbox:address:${addressKey(deps.webhookSecret, ev.email!)}`;
    const { duplicates } = await persist([
      { id, source: 'mailbox', kind: `webhook/${ev.type}`, subjects: [subject], disposition: 'accepted', receivedAt, hint: ev.type, operator: 'webhook' },
    ]);
    log.info('mailbox webhook accepted', { type: ev.type, byEmail: !ev.userid, duplicate: duplicates > 0 });
    return accepted();
  }

  return async (req) => {
    const path = req.path.replace(/\/+$/, '');
    try {
      if (path.endsWith(GRAPH_EVENTS_PATH)) return await graph(req);
      if (path.endsWith(WEBHOOK_EVENTS_PATH)) return await webhook(req);
    } catch (err) {
      // Store or queue trouble: 5xx so the sender retries; the inbox makes the retry safe.
      log.error('mailbox event not persisted', { err });
      return text(503, 'temporarily unavailable');
    }
    return reject(404, 'not found');
  };
}
