/** The SQS batch worker: ordering per FIFO group, retry vs park, malformed bodies, and the loop through LocalFifoQueue. */
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { LocalFifoQueue } from '../../bin/local/queue';
import { MailboxError } from '../../functions/mailbox/directory';
import type { SyncMessage } from '../../functions/queue/messages';
import { createSyncWorkerHandler } from '../../functions/handlers/sync-worker';
import { harness } from '../support/engine-harness';

function record(msg: SyncMessage | string, i: number, receiveCount = 1, group?: string): SQSRecord {
  const body = typeof msg === 'string' ? msg : JSON.stringify(msg);
  return {
    messageId: `m${i}`,
    receiptHandle: `r${i}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: '0',
      SenderId: 'x',
      ApproximateFirstReceiveTimestamp: '0',
      MessageGroupId: group ?? (typeof msg === 'string' ? 'g' : msg.subject),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn',
    awsRegion: 'us-east-1',
  } as SQSRecord;
}

function setup(maxReceiveCount = 5) {
  const h = harness();
  const parked: Array<{ subject: string; reason: string }> = [];
  const deadLetters = { park: async (m: SyncMessage, reason: string) => void parked.push({ subject: m.subject, reason }) };
  const handler = createSyncWorkerHandler({ engineDeps: async () => h.deps, deadLetters, maxReceiveCount });
  const invoke = (records: SQSRecord[]) => handler({ Records: records } as SQSEvent, {} as never);
  return { h, parked, invoke, handler };
}

describe('sync worker', () => {
  it('a malformed body is parked with its reason and acknowledged', async () => {
    const { parked, invoke } = setup();
    const res = await invoke([record('{"not":"a message"}', 1), record('not json', 2)]);
    expect(res.batchItemFailures).toEqual([]);
    expect(parked.map((p) => p.reason)).toEqual(['malformed message', 'malformed message']);
  });

  it('retryable failure → reported, with the rest of its group; other groups proceed', async () => {
    const { h, invoke } = setup();
    h.addUser({ userid: 'a' });
    h.addUser({ userid: 'b' });
    h.mailbox.failCreate = { error: new MailboxError('throttled', true, '429', 1000), times: 1, employeeId: 'a' };
    const a1 = h.message('user:a', 'create_user');
    const a2 = h.message('user:a', 'update_user');
    const b1 = h.message('user:b', 'create_user');
    // 'a' is processed first (its create fails), 'b' in parallel succeeds.
    const res = await invoke([record(a1, 1), record(a2, 2), record(b1, 3)]);
    expect(res.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m1', 'm2']);
    expect(h.account('b')).toHaveLength(1);
    expect(h.account('a')).toHaveLength(0);
  });

  it('permanent failure → parked with the reason, audited failed, acknowledged (not a batch failure)', async () => {
    const { h, parked, invoke } = setup();
    h.addUser({ userid: 'p' });
    h.mailbox.failCreate = { error: new MailboxError('Request_BadRequest: invalid usageLocation', false, '400'), times: 1 };
    const res = await invoke([record(h.message('user:p', 'create_user'), 1)]);
    expect(res.batchItemFailures).toEqual([]);
    expect(parked).toEqual([{ subject: 'user:p', reason: expect.stringMatching(/^permanent: MailboxError\(400\): Request_BadRequest/) }]);
    const failed = h.audit.records.filter((r) => r.action === 'failed');
    expect(failed.map((f) => f.reason)).toEqual([expect.stringMatching(/mailbox creation failed/), expect.stringMatching(/parked in the dead-letter queue: permanent/)]);
  });

  it('retryable failure at the last receive → parked with "retries exhausted"', async () => {
    const { h, parked, invoke } = setup(3);
    h.addUser({ userid: 'r' });
    h.mailbox.failCreate = { error: new MailboxError('service unavailable', true, '503'), times: 1 };
    const res = await invoke([record(h.message('user:r', 'create_user'), 1, 3)]);
    expect(res.batchItemFailures).toEqual([]);
    expect(parked[0]!.reason).toMatch(/^retries exhausted after 3 receives: MailboxError\(503\)/);
  });

  it('through LocalFifoQueue: a flaky mailbox (30% throttled) loses nothing, duplicates and reordering converge', async () => {
    const { h, handler, parked } = setup(8);
    let n = 0;
    const create = h.mailbox.create.bind(h.mailbox);
    const update = h.mailbox.update.bind(h.mailbox);
    const flaky = <T extends unknown[], R>(fn: (...a: T) => Promise<R>) => async (...a: T) => {
      if (++n % 3 === 0) throw new MailboxError('TooManyRequests', true, '429', 5);
      return fn(...a);
    };
    h.mailbox.create = flaky(create);
    h.mailbox.update = flaky(update);
    const queue = new LocalFifoQueue({ consumer: (e) => handler(e, {} as never), retryDelayMs: 1, maxReceiveCount: 8 });
    for (let i = 0; i < 20; i++) h.addUser({ userid: `u${i}`, position: `P${i}` });
    const msgs: SyncMessage[] = [];
    for (let i = 0; i < 20; i++) {
      // update before create (out of order), and a duplicate of the create
      msgs.push(h.message(`user:u${i}`, 'update_user'), h.message(`user:u${i}`, 'create_user'));
    }
    await queue.enqueue(msgs);
    // Duplicate deliveries that got past dedupe (new event ids): must converge, not double-create.
    await queue.enqueue(msgs.map((m) => ({ ...m, eventId: `${m.eventId}-again` })));
    await queue.drain(20_000);
    expect(queue.deadLetters).toEqual([]);
    expect(parked).toEqual([]);
    for (let i = 0; i < 20; i++) {
      const accs = h.account(`u${i}`);
      expect(accs).toHaveLength(1);
      expect(accs[0]).toMatchObject({ jobTitle: `P${i}`, enabled: true });
      expect(h.wecom.users.get(`u${i}`)!.enable).toBe(1);
    }
  });
});
