/**
 * The change feed's upkeep as the scheduled function and the worker run it (the provider's
 * `feed`, built by `graph.create`): where Graph cannot push (the china profile) the delta read
 * IS the feed — cursor kept in the state table, changes queued as `mailbox:graph:<id>`;
 * behind push it catches up on what a lost notification would have said.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { stateFeedCursor } from '../../functions/mailbox/feed-cursor';
import { graph } from '../../functions/mailbox/graph/index';
import type { SyncMessage } from '../../functions/queue/messages';
import { FakeState } from '../support/sync-fakes';

const SECRET = { tenantId: 't-feed', clientId: 'app', clientSecret: 'sec', clientState: 'cs-feed', webhookSecret: 'w' };
let sim: GraphSim;
let server: { baseUrl: string; close(): Promise<void> };
let queued: SyncMessage[];
let state: FakeState;

beforeEach(async () => {
  queued = [];
  state = new FakeState();
});
afterEach(async () => server?.close());

async function feedOf(cloud: 'global' | 'china', extra: Record<string, unknown> = {}) {
  sim = createGraphSim({ tenantId: SECRET.tenantId, clientId: 'app', clientSecret: 'sec', cloud, pageSize: 2 });
  sim.setNotify(async (url) => ({ status: 200, body: new URL(url).searchParams.get('validationToken') ?? '' }));
  server = await sim.start();
  const config = parseRuntimeConfig({
    provider: 'graph',
    mailDomain: 'example.com',
    graph: { cloud, apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/${SECRET.tenantId}/oauth2/v2.0/token`, ...extra },
  });
  return graph.create(config, SECRET, {
    sleep: async () => undefined,
    feed: { cursor: stateFeedCursor(state, 'graph'), enqueue: async (m) => void queued.push(...m) },
  });
}

describe('Graph change feed', () => {
  it('china: no subscription; the first run takes a cursor from now, later runs queue what changed, once per account', async () => {
    const { feed, directory } = await feedOf('china');
    const before = await directory.create({ employeeId: 'old', email: 'old@example.com', displayName: '老' });
    expect(feed.kind).toBe('delta');
    expect(await feed.upkeep()).toEqual({ kind: 'delta', caughtUp: { changed: 0, full: true } });
    expect(sim.subscriptions.size).toBe(0);
    expect(sim.calls['POST /v1.0/subscriptions']).toBeUndefined();
    expect(queued).toEqual([]); // what existed before the cursor is the reconcile's, not a flood into the queue

    const a = await directory.create({ employeeId: 'zhangsan', email: 'zhangsan@example.com', displayName: '张三' });
    await directory.disable(a.id);
    await directory.update(before.id, { jobTitle: '顾问' });
    const b = await directory.create({ employeeId: 'lisi', email: 'lisi@example.com', displayName: '李四' });
    await directory.delete(b.id);
    expect(await feed.upkeep()).toEqual({ kind: 'delta', caughtUp: { changed: 3, full: false } });
    expect(queued.map((m) => [m.subject, m.hint, m.source, m.operator])).toEqual(
      [a.id, before.id, b.id].map((id) => [`mailbox:graph:${id.toLowerCase()}`, 'graph.delta', 'mailbox', 'graph-delta']),
    );
    expect(new Set(queued.map((m) => m.eventId)).size).toBe(3);

    queued.length = 0;
    expect(await feed.upkeep()).toMatchObject({ caughtUp: { changed: 0, full: false } });
    expect(queued).toEqual([]);
    expect((await state.get('mailbox:graph:feed-cursor'))?.fields.cursor).toMatch(/\$deltatoken=/);
  });

  it('an expired cursor starts over from now instead of replaying the tenant', async () => {
    const { feed, directory } = await feedOf('china');
    await feed.upkeep();
    await directory.create({ employeeId: 'zhangsan', email: 'zhangsan@example.com', displayName: '张三' });
    sim.expireDeltaTokens();
    expect(await feed.upkeep()).toEqual({ kind: 'delta', caughtUp: { changed: 0, full: true } });
    expect(queued).toEqual([]);
    await directory.create({ employeeId: 'lisi', email: 'lisi@example.com', displayName: '李四' });
    expect(await feed.upkeep()).toMatchObject({ caughtUp: { changed: 1, full: false } });
  });

  it('global: the upkeep keeps the subscription and catches up behind it; a missed lifecycle notice catches up at once', async () => {
    const { feed, directory } = await feedOf('global', { notificationUrl: 'https://sync.example.com/mailbox/events/graph' });
    const first = await feed.upkeep();
    expect(first).toMatchObject({ kind: 'push', subscription: { created: true }, caughtUp: { full: true } });
    expect(sim.subscriptions.size).toBe(1);
    const a = await directory.create({ employeeId: 'zhangsan', email: 'zhangsan@example.com', displayName: '张三' });
    await feed.onLifecycle({ v: 1, subject: 'mailbox:graph:subscription', source: 'mailbox', eventId: 'e', hint: 'graph.lifecycle.missed', operator: 'graph-lifecycle', receivedAt: new Date().toISOString() });
    expect(queued.map((m) => m.subject)).toEqual([`mailbox:graph:${a.id.toLowerCase()}`]);
    expect(sim.subscriptions.size).toBe(1); // and the subscription was ensured, not duplicated
  });

  it('without a cursor store the upkeep says the catch-up is not wired', async () => {
    sim = createGraphSim({ tenantId: SECRET.tenantId, clientId: 'app', clientSecret: 'sec', cloud: 'china' });
    server = await sim.start();
    const config = parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', graph: { cloud: 'china', apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/${SECRET.tenantId}/oauth2/v2.0/token` } });
    expect(await graph.create(config, SECRET).feed.upkeep()).toEqual({ kind: 'delta', skipped: expect.stringContaining('not wired') });
  });
});
