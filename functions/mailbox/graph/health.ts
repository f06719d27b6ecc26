/**
 * Graph's health checks, run by the scheduled health function and `wecom-sync status`
 * (sync/health.ts runs them with a timeout and redacts what they throw):
 * - `graph-token` (mailbox/token-probe.ts): a token request with the configured secret,
 *   bypassing the adapter's cache: does the secret still work right now (it expires in Entra)?
 * - `graph-subscription` (push feed only): is our subscription on /users there, and does it
 *   live longer than `minSubscriptionHours` (default 24)? Less means renewal is failing, and
 *   mailbox offboarding would go unnoticed until the next reconcile.
 */
import type { MailboxHealthProbe } from '../provider';
import type { GraphSubscription } from './subscriptions';

export interface SubscriptionProbeOptions {
  listSubscriptions: () => Promise<GraphSubscription[]>;
  /** When set, only subscriptions delivering here count. */
  notificationUrl?: string;
  minSubscriptionHours?: number;
}

export function graphSubscriptionProbe(o: SubscriptionProbeOptions): MailboxHealthProbe {
  const minHours = o.minSubscriptionHours ?? 24;
  return {
    name: 'graph-subscription',
    run: async (now) => {
      const ours = (await o.listSubscriptions())
        .filter((s) => /^\/?users$/i.test(s.resource) && (!o.notificationUrl || s.notificationUrl === o.notificationUrl))
        .sort((a, b) => Date.parse(b.expirationDateTime) - Date.parse(a.expirationDateTime));
      const best = ours[0];
      if (!best) return { ok: false, detail: 'no subscription on /users: mailbox changes are not being notified', subscription: null };
      const hoursLeft = (Date.parse(best.expirationDateTime) - now.getTime()) / 3_600_000;
      const subscription = { id: best.id, expiresAt: best.expirationDateTime, hoursLeft: Math.round(hoursLeft * 10) / 10 };
      return hoursLeft > minHours
        ? { ok: true, detail: `expires in ${Math.round(hoursLeft)} h`, subscription }
        : { ok: false, detail: `expires in ${Math.max(0, Math.round(hoursLeft))} h (< ${minHours} h): renewal is not working`, subscription };
    },
  };
}
