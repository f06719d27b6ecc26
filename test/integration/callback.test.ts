/**
 * The WeCom callback Lambda end to end on loopback: the handler factory behind API Gateway
 * v2 events, the real DynamoDB client against dynalite with DynamoInbox, and the queue being
 * (a) the in-process LocalFifoQueue and (b) SqsWorkQueue with the real SQS client against a
 * loopback SQS JSON server. Callbacks are built by an independent implementation of the
 * protocol (test/support/wecom-callback-client.ts), not by the code under test.
 */
import { randomBytes } from 'node:crypto';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

vi.hoisted(() => {
  // The logger is silent under vitest unless LOG_LEVEL is set; we want to read what it writes.
  process.env.LOG_LEVEL = 'INFO';
});

import { LocalFifoQueue } from '../../bin/local/queue';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { clearSecretCache, loadSecretJson } from '../../functions/config/secrets';
import { loadCallbackKeys } from '../../functions/wecom/callback-keys';
import { createWecomCallbackHandler } from '../../functions/handlers/wecom-callback';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';
import { SqsWorkQueue } from '../../functions/queue/sqs';
import { DynamoInbox } from '../../functions/store/inbox';
import { startLoopbackSecretsManager, startLoopbackSqs, type LoopbackSqs } from '../support/aws-json-loopback';
import { buildPost, buildVerify, contactEvent, envelope, randomEncodingAESKey, sign, type ClientKeys } from '../support/wecom-callback-client';

const keys: ClientKeys = { token: randomBytes(12).toString('hex'), encodingAESKey: randomEncodingAESKey(), corpId: 'wwintegration0001' };
/** Personal data an older app's callback could carry: must never reach a log or the inbox. */
const PII = { Mobile: '13912345678', Email: 'zhang.sanfeng@example.com', Name: '张三丰' };

// ---------------------------------------------------------------- log capture

const captured: string[] = [];
const writes = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
beforeAll(() => {
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    captured.push(String(chunk));
    return (writes.out as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    captured.push(String(chunk));
    return (writes.err as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
});
afterAll(() => {
  process.stdout.write = writes.out;
  process.stderr.write = writes.err;
});

// ---------------------------------------------------------------- helpers

function apiEvent(method: 'GET' | 'POST', query: Record<string, string>, body = ''): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `${method} /wecom/callback`,
    rawPath: '/wecom/callback',
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'text/xml', host: 'api.example.com' },
    // API Gateway hands over URL-decoded parameters.
    queryStringParameters: query,
    requestContext: { http: { method, path: '/wecom/callback', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' } },
    body: body || undefined,
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
}

type Handler = (e: APIGatewayProxyEventV2, c: Context) => Promise<APIGatewayProxyStructuredResultV2>;
const ctx = { awsRequestId: 'test', functionName: 'wecom-callback' } as Context;

interface QueueHarness {
  name: string;
  queue: WorkQueue;
  /** enqueue calls made by the receiver (the queues dedupe too, so count calls, not only messages). */
  calls: number;
  messages(): Promise<SyncMessage[]>;
  failNextEnqueue(): void;
  close(): Promise<void>;
}

async function localHarness(): Promise<QueueHarness> {
  const delivered: SyncMessage[] = [];
  const local = new LocalFifoQueue({ consumer: async (e) => void delivered.push(...e.Records.map((r) => JSON.parse(r.body))) });
  let fail = false;
  return {
    name: 'LocalFifoQueue',
    calls: 0,
    queue: {
      enqueue: async (m) => {
        if (fail) {
          fail = false;
          throw new Error('queue unavailable');
        }
        await local.enqueue(m);
      },
    },
    messages: async () => {
      await local.drain(5000);
      return delivered;
    },
    failNextEnqueue: () => void (fail = true),
    close: async () => local.stop(),
  };
}

async function sqsHarness(): Promise<QueueHarness & { server: LoopbackSqs }> {
  const server = await startLoopbackSqs();
  const client = new SQSClient({ ...LOCAL_AWS, endpoint: server.endpoint });
  return {
    name: 'SqsWorkQueue',
    calls: 0,
    server,
    queue: new SqsWorkQueue(client, server.queueUrl),
    messages: async () => server.messages.map((m) => JSON.parse(m.MessageBody)),
    // The first send and SqsWorkQueue's one retry both fail.
    failNextEnqueue: () => void (server.failEntries = 2),
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}

async function inboxItems(dyn: LocalDynamo) {
  const out = await dyn.client.send(new ScanCommand({ TableName: dyn.tables.inbox, ConsistentRead: true }));
  return out.Items ?? [];
}

// ---------------------------------------------------------------- the receiver, per queue

describe.each([
  ['LocalFifoQueue', localHarness],
  ['SqsWorkQueue', sqsHarness],
] as const)('wecom-callback handler with DynamoInbox and %s', (_name, makeQueue) => {
  let dyn: LocalDynamo;
  let q: QueueHarness;
  let handler: Handler;

  beforeAll(async () => {
    dyn = await startDynalite();
    q = await makeQueue();
    const counted: WorkQueue = { enqueue: (m) => (q.calls++, q.queue.enqueue(m)) };
    handler = createWecomCallbackHandler({ keys, inbox: new DynamoInbox(dyn.client, dyn.tables.inbox), queue: counted }) as unknown as Handler;
  });
  afterAll(async () => {
    await q?.close();
    await dyn?.close();
  });

  const post = (r: { query: Record<string, string>; body: string }) => handler(apiEvent('POST', r.query, r.body), ctx);

  it('GET verification answers the bare echostr, even with "+" decoded to a space', async () => {
    // Find an echostr whose ciphertext contains '+', as WeCom's often does.
    let v = buildVerify('5927538423417489323', keys);
    while (!v.echostr.includes('+')) v = buildVerify('5927538423417489323', keys);
    const res = await handler(apiEvent('GET', { ...v, echostr: v.echostr.replace(/\+/g, ' ') }), ctx);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('5927538423417489323');
    expect(res.headers?.['content-type']).toMatch(/^text\/plain/);
  });

  it('one delivery → one inbox item and one message; the same delivery again → still one', async () => {
    const r = buildPost(contactEvent(keys.corpId, 'create_user', { UserID: 'zhangsan', Department: '1', ...PII }), keys);
    const first = await post(r);
    expect(first).toMatchObject({ statusCode: 200, body: 'success' });
    expect(first.headers?.['content-type']).toMatch(/^text\/plain/);
    const calls = q.calls;
    expect(await post(r)).toMatchObject({ statusCode: 200, body: 'success' });
    expect(q.calls, 'a duplicate must not be enqueued at all').toBe(calls);

    const items = await inboxItems(dyn);
    expect(items).toHaveLength(1);
    const item = items[0]!;
    expect(item.pk!.S).toMatch(/^[0-9a-f]{64}$/);
    expect(item.status!.S).toBe('enqueued');
    expect(item.disposition!.S).toBe('accepted');
    expect(item.kind!.S).toBe('change_contact/create_user');
    expect(item.subjects!.L).toEqual([{ S: 'user:zhangsan' }]);
    // What the inbox sweep needs to rebuild the message, and out of the pending index once enqueued.
    expect(item.hint!.S).toBe('create_user');
    expect(item.operator!.S).toBe('wecom-callback');
    expect(item.pendingKey).toBeUndefined();
    expect(Number(item.expiresAt!.N)).toBeGreaterThan(Date.now() / 1000 + 6 * 86_400);
    // Only routing facts are stored: no decrypted content, no personal data.
    const stored = JSON.stringify(item);
    for (const v of Object.values(PII)) expect(stored).not.toContain(v);
    expect(stored).not.toContain('CDATA');

    const msgs = await q.messages();
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatchObject({ v: 1, subject: 'user:zhangsan', source: 'wecom', eventId: item.pk!.S, hint: 'create_user' });
  });

  it('a userid change and a tag change enqueue one message per subject; an event we ignore enqueues none', async () => {
    const before = (await q.messages()).length;
    expect((await post(buildPost(contactEvent(keys.corpId, 'update_user', { UserID: 'old.id', NewUserID: 'new.id' }), keys))).body).toBe('success');
    expect(
      (await post(buildPost(contactEvent(keys.corpId, 'update_tag', { TagId: '3', AddUserItems: 'u1,u2', DelPartyItems: '8' }), keys))).body,
    ).toBe('success');
    const text = `<xml><ToUserName><![CDATA[${keys.corpId}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>`;
    expect((await post(buildPost(text, keys))).body).toBe('success');
    const subjects = (await q.messages()).slice(before).map((m) => m.subject);
    expect(subjects.sort()).toEqual(['party:8', 'user:new.id', 'user:old.id', 'user:u1', 'user:u2']);
    const ignored = (await inboxItems(dyn)).filter((i) => i.disposition!.S === 'ignored');
    expect(ignored.map((i) => i.kind!.S)).toEqual(['text']);
  });

  it('bad input → 4xx, no inbox item, no message', async () => {
    const itemsBefore = (await inboxItems(dyn)).length;
    const msgsBefore = (await q.messages()).length;
    const xml = (uid: string) => contactEvent(keys.corpId, 'create_user', { UserID: uid });
    const now = Math.floor(Date.now() / 1000);
    const lol = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>';
    const signedBody = (body: string, encrypt: string) => {
      const timestamp = String(now);
      return { query: { msg_signature: sign(keys.token, timestamp, '1234', encrypt), timestamp, nonce: '1234' }, body };
    };
    const good = buildPost(xml('victim'), keys);
    const enc = /<Encrypt><!\[CDATA\[(.*)\]\]><\/Encrypt>/.exec(good.body)![1]!;
    const cases: Array<[string, { query: Record<string, string>; body: string }, number]> = [
      ['forged signature', buildPost(xml('forged'), keys, { signToken: 'not-the-token' }), 403],
      ['missing signature', { query: { timestamp: good.query.timestamp!, nonce: good.query.nonce! }, body: good.body }, 403],
      ['stale timestamp', buildPost(xml('stale'), keys, { timestamp: now - 3600 }), 403],
      ['future timestamp', buildPost(xml('future'), keys, { timestamp: now + 3600 }), 403],
      ['wrong CorpID', buildPost(xml('wrongcorp'), keys, { receiveId: 'wwsomeoneelse0001' }), 403],
      ['bad padding', buildPost(xml('badpad'), keys, { padding: (n) => Buffer.alloc(n, 0) }), 403],
      ['lying length field', buildPost(xml('badlen'), keys, { lengthField: 100_000 }), 403],
      ['malformed XML', signedBody(`<xml><Encrypt>${enc}</Encrypt>`, enc), 400],
      ['oversized', signedBody(envelope(enc, keys.corpId).replace('<xml>', `<xml><Pad>${'x'.repeat(65 * 1024)}</Pad>`), enc), 413],
      ['XXE in envelope', signedBody(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${envelope(enc, keys.corpId)}`, enc), 400],
      ['entity bomb in envelope', signedBody(`${lol}<xml><Encrypt>&lol2;</Encrypt></xml>`, '&lol2;'), 400],
      ['XXE inside the encrypted event', buildPost(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${xml('xxe')}`, keys), 400],
      ['entity bomb inside the encrypted event', buildPost(`${lol}${xml('&lol2;')}`, keys), 400],
      ['schema-invalid event', buildPost(contactEvent(keys.corpId, 'delete_user', { UserID: 'bad id!' }), keys), 400],
    ];
    for (const [name, r, code] of cases) {
      const res = await post(r);
      expect(res.statusCode, name).toBe(code);
      expect(res.body!.length, name).toBeLessThan(40);
    }
    // All crypto failures look alike.
    const cryptoCases = cases.filter(([name]) => /forged|CorpID|padding|length/.test(name));
    expect(cryptoCases).toHaveLength(4);
    const bodies = new Set(await Promise.all(cryptoCases.map(async ([, r]) => (await post(r)).body!)));
    expect([...bodies]).toEqual(['invalid signature or payload']);

    expect((await inboxItems(dyn)).length).toBe(itemsBefore);
    expect((await q.messages()).length).toBe(msgsBefore);
  });

  it('enqueue failure → 5xx with the inbox item pending; WeCom’s retry enqueues', async () => {
    const r = buildPost(contactEvent(keys.corpId, 'delete_party', { Id: '77' }), keys);
    const before = (await q.messages()).length;
    q.failNextEnqueue();
    const res = await post(r);
    expect(res.statusCode).toBeGreaterThanOrEqual(500);
    expect((await q.messages()).length).toBe(before);
    const pending = (await inboxItems(dyn)).filter((i) => i.kind!.S === 'change_contact/delete_party');
    expect(pending.map((i) => i.status!.S)).toEqual(['pending']);
    // Listed for the inbox sweep, should WeCom never retry (test/integration/inbox-sweep.test.ts).
    expect(pending[0]!.pendingKey!.S).toMatch(/^pending#[0-9a-f]$/);

    expect(await post(r)).toMatchObject({ statusCode: 200, body: 'success' });
    const after = (await q.messages()).slice(before);
    expect(after.map((m) => m.subject)).toEqual(['party:77']);
    expect((await inboxItems(dyn)).filter((i) => i.kind!.S === 'change_contact/delete_party').map((i) => i.status!.S)).toEqual(['enqueued']);
    // A third delivery is a plain duplicate.
    const calls = q.calls;
    expect((await post(r)).body).toBe('success');
    expect(q.calls).toBe(calls);
    expect((await q.messages()).length).toBe(before + 1);
  });
});

describe('SqsWorkQueue on the SQS JSON protocol', () => {
  it('sends batches of at most 10 with group = subject and a 64-hex dedupe id', async () => {
    const h = await sqsHarness();
    try {
      const msgs: SyncMessage[] = Array.from({ length: 23 }, (_, i) => ({
        v: 1,
        subject: `user:u${i % 5}`,
        source: 'reconcile',
        eventId: `ev${i}`,
        operator: 'test',
        receivedAt: new Date().toISOString(),
      }));
      await h.queue.enqueue(msgs);
      expect(h.server.requests.map((r) => r.Entries.length)).toEqual([10, 10, 3]);
      expect(h.server.messages).toHaveLength(23);
      expect(h.server.messages.map((m) => JSON.parse(m.MessageBody).eventId)).toEqual(msgs.map((m) => m.eventId));
      for (const m of h.server.messages) {
        expect(m.MessageGroupId).toBe(JSON.parse(m.MessageBody).subject);
        expect(m.MessageDeduplicationId).toMatch(/^[0-9a-f]{64}$/);
      }
      // Resending the same messages is absorbed by the dedupe ids.
      await h.queue.enqueue(msgs.slice(0, 3));
      expect(h.server.messages).toHaveLength(23);
      // One failed attempt is retried; two are an error.
      h.server.failEntries = 1;
      await h.queue.enqueue([{ ...msgs[0]!, eventId: 'retry-ok' }]);
      expect(h.server.messages).toHaveLength(24);
      h.server.failEntries = 2;
      await expect(h.queue.enqueue([{ ...msgs[0]!, eventId: 'retry-fails' }])).rejects.toThrow(/InternalError/);
    } finally {
      await h.close();
    }
  });
});

// ---------------------------------------------------------------- secrets and the deployed wiring

describe('secrets and the deployed handler wiring', () => {
  const ENV = [
    'WECOM_CALLBACK_SECRET_ARN',
    'SECRETS_ENDPOINT',
    'WECOM_CORP_ID',
    'WECOM_TOKEN',
    'WECOM_ENCODING_AES_KEY',
    'DYNAMODB_ENDPOINT',
    'SQS_ENDPOINT',
    'INBOX_TABLE',
    'QUEUE_URL',
    'AWS_REGION',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
  ];
  const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
  afterAll(() => {
    for (const k of ENV) if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
    clearSecretCache();
  });

  it('loadCallbackKeys from env, with a clear error naming (not showing) what is missing', async () => {
    for (const k of ENV) delete process.env[k];
    clearSecretCache();
    await expect(loadCallbackKeys()).rejects.toThrow(/WECOM_CORP_ID, WECOM_TOKEN, WECOM_ENCODING_AES_KEY/);
    clearSecretCache();
    Object.assign(process.env, { WECOM_CORP_ID: keys.corpId, WECOM_TOKEN: keys.token, WECOM_ENCODING_AES_KEY: 'short' });
    const err = await loadCallbackKeys().catch((e: Error) => e);
    expect(String(err)).toMatch(/EncodingAESKey/);
    expect(String(err)).not.toContain('short');
    clearSecretCache();
    process.env.WECOM_ENCODING_AES_KEY = keys.encodingAESKey;
    expect(await loadCallbackKeys()).toEqual(keys);
  });

  it('loadSecretJson fetches from Secrets Manager once per container, and retries after a failure', async () => {
    const sm = await startLoopbackSecretsManager({ 'arn:aws:secretsmanager:us-east-1:0:secret:cb': JSON.stringify(keys) });
    try {
      clearSecretCache();
      Object.assign(process.env, { SECRETS_ENDPOINT: sm.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' });
      process.env.TEST_MISSING_ARN = 'arn:aws:secretsmanager:us-east-1:0:secret:missing';
      await expect(loadSecretJson('TEST_MISSING_ARN', () => ({}))).rejects.toThrow();
      sm.secrets.set('arn:aws:secretsmanager:us-east-1:0:secret:missing', '{"a":1}');
      expect(await loadSecretJson('TEST_MISSING_ARN', () => ({}))).toEqual({ a: 1 });
      delete process.env.TEST_MISSING_ARN;
      process.env.WECOM_CALLBACK_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:0:secret:cb';
      const calls = sm.calls;
      expect(await loadCallbackKeys()).toEqual(keys);
      expect(await loadCallbackKeys()).toEqual(keys);
      expect(sm.calls - calls).toBe(1);
    } finally {
      await sm.close();
    }
  });

  it('the deployed `handler` wires Secrets Manager, DynamoDB and SQS from env at first invocation', async () => {
    const dyn = await startDynalite();
    const sqs = await startLoopbackSqs();
    const sm = await startLoopbackSecretsManager({ 'arn:aws:secretsmanager:us-east-1:0:secret:wecom-callback': JSON.stringify(keys) });
    try {
      clearSecretCache();
      for (const k of ['WECOM_CORP_ID', 'WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY']) delete process.env[k];
      Object.assign(process.env, {
        WECOM_CALLBACK_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:0:secret:wecom-callback',
        SECRETS_ENDPOINT: sm.endpoint,
        DYNAMODB_ENDPOINT: dyn.endpoint,
        SQS_ENDPOINT: sqs.endpoint,
        INBOX_TABLE: dyn.tables.inbox,
        QUEUE_URL: sqs.queueUrl,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      });
      const { handler } = (await import('../../functions/handlers/wecom-callback')) as unknown as { handler: Handler };
      const v = buildVerify('42', keys);
      expect((await handler(apiEvent('GET', v), ctx)).body).toBe('42');
      const r = buildPost(contactEvent(keys.corpId, 'create_user', { UserID: 'wired' }), keys);
      expect((await handler(apiEvent('POST', r.query, r.body), ctx)).body).toBe('success');
      expect(sqs.messages.map((m) => JSON.parse(m.MessageBody).subject)).toEqual(['user:wired']);
      expect(await inboxItems(dyn)).toHaveLength(1);
      expect(sm.calls).toBe(1);
    } finally {
      await sm.close();
      await sqs.close();
      await dyn.close();
    }
  });
});

describe('logs', () => {
  it('carry no secret and no decrypted content', () => {
    const all = captured.join('');
    expect(all).toContain('wecom callback accepted');
    expect(all).toContain('wecom callback rejected');
    for (const secret of [keys.token, keys.encodingAESKey]) expect(all).not.toContain(secret);
    for (const v of Object.values(PII)) expect(all).not.toContain(v);
    for (const fragment of ['zhangsan', 'CDATA', 'change_contact</', '<xml>', 'victim', '5927538423417489323']) expect(all).not.toContain(fragment);
  });
});
