/**
 * How changes made in Entra reach us: change notifications (pushed to the receiver) and the
 * delta query (read on a schedule). Either way the result is "subject mailbox:graph:<id> may
 * have changed"; the worker re-reads the account.
 *
 * Notifications (parsed here, recorded and queued by mailbox/receive.ts):
 * - Basic notifications on users carry the resource id only; Graph wants a 2xx within 3 s or
 *   retries for up to 4 h, and the validation echo within 10 s; up to 1,000 items per POST.
 * - clientState: every item must carry ours (constant-time compare). One forged item rejects
 *   the whole request with 403 and nothing recorded: Graph stamps every item of a delivery
 *   with the subscription's clientState, so a mixed batch is not Graph, and a genuine change
 *   lost that way is found by the delta catch-up.
 * - Dedupe key of a change: with Graph's notification `id` (repeated on Graph's redeliveries)
 *   SHA-256 over subscription, changeType, resource, tenant and that id — exact. WITHOUT an id
 *   two distinct changes to one user (disable, then soft delete a second later) are
 *   byte-identical to a retry, so the key adds a short bucket of receipt time: over-deduping
 *   loses a change until the catch-up finds it, under-deduping costs one idempotent worker
 *   run, so the bucket stays short (default 10 s).
 * - Lifecycle notices (reauthorizationRequired → renew; subscriptionRemoved → recreate;
 *   missed → catch-up read) are queued on `mailbox:graph:subscription` with hint
 *   `graph.lifecycle.<event>`; the worker hands them to the feed (index.ts).
 *
 * The delta read is graph/delta.ts; this module is all the push receiver (mailbox-events)
 * loads, so it carries no adapter code.
 */
import * as z from 'zod';
import type { HttpRequest, HttpResponse } from '../../core/http';
import { json } from '../../core/http';
import { log } from '../../core/log';
import type { Subject } from '../../core/model';
import type { InboxEntry } from '../../store/ports';
import { eventKey, sameSecret } from '../event-keys';
import { feedSubject, type LifecycleNotification, type NotificationContext, type NotificationParse, type NotificationReceiver } from '../provider';

const PROVIDER = 'graph';

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
const notificationBody = z.object({
  value: z.array(z.union([lifecycleItem, changeItem])).min(1).max(1000),
});

/** Graph user ids are GUIDs; accept any short opaque id of safe characters. */
const USER_RESOURCE = /^users\/([A-Za-z0-9-]{1,64})$/i;

const answer = (response: HttpResponse): NotificationParse => ({ kind: 'answer', response });
const refuse = (statusCode: number, reason: string): NotificationParse => answer(json(statusCode, { error: reason }));

export function accountSubject(id: string): Subject {
  return `mailbox:${PROVIDER}:${id.toLowerCase()}`;
}

export const graphNotifications: NotificationReceiver = {
  parse(req: HttpRequest, ctx: NotificationContext): NotificationParse {
    const token = req.query.validationToken;
    if (token !== undefined) {
      // Validation handshake: echo the (already URL-decoded) token verbatim, nothing else.
      return answer({ statusCode: 200, headers: { 'content-type': 'text/plain', 'x-content-type-options': 'nosniff' }, body: token });
    }
    if (req.method !== 'POST') return refuse(405, 'method not allowed');
    let raw: unknown;
    try {
      raw = JSON.parse(req.body);
    } catch {
      return refuse(400, 'body is not JSON');
    }
    const parsed = notificationBody.safeParse(raw);
    if (!parsed.success) return refuse(400, 'not a Graph notification collection');
    const items = parsed.data.value;
    if (!items.every((i) => typeof i.clientState === 'string' && sameSecret(i.clientState, ctx.clientState))) {
      log.warn('graph notification with a wrong clientState rejected', { items: items.length, sourceIp: req.sourceIp });
      return refuse(403, 'clientState mismatch');
    }

    const bucket = String(Math.floor(ctx.now.getTime() / ctx.dedupeBucketMs));
    const at = ctx.now.toISOString();
    const entries: InboxEntry[] = [];
    const lifecycle: LifecycleNotification[] = [];
    for (const item of items) {
      const life = lifecycleItem.safeParse(item);
      if (life.success) {
        const l = life.data;
        const n: LifecycleNotification = { lifecycleEvent: l.lifecycleEvent, subscriptionId: l.subscriptionId };
        if (l.subscriptionExpirationDateTime) n.subscriptionExpirationDateTime = l.subscriptionExpirationDateTime;
        lifecycle.push(n);
        entries.push({
          id: eventKey('graph-lifecycle', l.subscriptionId, l.lifecycleEvent, l.subscriptionExpirationDateTime ?? '', bucket),
          source: 'mailbox',
          kind: `graph/lifecycle/${l.lifecycleEvent}`,
          subjects: [feedSubject(PROVIDER)],
          disposition: 'accepted',
          receivedAt: at,
          hint: `graph.lifecycle.${l.lifecycleEvent}`,
          operator: 'graph-lifecycle',
        });
        continue;
      }
      const c = changeItem.parse(item);
      const userId = USER_RESOURCE.exec(c.resource.replace(/^\//, ''))?.[1];
      if (c.resourceData?.id !== undefined && userId !== undefined && c.resourceData.id.toLowerCase() !== userId.toLowerCase()) {
        return refuse(400, 'resource and resourceData disagree');
      }
      const id = c.id
        ? eventKey('graph', c.subscriptionId, c.changeType, c.resource.toLowerCase(), c.tenantId ?? '', 'id', c.id)
        : eventKey('graph', c.subscriptionId, c.changeType, c.resource.toLowerCase(), c.tenantId ?? '', 'bucket', bucket);
      const base = { id, source: 'mailbox' as const, kind: `graph/${c.changeType}`, receivedAt: at, operator: 'graph-notification' };
      // Valid, but not a user resource we subscribed to: recorded (so retries stop) and ignored.
      if (!userId) entries.push({ ...base, subjects: [], disposition: 'ignored' });
      else entries.push({ ...base, subjects: [accountSubject(userId)], disposition: 'accepted', hint: c.changeType === 'deleted' ? 'graph.deleted' : 'graph.updated' });
    }
    return { kind: 'events', entries, lifecycle };
  },
};
