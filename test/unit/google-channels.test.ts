/**
 * The Google change feed on the simulator with a moving clock: users.watch channels are opened
 * one per event, left alone while fresh, REPLACED (new first, then the old stopped) before
 * their 6 hours run out, reopened after a gap; a stop that fails is retried next run. The
 * scheduled catch-up records a digest first, then queues the accounts of the buckets that
 * moved (a changed, a new and a deleted user among them), at most once per interval, in a
 * cursor of bounded size. The health probe reads the remembered channels.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createGoogleSim, type GoogleSim } from '../../bin/local/sim/google';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { channelApi, ensureChannels, type ChannelApi, type ChannelRecord } from '../../functions/mailbox/google/channels';
import { GoogleClient } from '../../functions/mailbox/google/client';
import { google } from '../../functions/mailbox/google/index';
import type { FeedCursorStore } from '../../functions/mailbox/provider';
import type { SyncMessage } from '../../functions/queue/messages';
import { SERVICE_ACCOUNT_KEYS as KEYS } from '../mailbox/subjects/google-sim';

const ADDRESS = 'https://sync.example.com/mailbox/events/google';
const TOKEN = 'channel-token-0123456789';
const HOUR = 3600_000;
let clock: number;
const now = () => new Date(clock);
let sim: GoogleSim;
let baseUrl: string;

beforeEach(async () => {
  clock = Date.parse('2026-12-01T00:00:00Z');
  sim = createGoogleSim({ publicKey: KEYS.publicKey, now });
  sim.setNotify(async () => ({ status: 200, body: '' }));
  const server = await sim.start();
  baseUrl = server.baseUrl;
  return () => server.close();
});

const client = () => new GoogleClient({ clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, adminEmail: sim.serviceAccount.adminEmail, apiBase: baseUrl, tokenUrl: `${baseUrl}/token`, now });
const ensure = (api: ChannelApi, remembered: ChannelRecord[]) => ensureChannels(api, remembered, { address: ADDRESS, token: TOKEN, events: ['update', 'delete'], ttlSeconds: 21_600, now });

describe('users.watch channels', () => {
  it('one per event; fresh ones left alone; replaced before expiry (new first, old stopped); reopened after a gap', async () => {
    const api = channelApi(client(), 'my_customer');
    const first = await ensure(api, []);
    expect(first.status).toMatchObject({ created: true, renewed: false, ok: true, removed: [] });
    expect(first.channels.map((c) => c.event)).toEqual(['update', 'delete']);
    expect(Date.parse(first.status.expiresAt)).toBe(clock + 6 * HOUR);
    expect([...sim.channels.values()].map((c) => [c.event, c.token])).toEqual([
      ['update', TOKEN],
      ['delete', TOKEN],
    ]);
    await sim.flushNotifications();
    expect(sim.deliveries.map((d) => d.state)).toEqual(['sync', 'sync']);

    clock += 4 * HOUR; // 2 h left > 90 min: nothing to do
    const calm = await ensure(api, first.channels);
    expect(calm.channels).toEqual(first.channels);
    expect(calm.status).toMatchObject({ created: false, renewed: false, removed: [] });

    clock += 45 * 60_000; // 75 min left < 90 min: replace
    const renewed = await ensure(api, calm.channels);
    expect(renewed.status).toMatchObject({ renewed: true, ok: true });
    expect(renewed.status.removed.sort()).toEqual(first.channels.map((c) => c.id).sort());
    expect([...sim.channels.keys()].sort()).toEqual(renewed.channels.map((c) => c.id).sort()); // the old ones are stopped at Google

    clock += 12 * HOUR; // the upkeep did not run: all expired
    const reopened = await ensure(api, renewed.channels);
    expect(reopened.status).toMatchObject({ created: true, ok: true, removed: [] });
    expect(sim.calls['POST /users/watch']).toBe(6);
  });

  it('asks for at most Google’s 6 hours; a stop that fails is kept and retried next run', async () => {
    const real = channelApi(client(), 'my_customer');
    const long = await real.watch({ id: 'wms-long', event: 'add', address: ADDRESS, token: TOKEN, ttlSeconds: 86_400 });
    expect(Date.parse(long.expiresAt)).toBe(clock + 6 * HOUR);
    let failStop = true;
    const flaky: ChannelApi = { watch: real.watch, stop: async (c) => (failStop ? Promise.reject(new Error('backend')) : real.stop(c)) };
    const first = await ensure(flaky, []);
    clock += 5 * HOUR;
    const replaced = await ensure(flaky, first.channels);
    expect(replaced.status.removed).toEqual([]);
    expect(replaced.channels).toHaveLength(4); // two live, two to stop again
    failStop = false;
    const clean = await ensure(flaky, replaced.channels);
    expect(clean.channels).toHaveLength(2);
    expect(clean.status.removed).toHaveLength(2);
  });
});

describe('the feed: channels and the catch-up digest', () => {
  function memoryCursor(): FeedCursorStore & { value?: string } {
    const c: FeedCursorStore & { value?: string } = {
      get: async () => c.value,
      put: async (v) => void (c.value = v),
    };
    return c;
  }

  it('first run: channels + a digest, nothing queued; later: the moved buckets’ accounts, once per interval; health reads the channels', async () => {
    const cursor = memoryCursor();
    const sent: SyncMessage[] = [];
    const config = parseRuntimeConfig({ provider: 'google', mailDomain: 'example.com', google: { apiBase: baseUrl, tokenUrl: `${baseUrl}/token`, notificationUrl: ADDRESS } });
    const secret = { clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, adminEmail: sim.serviceAccount.adminEmail, clientState: TOKEN, webhookSecret: 'w' };
    const conn = google.create(config, secret, { now, feed: { cursor, enqueue: async (m) => void sent.push(...m) } });
    const users = Array.from({ length: 40 }, (_, i) => sim.seedUser({ primaryEmail: `p${i}@example.com` }));

    const first = await conn.feed.upkeep();
    expect(first).toMatchObject({ kind: 'push', subscription: { created: true, ok: true }, caughtUp: { changed: 0, full: true } });
    expect(sim.channels.size).toBe(4); // add, update, delete, undelete
    expect(sent).toEqual([]);

    // What a lost notification would have said: a suspension, a new account, a deletion.
    sim.adminUpdate(users[3]!.id, (u) => void (u.suspended = true));
    const fresh = sim.seedUser({ primaryEmail: 'new@example.com' });
    await client().call('DELETE', `/admin/directory/v1/users/${users[7]!.id}`, { route: 'DELETE /users/{id}' });

    clock += 30 * 60_000;
    expect((await conn.feed.upkeep()).skipped).toMatch(/catch-up ran 30 min ago \(every 60 min\)/);
    clock += 31 * 60_000;
    const second = await conn.feed.upkeep();
    expect(second.caughtUp).toMatchObject({ full: false });
    const queued = sent.map((m) => m.subject);
    for (const id of [users[3]!.id, fresh.id, users[7]!.id]) expect(queued).toContain(`mailbox:google:${id}`);
    expect(queued.length).toBeLessThan(12); // buckets, not the whole directory
    expect(new Set(queued).size).toBe(queued.length);
    expect(sent[0]).toMatchObject({ source: 'mailbox', hint: 'google.catchup', operator: 'google-catchup' });
    expect(cursor.value!.length).toBeLessThan(30_000);

    // Nothing changed since: the next catch-up queues nothing.
    sent.length = 0;
    clock += 61 * 60_000;
    expect((await conn.feed.upkeep()).caughtUp).toEqual({ changed: 0, full: false });

    const probe = conn.health().find((p) => p.name === 'google-channel')!;
    expect(await probe.run(now())).toMatchObject({ ok: true });
    const soonest = Math.min(...[...sim.channels.values()].map((c) => c.expiration));
    expect(await probe.run(new Date(soonest - 10 * 60_000))).toMatchObject({ ok: false });
  });

  it('push switched off: the remembered channels are stopped, the catch-up is the feed', async () => {
    const cursor = memoryCursor();
    const secret = { clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, adminEmail: sim.serviceAccount.adminEmail, clientState: TOKEN, webhookSecret: 'w' };
    const make = (push: boolean) =>
      google.create(parseRuntimeConfig({ provider: 'google', mailDomain: 'example.com', google: { apiBase: baseUrl, tokenUrl: `${baseUrl}/token`, notificationUrl: ADDRESS, changeNotifications: push } }), secret, { now, feed: { cursor, enqueue: async () => undefined } });
    await make(true).feed.upkeep();
    expect(sim.channels.size).toBe(4);
    const off = make(false);
    expect(off.capabilities.changes).toBe('delta');
    expect(off.health().map((p) => p.name)).toEqual(['google-token']);
    const r = await off.feed.upkeep();
    expect(r.subscription).toBeUndefined();
    expect(sim.channels.size).toBe(0);
  });
});
