/**
 * Google's health checks, run by the scheduled health function and `wecom-sync status`
 * (sync/health.ts runs them with a timeout and redacts what they throw):
 * - `google-token` (mailbox/token-probe.ts): a token request with the configured key and delegation, bypassing the
 *   adapter's cache: does the key still exist, is the scope still delegated, is the admin
 *   still an admin — right now;
 * - `google-channel` (push feed only): does every watched event have a live channel that
 *   lives longer than the threshold? Channels last at most 6 hours, so the threshold is
 *   min(minSubscriptionHours, 30 minutes): less means the upkeep stopped replacing them and
 *   offboarding in Google would go unnoticed until the catch-up. Google cannot list channels:
 *   the probe reads the ones the upkeep remembers (the feed state), so it needs the state
 *   table; without it the probe is left out.
 */
import type { MailboxHealthProbe } from '../provider';
import type { ChannelRecord } from './channels';

export interface ChannelProbeOptions {
  channels: () => Promise<ChannelRecord[]>;
  events: readonly string[];
  address?: string;
  minSubscriptionHours?: number;
}

export function googleChannelProbe(o: ChannelProbeOptions): MailboxHealthProbe {
  const minMinutes = Math.min((o.minSubscriptionHours ?? 24) * 60, 30);
  return {
    name: 'google-channel',
    run: async (now) => {
      const live = (await o.channels()).filter((c) => Date.parse(c.expiresAt) > now.getTime() && (!o.address || c.address === o.address));
      const best = o.events.map((e) => live.filter((c) => c.event === e).sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt))[0]);
      const missing = o.events.filter((_, i) => !best[i]);
      const present = best.filter((c): c is ChannelRecord => !!c).sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt));
      const weakest = present[0];
      if (!weakest) return { ok: false, detail: 'no users.watch channel: mailbox changes are not being pushed', subscription: null };
      const minutesLeft = (Date.parse(weakest.expiresAt) - now.getTime()) / 60_000;
      const subscription = { id: weakest.id, expiresAt: weakest.expiresAt, hoursLeft: Math.round((minutesLeft / 60) * 10) / 10 };
      if (missing.length) return { ok: false, detail: `no channel for ${missing.join(', ')}`, subscription };
      return minutesLeft > minMinutes
        ? { ok: true, detail: `${present.length} channels; the first expires in ${Math.round(minutesLeft)} min`, subscription }
        : { ok: false, detail: `a channel expires in ${Math.max(0, Math.round(minutesLeft))} min (< ${minMinutes}): replacement is not working`, subscription };
    },
  };
}
