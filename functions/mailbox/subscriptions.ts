/**
 * Keeps exactly one Graph change-notification subscription on `users` pointing at our
 * receiver. Run on a schedule (and on lifecycle notifications): create when missing, renew
 * when it expires within `renewBeforeMinutes`, recreate when renewal says it no longer
 * exists (404) or when it cannot be fixed in place (a lifecycleNotificationUrl cannot be
 * added to an existing subscription). Extra subscriptions to the same URL are deleted so
 * every change does not arrive twice.
 */
import type { GraphDirectory, GraphSubscription } from './graph';
import { MAX_USER_SUBSCRIPTION_MINUTES } from './graph';
import { log } from '../core/log';

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

export interface EnsureSubscriptionResult {
  subscriptionId: string;
  created: boolean;
  renewed: boolean;
  /** True when a valid subscription is in place at the end (always, unless an error is thrown). */
  ok: boolean;
  expiresAt: string;
  /** Duplicates or unfixable subscriptions deleted. */
  removed: string[];
}

type SubscriptionApi = Pick<GraphDirectory, 'createSubscription' | 'renewSubscription' | 'listSubscriptions' | 'deleteSubscription'>;

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
