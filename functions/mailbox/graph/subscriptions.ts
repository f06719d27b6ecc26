/**
 * Graph change-notification subscriptions on `users`: the API calls, and the upkeep that
 * keeps exactly one subscription pointing at our receiver.
 *
 * Wire facts: a subscription on users lives at most 41,760 minutes (just under 29 days);
 * `clientState` is 1..128 characters and echoed in every notification; creating one makes
 * Graph run a validation handshake against the notification URL (and the lifecycle URL)
 * first; PATCH renews, 404 means Graph forgot it (expired or removed); a lifecycle URL cannot
 * be added to an existing subscription. `changeType: updated,deleted`: creation and soft
 * delete of a user fire `updated`, the permanent delete fires `deleted`.
 */
import { log } from '../../core/log';
import { MailboxError } from '../directory';
import type { PushChannelStatus } from '../provider';
import type { CallResult, GraphClient } from './client';

/** Longest lifetime Graph grants a subscription on users (just under 29 days). */
export const MAX_USER_SUBSCRIPTION_MINUTES = 41_760;
export const MAX_CLIENT_STATE_LENGTH = 128;

export interface GraphSubscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl?: string | null;
  clientState?: string | null;
  expirationDateTime: string;
}

export interface CreateSubscriptionInput {
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState: string;
  expirationDateTime: string | Date;
}

/** The subscription endpoints over one client (token shared with the directory). */
export class GraphSubscriptions {
  constructor(private readonly client: GraphClient) {}

  async create(input: CreateSubscriptionInput): Promise<GraphSubscription> {
    validateClientState(input.clientState);
    const body: Record<string, unknown> = {
      changeType: 'updated,deleted',
      notificationUrl: input.notificationUrl,
      resource: 'users',
      expirationDateTime: this.checkExpiration(input.expirationDateTime),
      clientState: input.clientState,
      latestSupportedTlsVersion: 'v1_2',
    };
    if (input.lifecycleNotificationUrl) body.lifecycleNotificationUrl = input.lifecycleNotificationUrl;
    const { json } = await this.client.call('POST', '/v1.0/subscriptions', { route: 'POST /subscriptions', body });
    return json as GraphSubscription;
  }

  /** Extend a subscription; undefined when Graph no longer knows it (404: expired or removed). */
  async renew(id: string, expirationDateTime: string | Date): Promise<GraphSubscription | undefined> {
    const res = await this.client.call('PATCH', `/v1.0/subscriptions/${encodeURIComponent(id)}`, {
      route: 'PATCH /subscriptions/{id}',
      body: { expirationDateTime: this.checkExpiration(expirationDateTime) },
      accept: [404],
    });
    return res.status === 404 ? undefined : (res.json as GraphSubscription);
  }

  async list(): Promise<GraphSubscription[]> {
    const out: GraphSubscription[] = [];
    let url: string | undefined = '/v1.0/subscriptions';
    while (url) {
      const res: CallResult = await this.client.call('GET', url, { route: 'GET /subscriptions' });
      out.push(...((res.json?.value ?? []) as GraphSubscription[]));
      url = res.json?.['@odata.nextLink'];
    }
    return out;
  }

  async delete(id: string): Promise<void> {
    await this.client.call('DELETE', `/v1.0/subscriptions/${encodeURIComponent(id)}`, { route: 'DELETE /subscriptions/{id}', accept: [404] });
  }

  private checkExpiration(value: string | Date): string {
    const at = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(at.getTime())) throw new MailboxError('subscription expiration is not a date', false, 'InvalidInput', undefined, 'invalid');
    if (at.getTime() > this.client.now().getTime() + MAX_USER_SUBSCRIPTION_MINUTES * 60_000) {
      throw new MailboxError(`subscription expiration beyond Graph's ${MAX_USER_SUBSCRIPTION_MINUTES} minutes for users`, false, 'InvalidInput', undefined, 'invalid');
    }
    return at.toISOString();
  }
}

export function validateClientState(clientState: string): void {
  if (!clientState || clientState.length > MAX_CLIENT_STATE_LENGTH) {
    throw new MailboxError(`clientState must be 1..${MAX_CLIENT_STATE_LENGTH} characters`, false, 'InvalidInput', undefined, 'invalid');
  }
}

// ------------------------------------------------------------------ upkeep

export interface EnsureSubscriptionOptions {
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState: string;
  now?: () => Date;
  /** Default: Graph's maximum for users minus one hour of clock-skew margin. */
  lifetimeMinutes?: number;
  /** Renew when fewer minutes than this remain (default 3 days). */
  renewBeforeMinutes?: number;
}

export type EnsureSubscriptionResult = PushChannelStatus;

/** The four calls the upkeep needs (the adapter has them; a test can stub them). */
export interface SubscriptionApi {
  listSubscriptions(): Promise<GraphSubscription[]>;
  createSubscription(input: CreateSubscriptionInput): Promise<GraphSubscription>;
  renewSubscription(id: string, expirationDateTime: string | Date): Promise<GraphSubscription | undefined>;
  deleteSubscription(id: string): Promise<void>;
}

/**
 * Keep exactly one subscription on `users` pointing at our receiver. Run on a schedule (and on
 * lifecycle notifications): create when missing, renew when it expires within
 * `renewBeforeMinutes`, recreate when renewal says it no longer exists (404) or when it cannot
 * be fixed in place (no lifecycle URL). Extra subscriptions to the same URL are deleted so
 * every change does not arrive twice.
 */
export async function ensureGraphSubscriptions(graph: SubscriptionApi, opts: EnsureSubscriptionOptions): Promise<EnsureSubscriptionResult> {
  const now = opts.now ?? (() => new Date());
  const lifetime = Math.min(opts.lifetimeMinutes ?? MAX_USER_SUBSCRIPTION_MINUTES - 60, MAX_USER_SUBSCRIPTION_MINUTES);
  const renewBefore = opts.renewBeforeMinutes ?? 3 * 24 * 60;
  const lifecycleUrl = opts.lifecycleNotificationUrl ?? opts.notificationUrl;
  const expiry = () => new Date(now().getTime() + lifetime * 60_000);

  const mine = (await graph.listSubscriptions())
    .filter((s) => /^\/?users$/i.test(s.resource) && s.notificationUrl === opts.notificationUrl)
    .sort((a, b) => Date.parse(b.expirationDateTime) - Date.parse(a.expirationDateTime));
  const removed: string[] = [];
  // Keep the longest-lived subscription that has our lifecycle URL; the rest go.
  const keep: GraphSubscription | undefined = mine.find((s) => (s.lifecycleNotificationUrl ?? undefined) === lifecycleUrl);

  let result: EnsureSubscriptionResult;
  if (!keep) {
    result = await create();
  } else {
    const remainingMin = (Date.parse(keep.expirationDateTime) - now().getTime()) / 60_000;
    if (remainingMin > renewBefore) {
      result = { subscriptionId: keep.id, created: false, renewed: false, ok: true, expiresAt: keep.expirationDateTime, removed };
    } else {
      const renewed = await graph.renewSubscription(keep.id, expiry());
      result = renewed
        ? { subscriptionId: keep.id, created: false, renewed: true, ok: true, expiresAt: renewed.expirationDateTime, removed }
        : await create();
    }
  }
  for (const s of mine) {
    if (s.id === result.subscriptionId || s.id === keep?.id) continue;
    await graph.deleteSubscription(s.id);
    removed.push(s.id);
  }
  log.info('graph subscription ensured', {
    subscriptionId: result.subscriptionId,
    created: result.created,
    renewed: result.renewed,
    expiresAt: result.expiresAt,
    removed: removed.length,
  });
  return result;

  async function create(): Promise<EnsureSubscriptionResult> {
    const sub = await graph.createSubscription({
      notificationUrl: opts.notificationUrl,
      lifecycleNotificationUrl: lifecycleUrl,
      clientState: opts.clientState,
      expirationDateTime: expiry(),
    });
    return { subscriptionId: sub.id, created: true, renewed: false, ok: true, expiresAt: sub.expirationDateTime, removed };
  }
}
