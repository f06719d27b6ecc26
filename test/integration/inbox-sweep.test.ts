/**
 * "Nothing accepted is lost", end to end on loopback: the WeCom callback receiver and the
 * mailbox receivers (Graph notifications, signed webhook) on DynamoInbox (real DynamoDB
 * client, dynalite) and SqsWorkQueue (real SQS client, loopback SQS JSON server that dedupes
 * FIFO messages on MessageDeduplicationId as SQS does), and the inbox sweep.
 *
 * A receiver that "dies" after its inbox write is played by a queue whose send never
 * settles (the Lambda is killed at its timeout with the send in flight): the request is
 * abandoned, the sender never retries, and only the sweep can finish the job.
 */
import { randomBytes } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import type { HttpRequest } from '../../functions/core/http';
import { createInboxSweeperHandler, InboxSweepIncompleteError } from '../../functions/handlers/inbox-sweeper';
import { addressKey, createMailboxReceiver, signWebhook } from '../../functions/mailbox/receive';
import { messageDeduplicationId } from '../../functions/queue/dedupe';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';
import { SqsWorkQueue } from '../../functions/queue/sqs';
import { sweepInbox } from '../../functions/queue/sweep';
import { DynamoInbox } from '../../functions/store/inbox';
import type { Inbox, InboxEntry } from '../../functions/store/ports';
import { createCallbackReceiver } from '../../functions/wecom/callback';
import { startLoopbackSqs, type LoopbackSqs } from '../support/aws-json-loopback';
import { buildPost, contactEvent, randomEncodingAESKey, type ClientKeys } from '../support/wecom-callback-client';

const keys: ClientKeys = { token: randomBytes(12).toString('hex'), encodingAESKey: randomEncodingAESKey(), corpId: 'wwsweep000000001' };
const CLIENT_STATE = 'sweep-client-state-' + 'y'.repeat(40);
const WEBHOOK_SECRET = 'sweep-webhook-secret-0123456789';
/** The sweep's clock, 3 minutes ahead: everything recorded so far is older than its 2-minute default. */
const later = () => new Date(Date.now() + 3 * 60_000);

let dyn: LocalDynamo;
let sqs: LoopbackSqs;
let sqsClient: SQSClient;
let inbox: DynamoInbox;
let queue: SqsWorkQueue;
/** A queue whose sends never settle: a receiver given it "dies" mid-request. */
const hanging: WorkQueue = { enqueue: () => new Promise<void>(() => {}) };

beforeAll(async () => {
  dyn = await startDynalite();
  sqs = await startLoopbackSqs();
  sqsClient = new SQSClient({ ...LOCAL_AWS, endpoint: sqs.endpoint });
  inbox = new DynamoInbox(dyn.client, dyn.tables.inbox);
  queue = new SqsWorkQueue(sqsClient, sqs.queueUrl);
});
afterAll(async () => {
  sqsClient?.destroy();
  await sqs?.close();
  await dyn?.close();
});
beforeEach(async () => {
  // Every test starts with nothing pending.
  await sweepInbox({ inbox, queue, olderThanMs: -60_000 });
});

const callback = (req: HttpRequest, q: WorkQueue = queue) => createCallbackReceiver({ keys, inbox, queue: q })(req);
const mailbox = (req: HttpRequest, q: WorkQueue = queue, now?: () => Date) =>
  createMailboxReceiver({ inbox, queue: q, provider: 'graph', clientState: CLIENT_STATE, webhookSecret: WEBHOOK_SECRET, ...(now ? { now } : {}) })(req);

const wecomPost = (r: { query: Record<string, string>; body: string }, q: WorkQueue = queue) =>
  callback({ method: 'POST', path: '/wecom/callback', query: r.query, headers: { 'content-type': 'text/xml' }, body: r.body }, q);

function graphPost(items: unknown[]): HttpRequest {
  return { method: 'POST', path: '/mailbox/events/graph', query: {}, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: items }) };
}
const change = (userId: string, changeType = 'updated', extra: Record<string, unknown> = {}) => ({
  subscriptionId: 'sub-1',
  clientState: CLIENT_STATE,
  changeType,
  resource: `Users/${userId}`,
  resourceData: { id: userId },
  tenantId: 'tenant-1',
  ...extra,
});
function webhookPost(event: unknown): HttpRequest {
  const body = JSON.stringify(event);
  const ts = String(Math.floor(Date.now() / 1000));
  return { method: 'POST', path: '/mailbox/events/webhook', query: {}, headers: { 'x-timestamp': ts, 'x-signature': signWebhook(WEBHOOK_SECRET, ts, body) }, body };
}

/**
 * Start a request whose receiver dies in its enqueue (given the hanging queue); resolve once
 * `items` pending items in all are visible. The request itself is abandoned, never answered.
 */
async function dieAfterInboxWrite(send: (q: WorkQueue) => Promise<unknown>, items = 1): Promise<void> {
  void send(hanging);
  for (let i = 0; i < 200; i++) {
    if ((await inbox.listPending(later(), 1000)).length >= items) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the dying receiver never wrote its inbox item');
}

const accepted = (from = 0): SyncMessage[] => sqs.messages.slice(from).map((m) => JSON.parse(m.MessageBody) as SyncMessage);
const status = async (id: string) =>
  (await dyn.client.send(new GetItemCommand({ TableName: dyn.tables.inbox, Key: { pk: { S: id } }, ConsistentRead: true }))).Item;

describe('DynamoInbox as a state machine', () => {
  it('record → listed as pending with what rebuilds its messages; markEnqueued → no longer listed', async () => {
    const entry: InboxEntry = { id: 'ev-sm-1', source: 'wecom', kind: 'change_contact/create_user', subjects: ['user:a'], disposition: 'accepted', receivedAt: new Date().toISOString(), hint: 'create_user', operator: 'wecom-callback' };
    expect(await inbox.record(entry)).toBe('new');
    expect(await inbox.listPending(later())).toEqual([entry]);
    expect(await inbox.record(entry)).toBe('pending');
    await inbox.markEnqueued(entry.id);
    expect(await inbox.listPending(later())).toEqual([]);
    expect(await inbox.record(entry)).toBe('duplicate');
    const item = (await status(entry.id))!;
    expect(item.status!.S).toBe('enqueued');
    expect(item.pendingKey).toBeUndefined();
  });
});

describe('WeCom callback', () => {
  it('enqueue fails → 503, the item stays pending; WeCom’s retry enqueues it with the same dedupe id and answers success', async () => {
    const r = buildPost(contactEvent(keys.corpId, 'delete_user', { UserID: 'lisi' }), keys);
    const before = sqs.messages.length;
    const requests = sqs.requests.length;
    sqs.failEntries = 2; // the send and SqsWorkQueue's one retry
    expect(await wecomPost(r)).toMatchObject({ statusCode: 503 });
    expect(sqs.messages.length).toBe(before);
    const failedDedupe = sqs.requests.slice(requests).map((q) => q.Entries[0].MessageDeduplicationId);
    expect(failedDedupe).toHaveLength(2);

    const [pending] = await inbox.listPending(later());
    expect(pending).toMatchObject({ source: 'wecom', subjects: ['user:lisi'], hint: 'delete_user', operator: 'wecom-callback' });

    expect(await wecomPost(r)).toMatchObject({ statusCode: 200, body: 'success' });
    expect(sqs.messages.slice(before).map((m) => m.MessageDeduplicationId)).toEqual([failedDedupe[0]]);
    expect(accepted(before)).toEqual([expect.objectContaining({ subject: 'user:lisi', eventId: pending!.id, hint: 'delete_user', operator: 'wecom-callback' })]);
    expect(await inbox.listPending(later())).toEqual([]);
    expect((await status(pending!.id))!.status!.S).toBe('enqueued');
  });

  it('a receiver that died after the inbox write: left alone while fresh, then re-enqueued by the sweep and marked', async () => {
    const r = buildPost(contactEvent(keys.corpId, 'update_user', { UserID: 'old.id', NewUserID: 'new.id' }), keys);
    await dieAfterInboxWrite((q) => wecomPost(r, q));
    const [item] = await inbox.listPending(later());
    expect(item).toBeDefined();

    // Younger than the 2-minute default: a live receiver may still be working on it.
    expect(await sweepInbox({ inbox, queue })).toMatchObject({ found: 0, requeued: 0 });

    const before = sqs.messages.length;
    expect(await sweepInbox({ inbox, queue, now: later })).toEqual({ found: 1, requeued: 1, messages: 2, ignored: 0, failed: 0, more: false });
    const msgs = accepted(before);
    expect(msgs.map((m) => m.subject).sort()).toEqual(['user:new.id', 'user:old.id']);
    for (const m of msgs) {
      expect(m).toEqual({ v: 1, subject: m.subject, source: 'wecom', eventId: item!.id, hint: 'update_user', operator: 'wecom-callback', receivedAt: item!.receivedAt });
    }
    expect(sqs.messages.slice(before).map((m) => m.MessageDeduplicationId)).toEqual(msgs.map((m) => messageDeduplicationId(m)));
    expect((await status(item!.id))!.status!.S).toBe('enqueued');

    // WeCom's late retry after all: a plain duplicate, nothing sent.
    const requests = sqs.requests.length;
    expect(await wecomPost(r)).toMatchObject({ statusCode: 200, body: 'success' });
    expect(sqs.requests.length).toBe(requests);
  });

  it('an event we ignore (no subjects) left pending is only marked by the sweep', async () => {
    const text = `<xml><ToUserName><![CDATA[${keys.corpId}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>2</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content></xml>`;
    // An ignored event never reaches the queue, so play the death with an inbox that fails markEnqueued.
    const dead: Inbox = { record: (e) => inbox.record(e), markEnqueued: async () => Promise.reject(new Error('killed')), listPending: (b, l) => inbox.listPending(b, l) };
    const receiver = createCallbackReceiver({ keys, inbox: dead, queue });
    const r = buildPost(text, keys);
    expect((await receiver({ method: 'POST', path: '/wecom/callback', query: r.query, headers: {}, body: r.body })).statusCode).toBe(503);
    const requests = sqs.requests.length;
    expect(await sweepInbox({ inbox, queue, now: later })).toMatchObject({ found: 1, requeued: 0, ignored: 1, messages: 0 });
    expect(sqs.requests.length).toBe(requests);
    expect(await inbox.listPending(later())).toEqual([]);
  });
});

describe('mailbox receivers', () => {
  it('a Graph POST whose receiver died: the sweep enqueues each user’s and the lifecycle message and marks the ignored item', async () => {
    const lifecycle = { subscriptionId: 'sub-1', clientState: CLIENT_STATE, lifecycleEvent: 'reauthorizationRequired', subscriptionExpirationDateTime: '2026-12-20T00:00:00Z' };
    const items = [change('aaaa-1111'), change('bbbb-2222', 'deleted'), { ...change('x'), resource: 'Groups/abc', resourceData: undefined }, lifecycle];
    // Both deliveries are received at one instant: the dedupe key of an id-less notification
    // holds a 10-second receipt bucket, which a slow run could otherwise cross between them.
    const receivedAt = new Date();
    await dieAfterInboxWrite((q) => mailbox(graphPost(items), q, () => receivedAt), 4);
    expect(await sweepInbox({ inbox, queue })).toMatchObject({ found: 0 });

    const before = sqs.messages.length;
    expect(await sweepInbox({ inbox, queue, now: later })).toEqual({ found: 4, requeued: 3, messages: 3, ignored: 1, failed: 0, more: false });
    const bySubject = Object.fromEntries(accepted(before).map((m) => [m.subject, [m.hint, m.operator, m.source]]));
    expect(bySubject).toEqual({
      'mailbox:graph:aaaa-1111': ['graph.updated', 'graph-notification', 'mailbox'],
      'mailbox:graph:bbbb-2222': ['graph.deleted', 'graph-notification', 'mailbox'],
      'mailbox:graph:subscription': ['graph.lifecycle.reauthorizationRequired', 'graph-lifecycle', 'mailbox'],
    });
    expect(await inbox.listPending(later())).toEqual([]);

    // Graph's redelivery (same 10-second bucket): all duplicates, acknowledged, nothing sent.
    const requests = sqs.requests.length;
    expect((await mailbox(graphPost(items), queue, () => receivedAt)).statusCode).toBe(202);
    expect(sqs.requests.length).toBe(requests);
  });

  it('a webhook event whose receiver died is re-enqueued by the sweep, an email-only one without the address', async () => {
    await dieAfterInboxWrite((q) => mailbox(webhookPost({ type: 'mailbox.disabled', userid: 'zhangsan', occurredAt: '2026-11-24T08:00:00Z' }), q));
    await dieAfterInboxWrite((q) => mailbox(webhookPost({ type: 'mailbox.deleted', email: 'Wang.Wu@Example.com', occurredAt: '2026-11-24T08:00:00Z' }), q), 2);
    const pending = await inbox.listPending(later());
    expect(JSON.stringify(pending).toLowerCase()).not.toContain('wang.wu');
    expect(await sweepInbox({ inbox, queue })).toMatchObject({ found: 0 }); // still fresh

    const before = sqs.messages.length;
    expect(await sweepInbox({ inbox, queue, now: later })).toMatchObject({ found: 2, requeued: 2, messages: 2, failed: 0 });
    expect(accepted(before).map((m) => [m.subject, m.hint, m.operator])).toEqual(
      expect.arrayContaining([
        ['user:zhangsan', 'mailbox.disabled', 'webhook'],
        [`mailbox:address:${addressKey(WEBHOOK_SECRET, 'wang.wu@example.com')}`, 'mailbox.deleted', 'webhook'],
      ]),
    );
    expect(await inbox.listPending(later())).toEqual([]);
  });
});

describe('the sweep', () => {
  it('run twice over the same items (the first died before marking) sends the same dedupe ids; SQS keeps one copy; then nothing is left', async () => {
    for (const u of ['s1', 's2', 's3']) await dieAfterInboxWrite((q) => mailbox(graphPost([change(`sweep-${u}`)]), q), ['s1', 's2', 's3'].indexOf(u) + 1);
    const noMark: Inbox = { record: (e) => inbox.record(e), markEnqueued: async () => Promise.reject(new Error('killed')), listPending: (b, l) => inbox.listPending(b, l) };
    const messagesBefore = sqs.messages.length;

    let requests = sqs.requests.length;
    expect(await sweepInbox({ inbox: noMark, queue, now: later })).toMatchObject({ found: 3, requeued: 0, messages: 3, failed: 3 });
    const first = sqs.requests.slice(requests).flatMap((q) => q.Entries.map((e: { MessageDeduplicationId: string }) => e.MessageDeduplicationId));

    requests = sqs.requests.length;
    expect(await sweepInbox({ inbox, queue, now: later })).toMatchObject({ found: 3, requeued: 3, messages: 3, failed: 0 });
    const second = sqs.requests.slice(requests).flatMap((q) => q.Entries.map((e: { MessageDeduplicationId: string }) => e.MessageDeduplicationId));
    expect(second).toEqual(first);
    expect(sqs.messages.length - messagesBefore).toBe(3);

    expect(await sweepInbox({ inbox, queue, now: later })).toEqual({ found: 0, requeued: 0, messages: 0, ignored: 0, failed: 0, more: false });
  });

  it('two sweeps at once and a live receiver retry: every message once on the queue, every item marked', async () => {
    const r = buildPost(contactEvent(keys.corpId, 'create_user', { UserID: 'concurrent' }), keys);
    await dieAfterInboxWrite((q) => wecomPost(r, q));
    for (const u of ['c1', 'c2']) await dieAfterInboxWrite((q) => mailbox(graphPost([change(`conc-${u}`)]), q), u === 'c1' ? 2 : 3);
    const before = sqs.messages.length;
    const [a, b, retry] = await Promise.all([sweepInbox({ inbox, queue, now: later }), sweepInbox({ inbox, queue, now: later }), wecomPost(r)]);
    expect(retry).toMatchObject({ statusCode: 200, body: 'success' });
    expect(a.failed + b.failed).toBe(0);
    expect(accepted(before).map((m) => m.subject).sort()).toEqual(['mailbox:graph:conc-c1', 'mailbox:graph:conc-c2', 'user:concurrent']);
    expect(await inbox.listPending(later())).toEqual([]);
  });

  it('a queue outage leaves everything pending for the next run', async () => {
    await dieAfterInboxWrite((q) => mailbox(graphPost([change('outage-1')]), q));
    sqs.failEntries = 2;
    expect(await sweepInbox({ inbox, queue, now: later })).toMatchObject({ found: 1, requeued: 0, failed: 1 });
    expect(await inbox.listPending(later())).toHaveLength(1);
    expect(await sweepInbox({ inbox, queue, now: later })).toMatchObject({ found: 1, requeued: 1, failed: 0 });
  });

  it('pages through a backlog oldest first and stops at its limit', async () => {
    const t0 = Date.now() - 10 * 60_000;
    for (let i = 0; i < 25; i++) {
      await inbox.record({ id: `backlog-${i}`, source: 'mailbox', kind: 'graph/updated', subjects: [`mailbox:graph:backlog-${i}`], disposition: 'accepted', receivedAt: new Date(t0 + i * 1000).toISOString(), hint: 'graph.updated', operator: 'graph-notification' });
    }
    expect((await inbox.listPending(later(), 5)).map((e) => e.id)).toEqual(['backlog-0', 'backlog-1', 'backlog-2', 'backlog-3', 'backlog-4']);
    const before = sqs.messages.length;
    expect(await sweepInbox({ inbox, queue, now: later, limit: 20, pageSize: 7 })).toMatchObject({ found: 20, requeued: 20, more: true });
    expect(accepted(before).map((m) => m.eventId)).toEqual(Array.from({ length: 20 }, (_, i) => `backlog-${i}`));
    expect(await sweepInbox({ inbox, queue, now: later })).toMatchObject({ found: 5, requeued: 5, more: false });
  });
});

describe('the inbox-sweeper Lambda handler', () => {
  const ctx = { awsRequestId: 'test', functionName: 'inbox-sweeper' } as Context;
  const old = () => new Date(Date.now() - 10 * 60_000).toISOString();

  it('the deployed `handler` wires DynamoDB and SQS from env and sweeps what is older than 2 minutes', async () => {
    const ENV = ['DYNAMODB_ENDPOINT', 'SQS_ENDPOINT', 'INBOX_TABLE', 'QUEUE_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
    const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
    try {
      Object.assign(process.env, {
        DYNAMODB_ENDPOINT: dyn.endpoint,
        SQS_ENDPOINT: sqs.endpoint,
        INBOX_TABLE: dyn.tables.inbox,
        QUEUE_URL: sqs.queueUrl,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      });
      await inbox.record({ id: 'wired-old', source: 'wecom', kind: 'change_contact/delete_user', subjects: ['user:wired'], disposition: 'accepted', receivedAt: old(), hint: 'delete_user', operator: 'wecom-callback' });
      await inbox.record({ id: 'wired-fresh', source: 'wecom', kind: 'change_contact/delete_user', subjects: ['user:fresh'], disposition: 'accepted', receivedAt: new Date().toISOString(), operator: 'wecom-callback' });
      const before = sqs.messages.length;
      const { handler } = await import('../../functions/handlers/inbox-sweeper');
      expect(await handler({}, ctx)).toEqual({ found: 1, requeued: 1, messages: 1, ignored: 0, failed: 0, more: false });
      expect(accepted(before).map((m) => [m.subject, m.eventId, m.hint])).toEqual([['user:wired', 'wired-old', 'delete_user']]);
      expect((await inbox.listPending(later())).map((e) => e.id)).toEqual(['wired-fresh']);
    } finally {
      for (const k of ENV) if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  it('a run that leaves items pending fails (errors alarm, EventBridge retry); nothing is lost', async () => {
    await inbox.record({ id: 'handler-outage', source: 'mailbox', kind: 'webhook/mailbox.disabled', subjects: ['user:outage'], disposition: 'accepted', receivedAt: old(), hint: 'mailbox.disabled', operator: 'webhook' });
    const down: WorkQueue = { enqueue: async () => Promise.reject(new Error('queue down')) };
    const failing = createInboxSweeperHandler({ ports: async () => ({ inbox, queue: down }) });
    const err = await failing({}, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InboxSweepIncompleteError);
    expect(String(err)).not.toContain('outage');
    expect((await inbox.listPending(later())).map((e) => e.id)).toContain('handler-outage');
    const ok = createInboxSweeperHandler({ ports: async () => ({ inbox, queue }) });
    expect(await ok({}, ctx)).toMatchObject({ requeued: 1, failed: 0 });
  });
});
