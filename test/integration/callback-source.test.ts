/**
 * The callback source check end to end on loopback: the hourly refresher
 * (functions/handlers/wecom-callback-ips.ts) against the WeCom simulator's getcallbackip,
 * storing into the inbox table on dynalite with the real DynamoDB client; and the callback
 * Lambda handler reading that item through API Gateway v2 events with a source address.
 * A refused source gets a 403 and leaves nothing behind (no inbox item, no enqueue, no
 * address in the logs); a stale list lets callbacks in and counts them.
 */
import { randomBytes } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  // The logger is silent under vitest unless LOG_LEVEL is set; we want to read what it writes.
  process.env.LOG_LEVEL = 'INFO';
});

import { startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { createWecomSim, type WecomSim } from '../../bin/local/sim/wecom';
import { createWecomCallbackHandler } from '../../functions/handlers/wecom-callback';
import { createWecomCallbackIpsHandler } from '../../functions/handlers/wecom-callback-ips';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';
import { CALLBACK_IP_LIST_KEY, DynamoCallbackIpList } from '../../functions/store/callback-ip-list';
import { DynamoInbox } from '../../functions/store/inbox';
import { NoUsableCallbackIpsError, wecomCallbackIpSource } from '../../functions/wecom/callback-ips-refresh';
import { createCallbackSourceCheck, SOURCE_CHECK_METRICS } from '../../functions/wecom/callback-source';
import { buildPost, buildVerify, contactEvent, randomEncodingAESKey, type ClientKeys } from '../support/wecom-callback-client';

const keys: ClientKeys = { token: randomBytes(12).toString('hex'), encodingAESKey: randomEncodingAESKey(), corpId: 'wwsourcecheck001' };
const APP_SECRET = 'app-secret-' + randomBytes(8).toString('hex');
const CONTACTS_SECRET = 'contacts-secret-' + randomBytes(8).toString('hex');
const OUTSIDE = '203.0.113.77';
const ctx = { awsRequestId: 'test', functionName: 'test' } as Context;

// ---------------------------------------------------------------- log capture

const captured: string[] = [];
const writes = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
beforeAll(() => {
  for (const [stream, original] of [[process.stdout, writes.out], [process.stderr, writes.err]] as const) {
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      captured.push(String(chunk));
      return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
  }
});
afterAll(() => {
  process.stdout.write = writes.out;
  process.stderr.write = writes.err;
});

// ---------------------------------------------------------------- harness

let dyn: LocalDynamo;
let sim: WecomSim;
let simServer: { baseUrl: string; close(): Promise<void> };
let list: DynamoCallbackIpList;
const enqueued: SyncMessage[] = [];
const queue: WorkQueue = { enqueue: async (m) => void enqueued.push(...m) };

beforeAll(async () => {
  dyn = await startDynalite();
  sim = createWecomSim({ corpId: keys.corpId, appSecret: APP_SECRET, contactsSecret: CONTACTS_SECRET });
  simServer = await sim.start();
  list = new DynamoCallbackIpList(dyn.client, dyn.tables.inbox);
});
afterAll(async () => {
  await simServer?.close();
  await dyn?.close();
});
beforeEach(() => sim.setCallbackIps(['127.0.0.1']));

const refresher = (secrets = [APP_SECRET, CONTACTS_SECRET]) =>
  createWecomCallbackIpsHandler({ source: wecomCallbackIpSource({ apiBase: simServer.baseUrl, corpId: keys.corpId, secrets }), store: list });
const refresh = (secrets?: string[]) => refresher(secrets)({}, ctx);

type Handler = (e: APIGatewayProxyEventV2, c: Context) => Promise<APIGatewayProxyStructuredResultV2>;

function receiver(opts: { now?: () => number; counted?: string[] } = {}): Handler {
  const sourceCheck = createCallbackSourceCheck({
    store: list,
    maxAgeMs: 24 * 3_600_000,
    cacheMs: 1, // read the item afresh for each test's request
    ...(opts.now ? { now: opts.now } : {}),
    metrics: { count: (n) => void opts.counted?.push(n) },
  });
  return createWecomCallbackHandler({ keys, inbox: new DynamoInbox(dyn.client, dyn.tables.inbox), queue, sourceCheck }) as unknown as Handler;
}

function apiEvent(method: 'GET' | 'POST', sourceIp: string, query: Record<string, string>, body = ''): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `${method} /wecom/callback`,
    rawPath: '/wecom/callback',
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'text/xml', host: 'api.example.com' },
    queryStringParameters: query,
    requestContext: { http: { method, path: '/wecom/callback', protocol: 'HTTP/1.1', sourceIp, userAgent: 'test' } },
    body: body || undefined,
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
}

const post = (h: Handler, sourceIp: string, userid: string) => {
  const r = buildPost(contactEvent(keys.corpId, 'update_user', { UserID: userid }), keys);
  return h(apiEvent('POST', sourceIp, r.query, r.body), ctx);
};

/** Inbox items that are events (not the stored list). */
async function eventItems() {
  const out = await dyn.client.send(new ScanCommand({ TableName: dyn.tables.inbox, ConsistentRead: true }));
  return (out.Items ?? []).filter((i) => i.pk?.S !== CALLBACK_IP_LIST_KEY);
}

// ---------------------------------------------------------------- the refresher against the simulator

describe('wecom-callback-ips refresher on the WeCom simulator', () => {
  it('stores the simulator’s default list (127.0.0.1) with its fetch time, as one inbox item the sweep never sees', async () => {
    const before = Date.now();
    const result = await refresh();
    expect(result).toMatchObject({ stored: 1, invalid: 0 });
    const stored = await list.read();
    expect(stored?.ips).toEqual(['127.0.0.1']);
    expect(Date.parse(stored!.fetchedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(sim.calls.getcallbackip).toBeGreaterThan(0);
    const pending = await new DynamoInbox(dyn.client, dyn.tables.inbox).listPending(new Date(Date.now() + 86_400_000));
    expect(pending.map((p) => p.id)).not.toContain(CALLBACK_IP_LIST_KEY);
  });

  it('works with either secret’s token, and falls back to the contacts secret when the app secret is refused', async () => {
    sim.setCallbackIps(['101.226.103.0/25', '2001:db8::/32', 'junk']);
    expect(await refresh([CONTACTS_SECRET])).toMatchObject({ stored: 2, invalid: 1 });
    expect((await list.read())?.ips).toEqual(['101.226.103.0/25', '2001:db8::/32']);
    sim.setCallbackIps(['101.226.104.0/24']);
    expect(await refresh(['wrong-app-secret', CONTACTS_SECRET])).toMatchObject({ stored: 1 });
    expect((await list.read())?.ips).toEqual(['101.226.104.0/24']);
  });

  it('a failed fetch or an empty list throws (its Errors alarm) and keeps the stored list', async () => {
    await refresh();
    const kept = await list.read();
    sim.failNext('getcallbackip', -1);
    await expect(refresh()).rejects.toThrow(/getcallbackip failed: errcode -1/);
    sim.setCallbackIps([]);
    await expect(refresh()).rejects.toBeInstanceOf(NoUsableCallbackIpsError);
    await expect(refresh(['wrong', 'also-wrong'])).rejects.toThrow(/gettoken failed: errcode 40001/);
    expect(await list.read()).toEqual(kept);
  });
});

// ---------------------------------------------------------------- the receiver reading it

describe('wecom-callback handler with the source check', () => {
  it('a callback from a listed source is accepted as before', async () => {
    await refresh(); // ['127.0.0.1']
    const before = (await eventItems()).length;
    const res = await post(receiver(), '127.0.0.1', 'allowed.user');
    expect(res).toMatchObject({ statusCode: 200, body: 'success' });
    expect((await eventItems()).length).toBe(before + 1);
    expect(enqueued.at(-1)?.subject).toBe('user:allowed.user');
  });

  it('an IPv4 source reported as IPv4-mapped IPv6 matches its range', async () => {
    sim.setCallbackIps(['127.0.0.0/8']);
    await refresh();
    expect(await post(receiver(), '::ffff:127.0.0.9', 'mapped.user')).toMatchObject({ statusCode: 200, body: 'success' });
  });

  it('a correctly signed callback from another source: 403, nothing written or queued, the address not logged', async () => {
    await refresh();
    const items = (await eventItems()).length;
    const queued = enqueued.length;
    const counted: string[] = [];
    const logStart = captured.length;
    const res = await post(receiver({ counted }), OUTSIDE, 'refused.user');
    expect(res).toMatchObject({ statusCode: 403, body: 'forbidden' });
    expect((await eventItems()).length).toBe(items);
    expect(enqueued.length).toBe(queued);
    expect(counted).toEqual([SOURCE_CHECK_METRICS.refused]);
    const logs = captured.slice(logStart).join('');
    expect(logs).toContain('wecom callback refused: source outside WeCom callback ranges');
    expect(logs).not.toContain(OUTSIDE);
    expect(logs).not.toContain('refused.user');
    // The URL verification too: the same source rule for every request.
    const v = buildVerify('1234567890', keys);
    expect(await receiver()(apiEvent('GET', OUTSIDE, v), ctx)).toMatchObject({ statusCode: 403 });
    expect(await receiver()(apiEvent('GET', '127.0.0.1', v), ctx)).toMatchObject({ statusCode: 200, body: '1234567890' });
  });

  it('a list older than the max age fails open: the callback is accepted and counted as unverified', async () => {
    await refresh();
    const counted: string[] = [];
    const dayAndAHourLater = () => Date.now() + 25 * 3_600_000;
    const res = await post(receiver({ now: dayAndAHourLater, counted }), OUTSIDE, 'stale.user');
    expect(res).toMatchObject({ statusCode: 200, body: 'success' });
    expect(counted).toEqual([SOURCE_CHECK_METRICS.unverified]);
    expect(enqueued.at(-1)?.subject).toBe('user:stale.user');
  });
});
