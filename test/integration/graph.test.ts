/**
 * End to end on loopback: Graph simulator ⇄ GraphDirectory, subscription maintenance with
 * the real validation handshake, and change/lifecycle notifications delivered over HTTP to
 * the mailbox-events Lambda handler (API Gateway v2 event path) backed by DynamoInbox on
 * dynalite.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import { startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { readBody, toApiGatewayEvent, writeResult } from '../../bin/local/apigw';
import { DynamoInbox } from '../../functions/store/inbox';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { ensureGraphSubscriptions, MAX_USER_SUBSCRIPTION_MINUTES } from '../../functions/mailbox/graph/subscriptions';
import { createMailboxEventsHandler } from '../../functions/handlers/mailbox-events';
import { createSubscriptionsHandler } from '../../functions/handlers/subscriptions';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { graph as graphProvider } from '../../functions/mailbox/graph/index';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';

const TENANT = 't-int';
const CLIENT_STATE = 'state-' + 'k'.repeat(100);
let clock = Date.parse('2026-11-24T10:00:00Z');
const now = () => new Date(clock);

let dyn: LocalDynamo;
let sim: GraphSim;
let graphSrv: { baseUrl: string; close(): Promise<void> };
let receiverSrv: Server;
let receiverUrl: string;
let graph: GraphDirectory;
const sent: SyncMessage[] = [];
const queue: WorkQueue = { enqueue: async (m) => void sent.push(...m) };

beforeAll(async () => {
  dyn = await startDynalite();
  const handler = createMailboxEventsHandler({
    inbox: new DynamoInbox(dyn.client, dyn.tables.inbox),
    queue,
    provider: 'graph',
    clientState: CLIENT_STATE,
    webhookSecret: 'whsec',
  });
  receiverSrv = createServer(async (req, res) => {
    const body = await readBody(req);
    if (body === 'too-large') return void res.writeHead(413).end();
    const result = await handler(toApiGatewayEvent(req, body, '$default'), {} as Context);
    writeResult(res, result);
  });
  await new Promise<void>((r) => receiverSrv.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiverSrv.address() as AddressInfo).port}/mailbox/events/graph`;

  sim = createGraphSim({ tenantId: TENANT, clientId: 'app', clientSecret: 'sec', now });
  graphSrv = await sim.start();
  graph = new GraphDirectory({
    apiBase: graphSrv.baseUrl,
    tokenUrl: `${graphSrv.baseUrl}/${TENANT}/oauth2/v2.0/token`,
    tenantId: TENANT,
    clientId: 'app',
    clientSecret: 'sec',
    domain: 'example.com',
    now,
    sleep: async () => undefined,
  });
});

afterAll(async () => {
  await graphSrv?.close();
  await new Promise<void>((r) => receiverSrv.close(() => r()));
  await dyn?.close();
});

describe('Graph subscriptions and notifications over loopback', () => {
  let subscriptionId = '';

  it('creates the subscription; the handshake reached the receiver and was echoed verbatim', async () => {
    const res = await ensureGraphSubscriptions(graph, { notificationUrl: receiverUrl, clientState: CLIENT_STATE, now });
    expect(res).toMatchObject({ created: true, renewed: false, ok: true });
    subscriptionId = res.subscriptionId;
    const sub = sim.subscriptions.get(subscriptionId)!;
    expect(sub).toMatchObject({ resource: 'users', changeType: 'updated,deleted', notificationUrl: receiverUrl, lifecycleNotificationUrl: receiverUrl, clientState: CLIENT_STATE });
    expect(Date.parse(sub.expirationDateTime) - clock).toBeLessThanOrEqual(MAX_USER_SUBSCRIPTION_MINUTES * 60_000);
    const validations = sim.deliveries.filter((d) => d.kind === 'validation');
    expect(validations.length).toBeGreaterThanOrEqual(1);
    expect(validations.every((v) => v.status === 200 && v.body.startsWith('Validation: Testing client application reachability'))).toBe(true);
  });

  it('does nothing while fresh, renews near expiry, recreates after it lapsed', async () => {
    const fresh = await ensureGraphSubscriptions(graph, { notificationUrl: receiverUrl, clientState: CLIENT_STATE, now });
    expect(fresh).toMatchObject({ created: false, renewed: false, subscriptionId });
    clock += 27 * 24 * 3600_000; // < 3 days left
    const renewed = await ensureGraphSubscriptions(graph, { notificationUrl: receiverUrl, clientState: CLIENT_STATE, now });
    expect(renewed).toMatchObject({ created: false, renewed: true, subscriptionId });
    expect(Date.parse(sim.subscriptions.get(subscriptionId)!.expirationDateTime)).toBe(clock + (MAX_USER_SUBSCRIPTION_MINUTES - 60) * 60_000);
    clock += 30 * 24 * 3600_000; // lapsed: Graph forgets it
    // The scheduled function, wired as in AWS: the provider built from the runtime config and the secret.
    const config = parseRuntimeConfig({
      provider: 'graph',
      mailDomain: 'example.com',
      graph: { apiBase: graphSrv.baseUrl, tokenUrl: `${graphSrv.baseUrl}/${TENANT}/oauth2/v2.0/token`, notificationUrl: receiverUrl },
    });
    const { feed } = graphProvider.create(config, { tenantId: TENANT, clientId: 'app', clientSecret: 'sec', clientState: CLIENT_STATE, webhookSecret: 'whsec' }, { now, sleep: async () => undefined });
    const handler = createSubscriptionsHandler({ feed });
    const recreated = await handler({}, {} as Context);
    expect(recreated).toMatchObject({ kind: 'push', subscription: { created: true }, skipped: expect.stringContaining('not wired') });
    expect(recreated.subscription!.subscriptionId).not.toBe(subscriptionId);
    subscriptionId = recreated.subscription!.subscriptionId;
    expect(sim.subscriptions.size).toBe(1);
  });

  it('a subscription whose endpoint fails the handshake is refused', async () => {
    const bad = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(bad.address() as AddressInfo).port}/hook`;
      await expect(graph.createSubscription({ notificationUrl: url, clientState: 'x', expirationDateTime: new Date(clock + 3600_000) })).rejects.toMatchObject({
        code: 'ValidationError',
        retryable: false,
      });
    } finally {
      await new Promise<void>((r) => bad.close(() => r()));
    }
  });

  it('a user change reaches the inbox (DynamoDB) and the queue once; a Graph redelivery is a duplicate', async () => {
    sent.length = 0;
    const acc = await graph.create({ employeeId: 'wangwu', email: 'wangwu@example.com', displayName: 'Wang Wu' });
    await sim.flushNotifications();
    expect(sent.map((m) => [m.subject, m.hint])).toEqual([[`mailbox:graph:${acc.id}`, 'graph.updated']]);
    const stored = await dyn.client.send(new GetItemCommand({ TableName: dyn.tables.inbox, Key: { pk: { S: sent[0]!.eventId } } }));
    expect(stored.Item?.kind?.S).toBe('graph/updated');
    // Nothing personal in the stored item.
    expect(JSON.stringify(stored.Item)).not.toMatch(/wangwu|Wang Wu/);

    const delivered = sim.deliveries.filter((d) => d.kind === 'notification').at(-1)!;
    expect(delivered.status).toBe(202);
    const again = await fetch(receiverUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: delivered.body });
    expect(again.status).toBe(202);
    expect(sent).toHaveLength(1);

    await graph.delete(acc.id); // soft delete fires 'updated'
    sim.hardDelete(acc.id); // hard delete fires 'deleted'
    await sim.flushNotifications();
    expect(sent.slice(1).map((m) => m.hint)).toEqual(['graph.updated', 'graph.deleted']);
  });

  it('a restore from deletedItems (a rehire) reaches the queue as an update of the same account', async () => {
    const acc = await graph.create({ employeeId: 'zhaoliu', email: 'zhaoliu@example.com', displayName: 'Zhao Liu' });
    await graph.delete(acc.id);
    await sim.flushNotifications();
    sent.length = 0;
    expect(await graph.findDeleted('zhaoliu')).toMatchObject({ id: acc.id, deleted: true });
    expect(await graph.restore(acc.id)).toMatchObject({ id: acc.id, employeeId: 'zhaoliu', enabled: true });
    await sim.flushNotifications();
    expect(sent.map((m) => [m.subject, m.hint])).toEqual([[`mailbox:graph:${acc.id}`, 'graph.updated']]);
  });

  it('lifecycle notifications reach the receiver and are queued on the subscription subject', async () => {
    sent.length = 0;
    const r = await sim.emitLifecycle(subscriptionId, 'reauthorizationRequired');
    expect(r.status).toBe(202);
    expect(sent.map((m) => [m.subject, m.hint])).toEqual([['mailbox:graph:subscription', 'graph.lifecycle.reauthorizationRequired']]);
  });

  it('a notification with a forged clientState is refused over HTTP and leaves no trace', async () => {
    sent.length = 0;
    const body = JSON.stringify({ value: [{ subscriptionId, clientState: 'forged', changeType: 'updated', resource: 'Users/abc', resourceData: { id: 'abc' } }] });
    const res = await fetch(receiverUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(403);
    expect(sent).toHaveLength(0);
  });
});
