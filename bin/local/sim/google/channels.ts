/**
 * users.watch channels and what they deliver:
 * - `POST /admin/directory/v1/users/watch?customer=…&event=…` with `{id, type: 'web_hook',
 *   address, token, params: {ttl}}`: id 1..64 of [A-Za-z0-9-_+/=] and unique (400
 *   `channelIdNotUnique`), token ≤ 256, ttl capped at the Directory API's 6 hours; answers
 *   `{kind: 'api#channel', id, resourceId, resourceUri, token, expiration}` (ms, a string),
 *   then posts the `sync` message (number 1, no body).
 * - `POST /admin/directory_v1/channels/stop` with `{id, resourceId}`: 204; 404 when unknown.
 * - A user change posts to every live channel watching its event: the X-Goog-* headers and
 *   `{kind, id, etag, primaryEmail}`, message numbers growing per channel. Asynchronous:
 *   Google never holds the write's answer for the delivery. Expired channels are dropped.
 * Delivery goes over HTTP, or to `setNotify`'s function (tests answer in-process).
 */
import { randomBytes } from 'node:crypto';
import { gErr, invalid, notFound, type NotifyFn, type Res, type Route, type SimContext, type UserEvent } from './context';
import type { SimChannel } from './state';

const EVENTS = new Set(['add', 'delete', 'makeAdmin', 'undelete', 'update']);

export interface Delivery {
  url: string;
  state: string;
  status: number;
  channelId: string;
  messageNumber: number;
  body: string;
}

export interface Channels {
  route: Route;
  deliveries: Delivery[];
  setNotify(fn?: NotifyFn): void;
  fire(userId: string, event: UserEvent): void;
  flush(): Promise<void>;
}

export function channelsModule(ctx: Omit<SimContext, 'changed'>): Channels {
  const { channels } = ctx.state;
  const deliveries: Delivery[] = [];
  const pending = new Set<Promise<unknown>>();
  let notify: NotifyFn | undefined;

  async function deliver(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    if (notify) return notify(url, body, headers);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 10_000);
    try {
      const r = await fetch(url, { method: 'POST', headers, body, signal: ctl.signal });
      return { status: r.status, body: await r.text() };
    } finally {
      clearTimeout(timer);
    }
  }

  function live(): SimChannel[] {
    const t = ctx.now().getTime();
    for (const [id, c] of channels) if (c.expiration <= t) channels.delete(id);
    return [...channels.values()];
  }

  function post(c: SimChannel, state: string, payload: Record<string, unknown> | undefined): void {
    c.messageNumber += 1;
    channels.set(c.id, c); // stored again: journals the counter
    const number = c.messageNumber;
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=UTF-8',
      'x-goog-channel-id': c.id,
      'x-goog-channel-expiration': new Date(c.expiration).toUTCString(),
      'x-goog-resource-id': c.resourceId,
      'x-goog-resource-uri': `https://admin.googleapis.com/admin/directory/v1/users?customer=${ctx.opts.customerId}${c.event ? `&event=${c.event}` : ''}&alt=json`,
      'x-goog-resource-state': state,
      'x-goog-message-number': String(number),
      ...(c.token !== null ? { 'x-goog-channel-token': c.token } : {}),
    };
    const body = payload ? JSON.stringify(payload) : '';
    const p = new Promise((r) => setImmediate(r))
      .then(() => deliver(c.address, body, headers))
      .then(
        (r) => deliveries.push({ url: c.address, state, status: r.status, channelId: c.id, messageNumber: number, body }),
        () => deliveries.push({ url: c.address, state, status: 0, channelId: c.id, messageNumber: number, body }),
      );
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }

  function watch(query: URLSearchParams, b: Record<string, unknown>): Res {
    const event = query.get('event');
    if (event !== null && !EVENTS.has(event)) return invalid('Invalid value for: event');
    if (!query.get('customer') && !query.get('domain')) return gErr(400, 'badRequest', 'Bad Request');
    const id = b.id;
    if (typeof id !== 'string' || !/^[A-Za-z0-9\-_+/=]{1,64}$/.test(id)) return invalid('Invalid channel id');
    if (channels.has(id)) return gErr(400, 'channelIdNotUnique', 'Channel id not unique');
    if (b.type !== 'web_hook') return invalid('Invalid channel type');
    const address = b.address;
    if (typeof address !== 'string' || !/^https?:\/\//.test(address)) return gErr(400, 'push.webhookUrlUnauthorized', 'Unauthorized WebHook callback channel');
    if (b.token !== undefined && (typeof b.token !== 'string' || b.token.length > 256)) return invalid('Invalid channel token');
    const ttlRaw = (b.params as Record<string, unknown> | undefined)?.ttl;
    const ttl = Math.min(ttlRaw === undefined ? 3600 : Number(ttlRaw), ctx.opts.maxChannelTtlSeconds);
    if (!Number.isFinite(ttl) || ttl <= 0) return invalid('Invalid ttl value for channel');
    const c: SimChannel = {
      id,
      resourceId: randomBytes(12).toString('base64url'),
      address,
      token: typeof b.token === 'string' ? b.token : null,
      event,
      expiration: ctx.now().getTime() + ttl * 1000,
      messageNumber: 0,
    };
    channels.set(id, c);
    post(c, 'sync', undefined);
    return {
      status: 200,
      body: {
        kind: 'api#channel',
        id,
        resourceId: c.resourceId,
        resourceUri: `https://admin.googleapis.com/admin/directory/v1/users?customer=${ctx.opts.customerId}${event ? `&event=${event}` : ''}&alt=json`,
        ...(c.token !== null ? { token: c.token } : {}),
        expiration: String(c.expiration),
      },
    };
  }

  const route: Route = ({ method, seg, query, body: b }) => {
    if (method !== 'POST') return undefined;
    if (seg.join('/') === 'admin/directory/v1/users/watch') return watch(query, b);
    if (seg.join('/') === 'admin/directory_v1/channels/stop') {
      live();
      const c = typeof b.id === 'string' ? channels.get(b.id) : undefined;
      if (!c || c.resourceId !== b.resourceId) return notFound('channel');
      channels.delete(c.id);
      return { status: 204 };
    }
    return undefined;
  };

  return {
    route,
    deliveries,
    setNotify(fn) {
      notify = fn;
    },
    fire(userId, event) {
      const u = ctx.state.users.get(userId) ?? ctx.state.deleted.get(userId);
      if (!u) return;
      for (const c of live()) {
        if (c.event !== null && c.event !== event) continue;
        post(c, event, { kind: 'admin#directory#user', id: u.id, etag: u.etag, primaryEmail: u.primaryEmail });
      }
    },
    async flush() {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };
}
