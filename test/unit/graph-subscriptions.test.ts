/**
 * ensureGraphSubscriptions decisions against the loopback Graph simulator (handshake answered
 * in-process through setNotify), plus the edge cases only a stubbed API can force
 * (renewal answered 404 although the listing showed the subscription).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { ensureGraphSubscriptions, MAX_USER_SUBSCRIPTION_MINUTES, type GraphSubscription } from '../../functions/mailbox/graph/subscriptions';
import { MailboxError } from '../../functions/mailbox/directory';

const URL_ = 'https://sync.example.com/mailbox/events/graph';
const DAY = 24 * 3600_000;
let clock: number;
const now = () => new Date(clock);
let sim: GraphSim;
let graph: GraphDirectory;
let server: { baseUrl: string; close(): Promise<void> };

beforeEach(async () => {
  clock = Date.parse('2026-11-24T00:00:00Z');
  sim = createGraphSim({ tenantId: 't', clientId: 'c', clientSecret: 's', now });
  // The "receiver": echoes the validation token like ours does.
  sim.setNotify(async (url) => ({ status: 200, body: new URL(url).searchParams.get('validationToken') ?? '' }));
  server = await sim.start();
  graph = new GraphDirectory({ apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/t/oauth2/v2.0/token`, tenantId: 't', clientId: 'c', clientSecret: 's', domain: 'example.com', now });
  return () => server.close();
});

const ensure = (extra = {}) => ensureGraphSubscriptions(graph, { notificationUrl: URL_, clientState: 'cs', now, ...extra });

describe('ensureGraphSubscriptions', () => {
  it('creates when missing, with the longest lifetime Graph allows minus a margin', async () => {
    const r = await ensure();
    expect(r).toMatchObject({ created: true, renewed: false, ok: true });
    expect(Date.parse(r.expiresAt)).toBe(clock + (MAX_USER_SUBSCRIPTION_MINUTES - 60) * 60_000);
    expect(sim.deliveries.filter((d) => d.kind === 'validation')).toHaveLength(1); // same URL for both
  });

  it('leaves a fresh subscription alone and renews one close to expiry', async () => {
    const first = await ensure();
    clock += 20 * DAY;
    expect(await ensure()).toMatchObject({ created: false, renewed: false, subscriptionId: first.subscriptionId });
    expect(sim.calls['PATCH /v1.0/subscriptions/{id}']).toBeUndefined();
    clock += 6 * DAY; // 2.97 days left
    const r = await ensure();
    expect(r).toMatchObject({ created: false, renewed: true, subscriptionId: first.subscriptionId });
    expect(sim.calls['PATCH /v1.0/subscriptions/{id}']).toBe(1);
  });

  it('ignores other apps\' subscriptions, removes our duplicates and one without our lifecycle URL', async () => {
    await graph.createSubscription({ notificationUrl: 'https://other.example.com/hook', clientState: 'x', expirationDateTime: new Date(clock + DAY) });
    await graph.createSubscription({ notificationUrl: URL_, clientState: 'cs', expirationDateTime: new Date(clock + DAY) }); // no lifecycle URL
    const kept = await graph.createSubscription({ notificationUrl: URL_, lifecycleNotificationUrl: URL_, clientState: 'cs', expirationDateTime: new Date(clock + 10 * DAY) });
    await graph.createSubscription({ notificationUrl: URL_, lifecycleNotificationUrl: URL_, clientState: 'cs', expirationDateTime: new Date(clock + 5 * DAY) });
    const r = await ensure();
    expect(r).toMatchObject({ created: false, renewed: false, subscriptionId: kept.id });
    expect(r.removed).toHaveLength(2);
    expect([...sim.subscriptions.values()].map((s) => s.notificationUrl).sort()).toEqual(['https://other.example.com/hook', URL_]);
  });

  it('recreates when renewal answers 404', async () => {
    const sub: GraphSubscription = { id: 'gone', resource: 'users', changeType: 'updated,deleted', notificationUrl: URL_, lifecycleNotificationUrl: URL_, expirationDateTime: new Date(clock + 3600_000).toISOString() };
    const calls: string[] = [];
    const api = {
      listSubscriptions: async () => [sub],
      renewSubscription: async (id: string) => (calls.push(`renew ${id}`), undefined),
      createSubscription: async () => (calls.push('create'), { ...sub, id: 'new', expirationDateTime: new Date(clock + DAY).toISOString() }),
      deleteSubscription: async (id: string) => void calls.push(`delete ${id}`),
    };
    const r = await ensureGraphSubscriptions(api, { notificationUrl: URL_, clientState: 'cs', now });
    expect(r).toMatchObject({ created: true, subscriptionId: 'new' });
    expect(calls).toEqual(['renew gone', 'create']); // nothing left to delete: Graph already dropped it
  });

  it('validates clientState length and lifetime before calling Graph', async () => {
    await expect(ensure({ clientState: 'x'.repeat(129) })).rejects.toBeInstanceOf(MailboxError);
    await expect(graph.createSubscription({ notificationUrl: URL_, clientState: 'cs', expirationDateTime: new Date(clock + (MAX_USER_SUBSCRIPTION_MINUTES + 1) * 60_000) })).rejects.toMatchObject({ code: 'InvalidInput' });
    expect(sim.calls['POST /v1.0/subscriptions']).toBeUndefined();
  });

  it('a handshake that is not echoed makes creation fail', async () => {
    sim.setNotify(async () => ({ status: 200, body: 'something else' }));
    await expect(ensure()).rejects.toMatchObject({ code: 'ValidationError' });
    expect(sim.subscriptions.size).toBe(0);
  });
});
