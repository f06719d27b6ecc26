/**
 * What the durable LocalFifoQueue adds to the shared queue suite (test/unit/local-queue.test.ts):
 * everything it accepted or learnt survives a new process opening the same table. A "crash"
 * here is a queue abandoned without close() while its consumer never returns; the real kill -9
 * is in local-queue-kill.test.ts. One in-memory dynalite, a namespace per test.
 */
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { LocalFifoQueue, type DurableQueueOptions } from '../../bin/local/queue';
import { LOCAL_QUEUE_TABLE, messageKey, QueueStore, type QueueItem } from '../../bin/local/queue-store';
import { messageDeduplicationId } from '../../functions/queue/dedupe';
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
const eventId = (r: SQSRecord) => (JSON.parse(r.body) as SyncMessage).eventId;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const never = () => new Promise<void>(() => {});
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

let dyn: LocalDynamo;
let n = 0;
beforeAll(async () => void (dyn = await startDynalite()));
afterAll(async () => dyn.close());

/** A fresh namespace and an opener for it: every open() is a new "process" on the same table. */
function namespace() {
  const ns = `durability-${++n}`;
  return {
    open: (opts: Partial<DurableQueueOptions> = {}) => LocalFifoQueue.open({ client: dyn.client, namespace: ns, ...opts }),
    /** The raw items, as the next process would read them. */
    items: async () => (await new QueueStore(dyn.client, LOCAL_QUEUE_TABLE, ns).load()) as QueueItem[],
  };
}

describe('durable LocalFifoQueue', () => {
  it('a message is in the table once enqueue() resolves; a new process delivers them in per-group order', async () => {
    const { open } = namespace();
    const q1 = await open();
    await q1.enqueue([msg('user:a', 'a1'), msg('user:b', 'b1')]);
    for (const id of ['a2', 'a3']) await q1.enqueue([msg('user:a', id)]);
    await q1.enqueue([msg('user:b', 'b2')]);
    // no close(): the process is gone

    const got: SQSRecord[] = [];
    const q2 = await open({ consumer: async (e) => void got.push(...e.Records) });
    expect(q2.depth).toBe(5);
    await q2.drain(3000);
    const order = (g: string) => got.filter((r) => r.attributes.MessageGroupId === g).map(eventId);
    expect(order('user:a')).toEqual(['a1', 'a2', 'a3']);
    expect(order('user:b')).toEqual(['b1', 'b2']);
    expect(got.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['1', '1', '1', '1', '1']);
    await q2.close();
    expect((await open()).depth).toBe(0);
  });

  it('records a delivery (receive count, invisibleUntil) before the consumer runs, and a retry time after a failure', async () => {
    const { open, items } = namespace();
    let seen: QueueItem[] = [];
    const q1 = await open({
      visibilityTimeoutMs: 5000,
      retryDelayMs: 20_000,
      consumer: async (e) => {
        seen = await items();
        return { batchItemFailures: e.Records.map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    const before = Date.now();
    await q1.enqueue([msg('user:a', 'e1')]);
    q1.start();
    await until(() => seen.length > 0);
    await q1.close();
    expect(seen[0]).toMatchObject({ state: 'queued', receiveCount: 1 });
    expect(seen[0]!.invisibleUntil).toBeGreaterThanOrEqual(before + 5000);
    const [after] = await items();
    expect(after).toMatchObject({ state: 'queued', receiveCount: 1, invisibleUntil: undefined });
    expect(after!.visibleAt).toBeGreaterThanOrEqual(before + 20_000);

    // The next process respects the backoff it finds.
    let calls = 0;
    const q2 = await open({ consumer: async () => void calls++ });
    q2.start();
    await sleep(100);
    expect([calls, q2.depth]).toEqual([0, 1]);
    await q2.close();
  });

  it('in flight at a crash: delivered again only after its invisibleUntil, with the receive count incremented; other groups are not held', async () => {
    const { open, items } = namespace();
    let started = false;
    const q1 = await open({ batchSize: 1, visibilityTimeoutMs: 400, consumer: async () => {
        started = true;
        return never(); // the process dies while working on it
      },
    });
    await q1.enqueue([msg('user:a', 'a1'), msg('user:a', 'a2'), msg('user:b', 'b1')]);
    q1.start();
    await until(() => started);
    q1.stop(); // crash: the consumer never returns, nothing more is written
    const invisibleUntil = (await items()).find((i) => i.invisibleUntil !== undefined)!.invisibleUntil!;

    const got: Array<{ id: string; count: string; at: number }> = [];
    const q2 = await open({
      visibilityTimeoutMs: 400,
      consumer: async (e: SQSEvent) => void got.push(...e.Records.map((r) => ({ id: eventId(r), count: r.attributes.ApproximateReceiveCount, at: Date.now() }))),
    });
    await q2.drain(5000);
    expect(got.map((g) => `${g.id}#${g.count}`)).toEqual(['b1#1', 'a1#2', 'a2#1']);
    expect(got[0]!.at).toBeLessThan(invisibleUntil); // b1 was not in flight: no wait
    expect(got[1]!.at).toBeGreaterThanOrEqual(invisibleUntil);
    await q2.close();
  });

  it('a poison message that kills the process at every delivery ends in the dead letters after maxReceiveCount', async () => {
    const { open } = namespace();
    const counts: string[] = [];
    let q!: LocalFifoQueue;
    for (let run = 0; run < 3; run++) {
      let started = false;
      q = await open({
        maxReceiveCount: 3,
        visibilityTimeoutMs: 30,
        batchSize: 1, // a batch-mate would share its fate, as with SQS + Lambda
        consumer: async (e) => {
          counts.push(e.Records[0]!.attributes.ApproximateReceiveCount!);
          started = true;
          return never(); // the process dies while working on it
        },
      });
      if (run === 0) await q.enqueue([msg('user:a', 'poison'), msg('user:a', 'next')]);
      q.start();
      await until(() => started);
      q.stop();
    }
    expect(counts).toEqual(['1', '2', '3']);
    const after: string[] = [];
    q = await open({ maxReceiveCount: 3, consumer: async (e) => void after.push(...e.Records.map(eventId)) });
    expect(q.deadLetters).toEqual([
      { messageId: expect.any(String), message: msg('user:a', 'poison'), reason: 'the process ended during delivery 3 of 3', receiveCount: 3 },
    ]);
    await q.drain(3000);
    expect(after).toEqual(['next']);
    await q.close();
    expect((await open()).deadLetters).toHaveLength(1);
  });

  it('dead letters keep their reason, receive count and order across a reopen; redrive is durable and not swallowed by the dedupe window', async () => {
    const { open } = namespace();
    let q = await open({
      maxReceiveCount: 2,
      retryDelayMs: 1,
      consumer: async (e) => {
        const failures = [];
        for (const r of e.Records) {
          if (eventId(r) === 'e1') failures.push({ itemIdentifier: r.messageId });
          else await q.park(JSON.parse(r.body), 'permanent: WecomApiError(60020)');
        }
        return { batchItemFailures: failures };
      },
    });
    await q.enqueue([msg('user:a', 'e1'), msg('user:b', 'e2')]);
    await q.drain(3000);
    const dead = q.deadLetters;
    expect(dead.map((d) => [d.message.eventId, d.reason, d.receiveCount])).toEqual([
      ['e2', 'permanent: WecomApiError(60020)', 1],
      ['e1', 'reported in batchItemFailures', 2],
    ]);
    await q.close();

    q = await open();
    expect(q.deadLetters).toEqual(dead);
    expect(await q.redrive()).toBe(2);
    await q.close(); // nothing delivered yet

    const got: string[] = [];
    q = await open({ consumer: async (e) => void got.push(...e.Records.map((r) => `${eventId(r)}#${r.attributes.ApproximateReceiveCount}`)) });
    expect([q.depth, q.deadLetters.length]).toEqual([2, 0]);
    await q.drain(3000);
    expect(got.sort()).toEqual(['e1#1', 'e2#1']);
    await q.close();
    q = await open();
    expect([q.depth, q.deadLetters.length]).toEqual([0, 0]);
  });

  it('dedupe holds across a reopen within the window, whether the message was processed or still waits; not after it', async () => {
    const { open, items } = namespace();
    const got: string[] = [];
    const consumer = async (e: SQSEvent) => void got.push(...e.Records.map(eventId));
    let q = await open({ dedupeWindowMs: 300, consumer });
    await q.enqueue([msg('user:a', 'done')]);
    await q.drain(2000);
    await q.enqueue([msg('user:b', 'waiting')]);
    await q.close();

    q = await open({ dedupeWindowMs: 300, consumer });
    await q.enqueue([msg('user:a', 'done'), msg('user:b', 'waiting')]);
    expect(q.depth).toBe(1);
    await q.drain(2000);
    expect(got).toEqual(['done', 'waiting']);
    await q.close();

    await sleep(320);
    q = await open({ dedupeWindowMs: 300, consumer });
    expect(await items()).toEqual([]); // expired markers are cleared at open
    await q.enqueue([msg('user:a', 'done')]);
    await q.drain(2000);
    expect(got).toEqual(['done', 'waiting', 'done']);
    await q.close();
  });

  it('sequence numbers keep growing after a restart; namespaces do not see each other', async () => {
    const a = namespace();
    const b = namespace();
    const seqs: bigint[] = [];
    const consumer = async (e: SQSEvent) => void seqs.push(...e.Records.map((r) => BigInt(r.attributes.SequenceNumber!)));
    let q = await a.open({ consumer });
    await q.enqueue([msg('user:a', 'e1')]);
    await q.drain(2000);
    await q.close();
    await (await b.open()).enqueue([msg('user:a', 'other')]);
    q = await a.open({ consumer });
    expect(q.depth).toBe(0);
    await q.enqueue([msg('user:a', 'e2')]);
    await q.drain(2000);
    expect(seqs).toHaveLength(2);
    expect(seqs[1]!).toBeGreaterThan(seqs[0]!);
    expect((await b.open()).depth).toBe(1);
    await q.close();
  });

  it('a group moves on only once its outcome is written (other groups need not wait for it)', async () => {
    const { open, items } = namespace();
    const slow = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dyn.endpoint });
    slow.middlewareStack.add(
      (next, context) => async (args) => {
        if ((context as { commandName?: string }).commandName === 'BatchWriteItemCommand') await sleep(60);
        return next(args);
      },
      { step: 'initialize', name: 'slowWrites' },
    );
    const seen: Array<[string, string | undefined]> = [];
    const q = await open({
      client: slow,
      batchSize: 1,
      consumer: async (e) => {
        const id = eventId(e.Records[0]!);
        // What a new process would find for a1 at this moment.
        const a1 = (await items()).find((i) => i.key === messageKey(messageDeduplicationId(msg('user:a', 'a1'))));
        seen.push([id, a1?.state]);
      },
    });
    await q.enqueue([msg('user:a', 'a1'), msg('user:a', 'a2'), msg('user:b', 'b1')]);
    await q.drain(3000);
    expect(seen.map(([id]) => id)).toEqual(['a1', 'b1', 'a2']);
    expect(seen.find(([id]) => id === 'a2')![1]).toBe('done'); // a1's marker was written first
    await q.close();
    slow.destroy();
  });

  it('a failed write rejects enqueue and leaves nothing behind; the retry is accepted', async () => {
    const { open } = namespace();
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dyn.endpoint, maxAttempts: 1 });
    let failNext = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (failNext && (context as { commandName?: string }).commandName === 'PutItemCommand') {
          failNext = false;
          throw Object.assign(new Error('connection reset'), { name: 'NetworkError' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'failOnce' },
    );
    const q = await open({ client });
    failNext = true;
    await expect(q.enqueue([msg('user:a', 'e1')])).rejects.toThrow('connection reset');
    expect(q.depth).toBe(0);
    expect((await open()).depth).toBe(0);
    await q.enqueue([msg('user:a', 'e1')]);
    expect(q.depth).toBe(1);
    expect((await open()).depth).toBe(1);
    client.destroy();
  });

  it('a delivery that could not be recorded is not handed to the consumer, and is tried again later without counting', async () => {
    const { open } = namespace();
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dyn.endpoint, maxAttempts: 1 });
    let failNext = true;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (failNext && (context as { commandName?: string }).commandName === 'BatchWriteItemCommand') {
          failNext = false;
          throw Object.assign(new Error('connection reset'), { name: 'NetworkError' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'failOnce' },
    );
    const got: string[] = [];
    const q = await open({ client, retryDelayMs: 10, consumer: async (e) => void got.push(...e.Records.map((r) => r.attributes.ApproximateReceiveCount!)) });
    await q.enqueue([msg('user:a', 'e1')]);
    await q.drain(2000);
    expect([failNext, got]).toEqual([false, ['1']]);
    await q.close();
    client.destroy();
  });

  it('close() waits for the outcome of the batch in flight', async () => {
    const { open } = namespace();
    let started = false;
    const q = await open({
      consumer: async () => {
        started = true;
        await sleep(100);
      },
    });
    await q.enqueue([msg('user:a', 'e1')]);
    q.start();
    await until(() => started);
    await q.close();
    expect((await open()).depth).toBe(0);
  });
});
