/**
 * The push receiver of users.watch channels (`POST /mailbox/events/google`): parsed and
 * authenticated here, recorded and queued by mailbox/receive.ts. The mailbox-events function
 * loads this module alone, so it carries no adapter code.
 *
 * Wire facts (Directory API "Push notifications" guide; sources in docs/providers/google.md):
 * - Every message is a POST with X-Goog-Channel-ID, X-Goog-Message-Number, X-Goog-Resource-ID,
 *   X-Goog-Resource-State, X-Goog-Resource-URI, and X-Goog-Channel-Token / -Expiration when
 *   the channel has them. The token is the secret we gave the channel (≤ 256 characters):
 *   compared in constant time; a missing or wrong one is refused 403 and nothing is recorded.
 * - `sync` is the first message of a new channel (message number 1, no body): answered 200,
 *   nothing recorded. The user states are `add`, `update`, `delete`, `undelete`, `makeAdmin`
 *   (the `event` the channel watches); the body is the user in short:
 *   `{kind: "admin#directory#user", id, etag, primaryEmail}`. Only the id is used: the address
 *   is personal data and the worker re-reads the account anyway.
 * - Google counts 200/201/202/204 as delivered and retries 5xx with exponential backoff
 *   (so a store outage answers 503 and Google comes back).
 * - Dedupe key: SHA-256 over channel id, message number, state and user id. Message numbers
 *   grow per channel and a redelivery carries the same one, so the key is exact; without a
 *   number (not seen from Google) a short bucket of receipt time stands in, as for Graph.
 * - No lifecycle notices exist: a channel simply expires (channels.ts replaces it in time).
 */
import * as z from 'zod';
import type { HttpRequest, HttpResponse } from '../../core/http';
import { json } from '../../core/http';
import { log } from '../../core/log';
import type { Subject } from '../../core/model';
import type { InboxEntry } from '../../store/ports';
import { eventKey, sameSecret } from '../event-keys';
import type { NotificationContext, NotificationParse, NotificationReceiver } from '../provider';

const PROVIDER = 'google';
export const USER_STATES = ['add', 'update', 'delete', 'undelete', 'makeAdmin'] as const;
type UserState = (typeof USER_STATES)[number];

/** Google user ids are decimal strings (21 digits); accept any short opaque id of safe characters. */
const userBody = z.looseObject({
  kind: z.string().max(100).optional(),
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  etag: z.string().max(200).optional(),
});

const answer = (response: HttpResponse): NotificationParse => ({ kind: 'answer', response });
const refuse = (statusCode: number, reason: string): NotificationParse => answer(json(statusCode, { error: reason }));

export function accountSubject(id: string): Subject {
  return `mailbox:${PROVIDER}:${id}`;
}

/** The message hint of a state: the receiver lets a `.deleted` hint win when one request names a subject twice. */
export function hintOf(state: UserState): string {
  return state === 'delete' ? 'google.deleted' : `google.${state}`;
}

export const googleNotifications: NotificationReceiver = {
  parse(req: HttpRequest, ctx: NotificationContext): NotificationParse {
    if (req.method !== 'POST') return refuse(405, 'method not allowed');
    const channelId = req.headers['x-goog-channel-id'];
    const state = req.headers['x-goog-resource-state'];
    if (!channelId || !state || channelId.length > 200) return refuse(400, 'not a Google push notification');
    const token = req.headers['x-goog-channel-token'];
    if (typeof token !== 'string' || !sameSecret(token, ctx.clientState)) {
      log.warn('google notification with a wrong channel token rejected', { state, sourceIp: req.sourceIp });
      return refuse(403, 'channel token mismatch');
    }
    // The channel's handshake: nothing happened to any user.
    if (state === 'sync') return answer({ statusCode: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '' });

    const at = ctx.now.toISOString();
    const number = req.headers['x-goog-message-number'];
    const messageNo = number && /^\d{1,20}$/.test(number) ? number : undefined;
    if (!(USER_STATES as readonly string[]).includes(state)) {
      // Authentic, but a state we do not know: recorded (so Google stops retrying) and ignored.
      const id = eventKey('google', channelId, messageNo ?? String(Math.floor(ctx.now.getTime() / ctx.dedupeBucketMs)), state);
      return { kind: 'events', entries: [{ id, source: 'mailbox', kind: `google/${state.slice(0, 40)}`, subjects: [], disposition: 'ignored', receivedAt: at, operator: 'google-notification' }], lifecycle: [] };
    }
    let raw: unknown;
    try {
      raw = JSON.parse(req.body);
    } catch {
      return refuse(400, 'body is not JSON');
    }
    const parsed = userBody.safeParse(raw);
    if (!parsed.success) return refuse(400, 'not a Directory API user notification');
    const userId = parsed.data.id;
    const s = state as UserState;
    const id = messageNo
      ? eventKey('google', channelId, 'n', messageNo, s, userId)
      : eventKey('google', channelId, 'bucket', String(Math.floor(ctx.now.getTime() / ctx.dedupeBucketMs)), s, userId, parsed.data.etag ?? '');
    const entry: InboxEntry = {
      id,
      source: 'mailbox',
      kind: `google/${s}`,
      subjects: [accountSubject(userId)],
      disposition: 'accepted',
      receivedAt: at,
      hint: hintOf(s),
      operator: 'google-notification',
    };
    return { kind: 'events', entries: [entry], lifecycle: [] };
  },
};
