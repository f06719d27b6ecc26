/**
 * users.watch push channels: the API calls, and the upkeep that keeps one live channel per
 * watched event pointing at our receiver.
 *
 * Wire facts (Directory API reference users.watch / channels.stop, the "Push notifications"
 * guide; field report in docs/providers/google.md):
 * - `POST /admin/directory/v1/users/watch?customer=…&event=…` with a Channel
 *   `{id, type: 'web_hook', address, token, params: {ttl}}` answers the channel with its
 *   `resourceId` and `expiration` (ms since the epoch, as a string). `event` takes ONE value
 *   (add, update, delete, undelete, makeAdmin): one channel per event.
 * - The channel id is ours (≤ 64 characters, unique per project); the token (≤ 256) comes
 *   back as X-Goog-Channel-Token on every message.
 * - A channel cannot be renewed: it expires. Directory API channels are capped at 6 hours
 *   (21,600 s; also reported in the field: firezone/firezone#15041), so the upkeep opens a
 *   replacement before the old one expires and stops the old one after — overlap, never a gap.
 * - `POST /admin/directory_v1/channels/stop` with `{id, resourceId}` stops one; 404 = gone.
 * - Google has no "list my channels": the channels are remembered in the feed's state
 *   (feed.ts), next to the catch-up digest.
 */
import { randomUUID } from 'node:crypto';
import { log } from '../../core/log';
import { MailboxError } from '../directory';
import type { PushChannelStatus } from '../provider';
import type { GoogleClient } from './client';
import { MAX_CHANNEL_TOKEN_LENGTH } from './config';

/** The Directory API's longest channel (6 hours). */
export const MAX_CHANNEL_TTL_SECONDS = 21_600;

export interface ChannelRecord {
  id: string;
  resourceId: string;
  event: string;
  address: string;
  /** ISO time. */
  expiresAt: string;
}

export interface WatchInput {
  id: string;
  event: string;
  address: string;
  token: string;
  ttlSeconds: number;
}

/** The two calls the upkeep needs (a test can stub them). */
export interface ChannelApi {
  watch(input: WatchInput): Promise<ChannelRecord>;
  stop(channel: Pick<ChannelRecord, 'id' | 'resourceId'>): Promise<void>;
}

export function channelApi(client: GoogleClient, customer: string): ChannelApi {
  return {
    async watch(input) {
      if (!input.token || input.token.length > MAX_CHANNEL_TOKEN_LENGTH) {
        throw new MailboxError(`channel token must be 1..${MAX_CHANNEL_TOKEN_LENGTH} characters`, false, 'InvalidInput', undefined, 'invalid');
      }
      const ttl = Math.min(Math.max(1, Math.floor(input.ttlSeconds)), MAX_CHANNEL_TTL_SECONDS);
      const { json } = await client.call('POST', '/admin/directory/v1/users/watch', {
        route: 'POST /users/watch',
        query: { customer, event: input.event },
        body: { id: input.id, type: 'web_hook', address: input.address, token: input.token, params: { ttl: String(ttl) } },
      });
      const expMs = Number(json?.expiration);
      return {
        id: String(json?.id ?? input.id),
        resourceId: String(json?.resourceId ?? ''),
        event: input.event,
        address: input.address,
        expiresAt: new Date(Number.isFinite(expMs) && expMs > 0 ? expMs : client.now().getTime() + ttl * 1000).toISOString(),
      };
    },
    async stop(channel) {
      await client.call('POST', '/admin/directory_v1/channels/stop', { route: 'POST /channels/stop', body: { id: channel.id, resourceId: channel.resourceId }, accept: [404] });
    },
  };
}

export interface EnsureChannelsOptions {
  address: string;
  token: string;
  events: readonly string[];
  ttlSeconds: number;
  now: () => Date;
  /** Replace a channel when fewer minutes than this remain (default: a quarter of the lifetime, at least 30). */
  renewBeforeMinutes?: number;
}

export interface EnsureChannelsResult {
  /** What to remember: the live channels, and old ones whose stop failed (tried again next time). */
  channels: ChannelRecord[];
  status: PushChannelStatus;
}

/**
 * One live channel per event to `address`: a missing or soon-expiring one gets a replacement
 * (opened first), then every other channel we remember — the replaced one, duplicates, ones
 * for another address or an event no longer watched — is stopped. A stop that fails (other
 * than 404) is kept and retried next run unless its channel has expired by then.
 */
export async function ensureChannels(api: ChannelApi, remembered: readonly ChannelRecord[], o: EnsureChannelsOptions): Promise<EnsureChannelsResult> {
  const now = o.now().getTime();
  const renewBeforeMs = (o.renewBeforeMinutes ?? Math.max(30, o.ttlSeconds / 60 / 4)) * 60_000;
  const alive = remembered.filter((c) => Date.parse(c.expiresAt) > now);
  const keep: ChannelRecord[] = [];
  let created = false;
  let renewed = false;
  for (const event of o.events) {
    const mine = alive
      .filter((c) => c.event === event && c.address === o.address)
      .sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt));
    const best = mine[0];
    if (best && Date.parse(best.expiresAt) - now > renewBeforeMs) {
      keep.push(best);
      continue;
    }
    keep.push(await api.watch({ id: `wms-${event}-${randomUUID()}`, event, address: o.address, token: o.token, ttlSeconds: o.ttlSeconds }));
    if (best) renewed = true;
    else created = true;
  }
  const removed: string[] = [];
  const retry: ChannelRecord[] = [];
  for (const c of alive) {
    if (keep.includes(c)) continue;
    try {
      await api.stop(c);
      removed.push(c.id);
    } catch (err) {
      log.warn('google channel stop failed; retried next run', { channelId: c.id, err });
      retry.push(c);
    }
  }
  const soonest = [...keep].sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt))[0];
  const status: PushChannelStatus = {
    subscriptionId: keep.map((c) => c.id).join(','),
    created,
    renewed,
    ok: keep.length === o.events.length,
    expiresAt: soonest?.expiresAt ?? new Date(now).toISOString(),
    removed,
  };
  log.info('google channels ensured', { channels: keep.length, created, renewed, removed: removed.length, expiresAt: status.expiresAt });
  return { channels: [...keep, ...retry], status };
}
