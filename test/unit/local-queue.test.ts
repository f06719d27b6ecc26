/**
 * One queue suite, two implementations: the in-memory LocalFifoQueue and the durable one
 * (LocalFifoQueue.open on an in-memory dynalite). What durability adds (restarts, crashes) is
 * tested in test/integration/local-queue-durability.test.ts and local-queue-kill.test.ts.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { LocalFifoQueue, type LocalFifoQueueOptions } from '../../bin/local/queue';
import type { SyncMessage } from '../../functions/queue/messages';
import type { Subject } from '../../functions/core/model';

const msg = (subject: Subject, eventId: string): SyncMessage => ({
  v: 1,
  subject,
  source: 'wecom',
  eventId,
  operator: 'test',
  receivedAt: '2026-01-01T00:00:00.000Z',
});

let dyn: LocalDynamo | undefined;
let namespaces = 0;
afterAll(async () => dyn?.close());

type Make = (opts?: LocalFifoQueueOptions) => Promise<LocalFifoQueue>;
const inMemory: Make = async (opts) => new LocalFifoQueue(opts);
const durable: Make = async (opts) => {
  dyn ??= await startDynalite();
  // A fresh namespace per test: one table, no test sees another's items.
  return LocalFifoQueue.open({ ...opts, client: dyn.client, namespace: `suite-${++namespaces}` });
};

let queue: LocalFifoQueue | undefined;
afterEach(async () => {
  await queue?.close();
  queue = undefined;
});

describe.each([
  ['in memory', inMemory],
  ['durable', durable],
])('LocalFifoQueue (%s)', (_name, make) => {
  it('delivers SQS-FIFO-shaped records in per-group order', async () => {
    const seen: SQSEvent[] = [];
    queue = await make({ consumer: async (e) => void seen.push(e) });
    await queue.enqueue([msg('user:a', 'e1'), msg('user:b', 'e1'), msg('user:a', 'e2'), msg('user:a', 'e3')]);
    await queue.drain(2000);
    const records = seen.flatMap((e) => e.Records);
    expect(records).toHaveLength(4);
    const r = records[0]!;
    expect(r.eventSource).toBe('aws:sqs');
    expect(r.eventSourceARN).toMatch(/\.fifo$/);
    expect(r.attributes.MessageGroupId).toBe('user:a');
    expect(r.attributes.MessageDeduplicationId).toMatch(/^[0-9a-f]{64}$/);
    expect(r.attributes.ApproximateReceiveCount).toBe('1');
    expect(r.receiptHandle).toBeTruthy();
    expect(JSON.parse(r.body)).toMatchObject({ subject: 'user:a', eventId: 'e1' });
    const aOrder = records.filter((x) => x.attributes.MessageGroupId === 'user:a').map((x) => JSON.parse(x.body).eventId);
    expect(aOrder).toEqual(['e1', 'e2', 'e3']);
    expect(queue.depth).toBe(0);
  });

  it('respects batchSize', async () => {
    const sizes: number[] = [];
    queue = await make({ batchSize: 2, consumer: async (e) => void sizes.push(e.Records.length) });
    await queue.enqueue([1, 2, 3, 4, 5].map((i) => msg(`user:u${i}`, 'e')));
    await queue.drain(2000);
    expect(sizes.every((s) => s <= 2)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(5);
  });

  it('drops a message with the same dedupe id within the window, accepts it after', async () => {
    let n = 0;
    queue = await make({ dedupeWindowMs: 50, consumer: async (e) => void (n += e.Records.length) });
    await queue.enqueue([msg('user:a', 'e1')]);
    await queue.enqueue([msg('user:a', 'e1')]);
    await queue.drain(2000);
    expect(n).toBe(1);
    await new Promise((r) => setTimeout(r, 60));
    await queue.enqueue([msg('user:a', 'e1')]);
    await queue.drain(2000);
    expect(n).toBe(2);
  });

  it('does not deliver a group’s next message while one is in flight', async () => {
    const active = new Set<string>();
    let overlap = false;
    const order: string[] = [];
    queue = await make({
      batchSize: 1,
      consumer: async (e) => {
        const r = e.Records[0]!;
        const g = r.attributes.MessageGroupId!;
        if (active.has(g)) overlap = true;
        active.add(g);
        await new Promise((res) => setTimeout(res, 5));
        order.push(JSON.parse(r.body).eventId);
        active.delete(g);
      },
    });
    await queue.enqueue([msg('user:a', 'e1'), msg('user:a', 'e2'), msg('user:a', 'e3')]);
    await queue.drain(2000);
    expect(overlap).toBe(false);
    expect(order).toEqual(['e1', 'e2', 'e3']);
  });

  it('retries only reported failures, plus the failed group’s later messages, in order', async () => {
    const deliveries: string[][] = [];
    let failedOnce = false;
    queue = await make({
      retryDelayMs: 1,
      consumer: async (e): Promise<SQSBatchResponse> => {
        deliveries.push(e.Records.map((r) => `${r.attributes.MessageGroupId}/${JSON.parse(r.body).eventId}#${r.attributes.ApproximateReceiveCount}`));
        const failures = [];
        for (const r of e.Records) {
          if (!failedOnce && JSON.parse(r.body).eventId === 'a2') {
            failedOnce = true;
            failures.push({ itemIdentifier: r.messageId });
          }
        }
        return { batchItemFailures: failures };
      },
    });
    await queue.enqueue([msg('user:a', 'a1'), msg('user:a', 'a2'), msg('user:a', 'a3'), msg('user:b', 'b1')]);
    await queue.drain(2000);
    expect(deliveries[0]).toEqual(['user:a/a1#1', 'user:a/a2#1', 'user:a/a3#1', 'user:b/b1#1']);
    // a1 and b1 succeeded and are not redelivered; a2 retried, and a3 (after it in its group) with it.
    expect(deliveries.slice(1).flat()).toEqual(['user:a/a2#2', 'user:a/a3#2']);
    expect(queue.deadLetters).toEqual([]);
  });

  it('a thrown error fails the whole batch; after maxReceiveCount the message is dead-lettered with the reason, and redrive replays it', async () => {
    let calls = 0;
    let healthy = false;
    const done: string[] = [];
    queue = await make({
      retryDelayMs: 1,
      maxReceiveCount: 3,
      consumer: async (e) => {
        calls++;
        if (!healthy) throw new Error('target down');
        done.push(...e.Records.map((r) => JSON.parse(r.body).eventId));
      },
    });
    await queue.enqueue([msg('user:a', 'e1')]);
    await queue.drain(2000);
    expect(calls).toBe(3);
    expect(queue.deadLetters).toHaveLength(1);
    expect(queue.deadLetters[0]).toMatchObject({ reason: 'Error: target down', receiveCount: 3, message: { eventId: 'e1' } });
    expect(queue.depth).toBe(0);
    healthy = true;
    expect(await queue.redrive('e1')).toBe(1);
    await queue.drain(2000);
    expect(done).toEqual(['e1']);
    expect(queue.deadLetters).toEqual([]);
  });

  it('backs off between retries and blocks the group meanwhile, not other groups', async () => {
    const times: Record<string, number[]> = {};
    queue = await make({
      retryDelayMs: 40,
      maxReceiveCount: 2,
      consumer: async (e) => {
        const failures = [];
        for (const r of e.Records) {
          const id = JSON.parse(r.body).eventId;
          (times[id] ??= []).push(Date.now());
          if (id === 'bad') failures.push({ itemIdentifier: r.messageId });
        }
        return { batchItemFailures: failures };
      },
    });
    await queue.enqueue([msg('user:a', 'bad'), msg('user:a', 'after'), msg('user:b', 'other')]);
    await queue.drain(3000);
    expect(times.bad).toHaveLength(2);
    expect(times.bad![1]! - times.bad![0]!).toBeGreaterThanOrEqual(35);
    // 'after' was delivered with 'bad' each time (returned without blame), then processed once more after 'bad' was dead-lettered.
    expect(times.after!.length).toBe(3);
    expect(times.other).toHaveLength(1);
    expect(queue.deadLetters.map((d) => d.message.eventId)).toEqual(['bad']);
  });

  it('waits for a consumer; setConsumer starts delivery', async () => {
    queue = await make();
    queue.start();
    await queue.enqueue([msg('party:7', 'e1')]);
    await new Promise((r) => setTimeout(r, 10));
    expect(queue.depth).toBe(1);
    const got: string[] = [];
    queue.setConsumer(async (e) => void got.push(...e.Records.map((r) => r.attributes.MessageGroupId!)));
    await queue.drain(2000);
    expect(got).toEqual(['party:7']);
  });
  it('park() dead-letters with the reason (redacted) and the receive count of the delivery that parked it', async () => {
    queue = await make({
      consumer: async (e) => {
        for (const r of e.Records) await queue!.park(JSON.parse(r.body), `permanent: mobile 13800138000 refused`);
      },
    });
    await queue.enqueue([msg('user:a', 'e1')]);
    await queue.drain(2000);
    expect(queue.depth).toBe(0);
    expect(queue.deadLetters).toEqual([
      { messageId: expect.any(String), message: msg('user:a', 'e1'), reason: expect.stringMatching(/^permanent: mobile \S+ refused$/), receiveCount: 1 },
    ]);
    expect(queue.deadLetters[0]!.reason).not.toContain('13800138000');
    await queue.park(msg('mailbox:malformed:x', 'm1'), 'malformed message'); // not a message of this queue
    expect(queue.deadLetters.map((d) => [d.message.eventId, d.receiveCount])).toEqual([
      ['e1', 1],
      ['m1', 0],
    ]);
  });

  it('redrive of a parked message delivers it once more, then it is gone', async () => {
    const got: string[] = [];
    let park = true;
    queue = await make({
      consumer: async (e) => {
        for (const r of e.Records) {
          if (park) await queue!.park(JSON.parse(r.body), 'permanent: no');
          else got.push(`${JSON.parse(r.body).eventId}#${r.attributes.ApproximateReceiveCount}`);
        }
      },
    });
    await queue.enqueue([msg('user:a', 'e1'), msg('user:b', 'e2')]);
    await queue.drain(2000);
    park = false;
    expect(await queue.redrive('nope')).toBe(0);
    expect(await queue.redrive(queue.deadLetters[1]!.messageId)).toBe(1);
    await queue.drain(2000);
    expect(got).toEqual(['e2#1']);
    expect(await queue.redrive()).toBe(1);
    await queue.drain(2000);
    expect(got).toEqual(['e2#1', 'e1#1']);
    expect(queue.deadLetters).toEqual([]);
  });

  it('a dedupe id stays taken past its window while its message still waits (deliberate deviation)', async () => {
    queue = await make({ dedupeWindowMs: 20 });
    await queue.enqueue([msg('user:a', 'e1')]);
    await new Promise((r) => setTimeout(r, 30));
    await queue.enqueue([msg('user:a', 'e1')]);
    expect(queue.depth).toBe(1);
    let n = 0;
    queue.setConsumer(async (e) => void (n += e.Records.length));
    await queue.drain(2000);
    await queue.enqueue([msg('user:a', 'e1')]); // delivered and past its window: a new message
    await queue.drain(2000);
    expect(n).toBe(2);
  });
});
