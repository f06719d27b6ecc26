/**
 * The generic signed webhook: any mail system or HR tool can say "this mailbox was created /
 * updated / disabled / deleted / enabled" (`POST /mailbox/events/webhook`). Verified, parsed
 * into one inbox entry; mailbox/receive.ts records and queues it. The event names only WHO:
 * the worker re-reads the account through the configured adapter, whatever the body claimed.
 * `mailbox.created` must name the address (a new account has no WeCom userid yet: with the
 * mailbox as the source of truth the worker derives one, sync/birth.ts).
 *
 * - Signature: `x-signature: sha256=<hex HMAC-SHA-256(webhookSecret, x-timestamp + '.' + raw
 *   body)>`, timestamp within the replay window. Only a verified body is parsed.
 * - `userid` is preferred (subject `user:<userid>`). An email-only event must not put the
 *   address in clear into the inbox or queue, so its subject is
 *   `mailbox:address:<HMAC-SHA-256(webhookSecret, 'address:' + lower(email))>`: the worker
 *   resolves it by computing the same key over the addresses it knows. A plain SHA-256 would
 *   be reversible by guessing `<userid>@<domain>`; the keyed hash is not without the secret.
 * - A sender's retry repeats the body (its timestamp may differ): the body is the dedupe key.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as z from 'zod';
import type { HttpRequest } from '../core/http';
import { log } from '../core/log';
import type { Subject } from '../core/model';
import type { InboxEntry } from '../store/ports';
import { eventKey } from './event-keys';

/** WeCom userids: 1–64 of letters, digits and _ - . @ */
const wecomUserid = z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/);
const webhookBody = z
  .object({
    type: z.enum(['mailbox.created', 'mailbox.updated', 'mailbox.disabled', 'mailbox.deleted', 'mailbox.enabled']),
    userid: wecomUserid.optional(),
    email: z.email().max(320).optional(),
    occurredAt: z.iso.datetime({ offset: true }),
  })
  .refine((b) => b.userid !== undefined || b.email !== undefined, { message: 'userid or email is required' })
  .refine((b) => b.type !== 'mailbox.created' || b.email !== undefined, { message: 'mailbox.created needs the email (the account has no WeCom userid yet)' });

/** Pseudonymous, non-reversible key for an email-only webhook event (see the header). */
export function addressKey(webhookSecret: string, email: string): string {
  return createHmac('sha256', webhookSecret).update('address:' + email.trim().toLowerCase(), 'utf8').digest('hex');
}

/** `sha256=<hex HMAC-SHA-256(secret, timestamp + '.' + rawBody)>` — exported for senders and tests. */
export function signWebhook(secret: string, timestamp: string, rawBody: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${rawBody}`, 'utf8').digest('hex');
}

export type WebhookParse = { ok: false; status: 401 | 400 | 405; reason: string } | { ok: true; entry: InboxEntry; type: string; byEmail: boolean };

export function parseWebhook(req: HttpRequest, o: { secret: string; now: Date; replayWindowSeconds: number }): WebhookParse {
  if (req.method !== 'POST') return { ok: false, status: 405, reason: 'method not allowed' };
  const sig = req.headers['x-signature'];
  const ts = req.headers['x-timestamp'];
  if (!sig || !ts) return { ok: false, status: 401, reason: 'missing signature' };
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, status: 401, reason: 'bad timestamp' };
  if (Math.abs(o.now.getTime() / 1000 - Number(ts)) > o.replayWindowSeconds) return { ok: false, status: 401, reason: 'stale timestamp' };
  const m = /^sha256=([0-9a-f]{64})$/i.exec(sig);
  if (!m) return { ok: false, status: 401, reason: 'bad signature' };
  const expected = createHmac('sha256', o.secret).update(`${ts}.${req.body}`, 'utf8').digest();
  // Both 32 bytes: timingSafeEqual's equal-length requirement holds by construction.
  if (!timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'))) {
    log.warn('webhook with a bad signature rejected', { sourceIp: req.sourceIp });
    return { ok: false, status: 401, reason: 'bad signature' };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(req.body);
  } catch {
    return { ok: false, status: 400, reason: 'body is not JSON' };
  }
  const parsed = webhookBody.safeParse(raw);
  if (!parsed.success) return { ok: false, status: 400, reason: `malformed event: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  const ev = parsed.data;
  // A created account is found by its address even when a userid is given (nothing links it yet).
  const byAddress = ev.type === 'mailbox.created' || !ev.userid;
  const subject: Subject = byAddress ? `mailbox:address:${addressKey(o.secret, ev.email!)}` : `user:${ev.userid}`;
  return {
    ok: true,
    type: ev.type,
    byEmail: byAddress,
    entry: {
      id: eventKey('webhook', req.body),
      source: 'mailbox',
      kind: `webhook/${ev.type}`,
      subjects: [subject],
      disposition: 'accepted',
      receivedAt: o.now.toISOString(),
      hint: ev.type,
      operator: 'webhook',
    },
  };
}
