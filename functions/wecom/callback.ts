/**
 * The WeCom callback receiver: one URL, GET to verify it, POST to deliver events.
 *
 * POST: size cap → parse envelope → signature → replay window → decrypt → parse + validate
 * → inbox (dedupe on SHA-256 of the decrypted message) → enqueue one message per subject →
 * markEnqueued → 'success'. It never calls WeCom or the mailbox (answer fast, work later).
 *
 * Every rejection is a short generic 4xx and writes nothing; every crypto failure is the
 * same answer (no oracle). A failure to persist or enqueue is a 5xx so WeCom retries; the
 * inbox item then says 'pending' and the retry enqueues again (the queue's dedupe id
 * absorbs a double send). The item carries what its messages need (subjects, hint,
 * operator), so if this function dies after recording and WeCom gives up retrying, the
 * scheduled inbox sweep (functions/queue/sweep.ts) enqueues the very same messages.
 * Logs carry the event kind and a hash prefix only.
 *
 * SOURCE CHECK (optional, `sourceCheck`, callback-source.ts): before anything else, a request
 * whose source address is outside WeCom's published callback ranges is refused with a 403
 * and nothing written. The check fails open when the list cannot be trusted (missing, stale,
 * unreadable): see callback-source.ts for why.
 */
import { createHash } from 'node:crypto';
import type { HttpRequest, HttpResponse } from '../core/http';
import { text } from '../core/http';
import { log } from '../core/log';
import type { WorkQueue } from '../queue/messages';
import { inboxMessages } from '../queue/sweep';
import type { Inbox, InboxEntry } from '../store/ports';
import { CallbackRejected, decryptMessage, verifySignature, type CallbackKeys } from './crypto';
import type { CallbackSourceCheck } from './callback-source';
import { parseEnvelope, parseEvent, subjectsOf } from './events';

export interface CallbackReceiverDeps {
  keys: CallbackKeys;
  inbox: Inbox;
  queue: WorkQueue;
  now?: () => Date;
  /** Accepted clock skew of `timestamp`, both directions. Default 600 s. */
  replayWindowSeconds?: number;
  /** Bodies above this many bytes are refused before parsing. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Refuse sources outside WeCom's callback ranges (absent: no check). */
  sourceCheck?: CallbackSourceCheck;
}

const REJECT: Record<CallbackRejected['reason'], HttpResponse> = {
  invalid: text(403, 'invalid signature or payload'),
  stale: text(403, 'stale'),
  malformed: text(400, 'malformed'),
  'too-large': text(413, 'too large'),
};

/** A source outside WeCom's callback ranges (the source check). */
const FORBIDDEN_SOURCE = text(403, 'forbidden');

const TIMESTAMP = /^[0-9]{1,12}$/;
const NONCE = /^[A-Za-z0-9_-]{1,64}$/;

export function createCallbackReceiver(deps: CallbackReceiverDeps): (req: HttpRequest) => Promise<HttpResponse> {
  const now = deps.now ?? (() => new Date());
  const windowMs = (deps.replayWindowSeconds ?? 600) * 1000;
  const maxBytes = deps.maxBodyBytes ?? 64 * 1024;
  const { keys } = deps;

  /** Signature over `encrypt`, then freshness; the order means unauthenticated callers learn nothing about the clock. */
  function authenticate(q: HttpRequest['query'], encrypt: string): void {
    const { msg_signature: sig, timestamp, nonce } = q;
    if (!timestamp || !TIMESTAMP.test(timestamp) || !nonce || !NONCE.test(nonce)) throw new CallbackRejected('invalid');
    if (!verifySignature(keys.token, timestamp, nonce, encrypt, sig)) throw new CallbackRejected('invalid');
    if (Math.abs(now().getTime() - Number(timestamp) * 1000) > windowMs) throw new CallbackRejected('stale');
  }

  function verifyUrl(req: HttpRequest): HttpResponse {
    // API Gateway has URL-decoded the query: a '+' in the base64 echostr became a space.
    const echostr = (req.query.echostr ?? '').replace(/ /g, '+');
    if (!echostr) throw new CallbackRejected('malformed');
    authenticate(req.query, echostr);
    const plain = decryptMessage(echostr, keys);
    log.info('wecom callback url verified');
    // The bare plaintext: WeCom compares byte for byte (no quotes, BOM, newline).
    return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: plain };
  }

  async function deliver(req: HttpRequest): Promise<HttpResponse> {
    const body = req.body ?? '';
    // Cap before parsing; string length is a lower bound of the byte length, so check it first.
    if (body.length > maxBytes || Buffer.byteLength(body, 'utf8') > maxBytes) throw new CallbackRejected('too-large');
    const { encrypt } = parseEnvelope(body);
    authenticate(req.query, encrypt);
    const plain = decryptMessage(encrypt, keys);
    const event = parseEvent(plain);
    const id = createHash('sha256').update(plain, 'utf8').digest('hex');
    const subjects = subjectsOf(event);
    const receivedAt = now().toISOString();
    const disposition = subjects.length > 0 ? 'accepted' : 'ignored';
    const ref = { kind: event.kind, event: id.slice(0, 12) };
    const hint = event.change?.changeType;
    const entry: InboxEntry = { id, source: 'wecom', kind: event.kind, subjects, disposition, receivedAt, operator: 'wecom-callback', ...(hint ? { hint } : {}) };

    let state: 'new' | 'pending' | 'duplicate';
    try {
      state = await deps.inbox.record(entry);
    } catch (err) {
      log.error('wecom callback: inbox write failed', { ...ref, error: errName(err) });
      return text(500, 'retry');
    }
    if (state === 'duplicate') {
      log.info('wecom callback duplicate', ref);
      return text(200, 'success');
    }
    try {
      const messages = inboxMessages(entry);
      if (messages.length > 0) await deps.queue.enqueue(messages);
      await deps.inbox.markEnqueued(id);
    } catch (err) {
      // The inbox item stays 'pending': WeCom's retry records 'pending' and enqueues again.
      log.error('wecom callback: enqueue failed', { ...ref, error: errName(err) });
      return text(503, 'retry');
    }
    log.info('wecom callback accepted', { ...ref, disposition, subjects: subjects.length, retry: state === 'pending' });
    return text(200, 'success');
  }

  return async (req) => {
    try {
      // First, before the body is even measured: an outside source learns nothing else.
      if (deps.sourceCheck && (await deps.sourceCheck(req.sourceIp)) === 'refused') {
        log.warn('wecom callback refused: source outside WeCom callback ranges', { method: req.method });
        return FORBIDDEN_SOURCE;
      }
      const method = req.method.toUpperCase();
      if (method === 'GET') return verifyUrl(req);
      if (method === 'POST') return await deliver(req);
      return text(405, 'method not allowed');
    } catch (err) {
      if (err instanceof CallbackRejected) {
        log.warn('wecom callback rejected', { reason: err.reason, method: req.method });
        return REJECT[err.reason];
      }
      log.error('wecom callback failed', { error: errName(err) });
      return text(500, 'error');
    }
  };
}

/** Only the error's class name: messages may carry ids or payload fragments. */
function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
