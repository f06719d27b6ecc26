/**
 * Subscriptions and what they deliver:
 * - `/subscriptions`: create (resource `users`, changeType updated/deleted, clientState ≤ 128,
 *   expiration ≤ 41,760 minutes, and the validation handshake against the notification URL
 *   and the lifecycle URL before the subscription exists), list and get (clientState never
 *   shown), PATCH to renew, DELETE; expired ones vanish.
 * - change notifications: basic (the resource id only), one per change, posted after the
 *   write's answer, never holding it;
 * - lifecycle notices (`emitLifecycle`): reauthorizationRequired, subscriptionRemoved (the
 *   subscription goes), missed.
 * Delivery goes over HTTP, or to `setNotify`'s function (tests answer in-process).
 */
import { randomUUID } from 'node:crypto';
import type { NotifyFn, Route, SimContext } from './context';
import { gErr, notFound, type Res } from './odata';
import type { SimSubscription } from './state';

const MAX_SUB_MINUTES = 41_760;

export interface Delivery {
  url: string;
  kind: 'validation' | 'notification' | 'lifecycle';
  status: number;
  body: string;
}

export interface Notifications {
  route: Route;
  deliveries: Delivery[];
  setNotify(fn?: NotifyFn): void;
  /** Post the change notifications of one user change to every live subscription on users. */
  fireChange(userId: string, changeType: 'updated' | 'deleted'): void;
  flush(): Promise<void>;
  emitLifecycle(subscriptionId: string, event: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed'): Promise<{ status: number }>;
}

export function notifications(ctx: Omit<SimContext, 'changed'>): Notifications {
  const { subscriptions } = ctx.state;
  const { tenantId, organizationId, clientId } = ctx.opts;
  const deliveries: Delivery[] = [];
  const pending = new Set<Promise<unknown>>();
  let notify: NotifyFn | undefined;

  async function deliver(url: string, body: string, headers: Record<string, string>, timeoutMs: number) {
    if (notify) return notify(url, body, headers);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const r = await fetch(url, { method: 'POST', headers, body, signal: ctl.signal });
      return { status: r.status, body: await r.text(), contentType: r.headers.get('content-type') ?? '' };
    } finally {
      clearTimeout(timer);
    }
  }

  function track<T>(p: Promise<T>): Promise<T> {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  }

  function live(): SimSubscription[] {
    const t = ctx.now().getTime();
    for (const [id, s] of subscriptions) if (Date.parse(s.expirationDateTime) <= t) subscriptions.delete(id);
    return [...subscriptions.values()];
  }

  async function validateEndpoint(url: string): Promise<boolean> {
    // Graph's real tokens contain spaces and punctuation: the receiver must decode and echo verbatim.
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()} +/&=`;
    const target = `${url}${url.includes('?') ? '&' : '?'}validationToken=${encodeURIComponent(token)}`;
    const timeoutMs = ctx.opts.validationTimeoutMs;
    try {
      const r = await Promise.race([
        deliver(target, '', { 'content-type': 'text/plain; charset=utf-8' }, timeoutMs),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs)),
      ]);
      deliveries.push({ url, kind: 'validation', status: r.status, body: r.body });
      const ct = (r as { contentType?: string }).contentType;
      return r.status === 200 && r.body === token && (ct === undefined || ct.startsWith('text/plain'));
    } catch {
      deliveries.push({ url, kind: 'validation', status: 0, body: '' });
      return false;
    }
  }

  function checkExpiration(v: unknown): string | Res {
    const t = typeof v === 'string' ? Date.parse(v) : NaN;
    if (Number.isNaN(t)) return gErr(400, 'InvalidRequest', 'expirationDateTime is required.');
    const n = ctx.now().getTime();
    if (t <= n) return gErr(400, 'InvalidRequest', 'Subscription expiration must be in the future.');
    if (t > n + MAX_SUB_MINUTES * 60_000 + 1000) return gErr(400, 'InvalidRequest', `Subscription expiration can only be ${MAX_SUB_MINUTES} minutes in the future.`);
    return new Date(t).toISOString();
  }

  async function create(b: Record<string, unknown>): Promise<Res> {
    const resource = String(b.resource ?? '');
    const changeType = String(b.changeType ?? '');
    const notificationUrl = String(b.notificationUrl ?? '');
    if (!/^\/?users$/i.test(resource)) return gErr(400, 'InvalidRequest', 'Unsupported resource.');
    if (!changeType || !changeType.split(',').every((c) => c === 'updated' || c === 'deleted')) {
      return gErr(400, 'InvalidRequest', 'Unsupported changeType for resource users.');
    }
    if (typeof b.clientState === 'string' && b.clientState.length > 128) return gErr(400, 'InvalidRequest', 'clientState must be at most 128 characters.');
    if (!/^https?:\/\//.test(notificationUrl)) return gErr(400, 'InvalidRequest', 'notificationUrl must be a URL.');
    const exp = checkExpiration(b.expirationDateTime);
    if (typeof exp !== 'string') return exp;
    const lifecycle = typeof b.lifecycleNotificationUrl === 'string' ? b.lifecycleNotificationUrl : null;
    // Both endpoints must pass the validation handshake before the subscription exists.
    for (const url of new Set([notificationUrl, ...(lifecycle ? [lifecycle] : [])])) {
      if (!(await validateEndpoint(url))) {
        return gErr(400, 'ValidationError', 'Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.');
      }
    }
    const sub: SimSubscription = {
      id: randomUUID(),
      resource,
      changeType,
      notificationUrl,
      lifecycleNotificationUrl: lifecycle,
      clientState: typeof b.clientState === 'string' ? b.clientState : null,
      expirationDateTime: exp,
      applicationId: clientId,
    };
    subscriptions.set(sub.id, sub);
    return { status: 201, body: sub };
  }

  const route: Route = async ({ method, seg: s, body: b }) => {
    if (s[0] !== 'subscriptions') return undefined;
    if (s.length === 1 && method === 'GET') return { status: 200, body: { value: live().map((x) => ({ ...x, clientState: null })) } };
    if (s.length === 1 && method === 'POST') return create(b);
    if (s.length !== 2) return undefined;
    live();
    const sub = subscriptions.get(s[1]!);
    if (!sub) return notFound(s[1]!);
    if (method === 'GET') return { status: 200, body: { ...sub, clientState: null } };
    if (method === 'DELETE') {
      subscriptions.delete(sub.id);
      return { status: 204 };
    }
    if (method === 'PATCH') {
      const exp = checkExpiration(b.expirationDateTime);
      if (typeof exp !== 'string') return exp;
      sub.expirationDateTime = exp;
      subscriptions.set(sub.id, sub); // stored again: journals the in-place change
      return { status: 200, body: { ...sub, clientState: null } };
    }
    return undefined;
  };

  return {
    route,
    deliveries,
    setNotify(fn) {
      notify = fn;
    },
    fireChange(userId, changeType) {
      for (const s of live()) {
        if (!/^\/?users$/i.test(s.resource) || !s.changeType.split(',').includes(changeType)) continue;
        const body = JSON.stringify({
          value: [
            {
              // changeNotification.id: unique per notification, the same on redelivery.
              id: randomUUID(),
              subscriptionId: s.id,
              clientState: s.clientState,
              changeType,
              resource: `Users/${userId}`,
              resourceData: { '@odata.type': '#Microsoft.Graph.User', '@odata.id': `Users/${userId}`, id: userId, organizationId },
              subscriptionExpirationDateTime: s.expirationDateTime,
              tenantId,
            },
          ],
        });
        // Asynchronous: Graph never holds the write's response for the delivery.
        track(
          new Promise((r) => setImmediate(r))
            .then(() => deliver(s.notificationUrl, body, { 'content-type': 'application/json; charset=utf-8' }, 3_000))
            .then(
              (r) => deliveries.push({ url: s.notificationUrl, kind: 'notification', status: r.status, body }),
              () => deliveries.push({ url: s.notificationUrl, kind: 'notification', status: 0, body }),
            ),
        );
      }
    },
    async flush() {
      while (pending.size) await Promise.allSettled([...pending]);
    },
    async emitLifecycle(subscriptionId, event) {
      const sub = subscriptions.get(subscriptionId);
      if (!sub) throw new Error(`no subscription ${subscriptionId}`);
      const url = sub.lifecycleNotificationUrl ?? sub.notificationUrl;
      const body = JSON.stringify({
        value: [{ subscriptionId: sub.id, subscriptionExpirationDateTime: sub.expirationDateTime, tenantId, clientState: sub.clientState, lifecycleEvent: event, organizationId }],
      });
      if (event === 'subscriptionRemoved') subscriptions.delete(sub.id);
      const r = await track(deliver(url, body, { 'content-type': 'application/json; charset=utf-8' }, 3_000));
      deliveries.push({ url, kind: 'lifecycle', status: r.status, body });
      return { status: r.status };
    },
  };
}
