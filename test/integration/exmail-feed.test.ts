/**
 * Exmail's operation-log feed as the deployment runs it: the cursor in the state table
 * (mailbox/feed-cursor.ts on DynamoStateStore, dynalite), the messages through SqsWorkQueue
 * into a FIFO queue that dedupes on MessageDeduplicationId (loopback SQS), a cold start for
 * every scheduled run. Exactly once across restarts and across a crash between the enqueue and
 * the cursor write; a one-hour outage (stack and simulator restarted, the simulator from its
 * journal) recovered from the stored cursor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_AWS, startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { createExmailSim, type ExmailSim } from '../../bin/local/sim/exmail';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { stateFeedCursor } from '../../functions/mailbox/feed-cursor';
import { exmail } from '../../functions/mailbox/exmail/index';
import type { FeedCursorStore } from '../../functions/mailbox/provider';
import type { SyncMessage } from '../../functions/queue/messages';
import { SqsWorkQueue } from '../../functions/queue/sqs';
import { DynamoStateStore } from '../../functions/store/state';
import { startLoopbackSqs, type LoopbackSqs } from '../support/aws-json-loopback';

const SECRET = { corpId: 'wm-int', contactsSecret: 'c-int', logSecret: 'l-int', webhookSecret: 'w' };
const MIN = 60_000;

let dyn: LocalDynamo;
let sqs: LoopbackSqs;
let sqsClient: SQSClient;
let dir: string;

beforeAll(async () => {
  dyn = await startDynalite();
  sqs = await startLoopbackSqs();
  sqsClient = new SQSClient({ ...LOCAL_AWS, endpoint: sqs.endpoint });
  dir = mkdtempSync(join(tmpdir(), 'exmail-feed-'));
});
afterAll(async () => {
  sqsClient?.destroy();
  await sqs?.close();
  await dyn?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One deployment's world: a clock, a state table provider key, the queue. */
function world(provider: string) {
  const clock = { t: Date.parse('2026-12-03T01:00:00Z') };
  const now = () => new Date(clock.t);
  const state = new DynamoStateStore(dyn.client, dyn.tables.state);
  // The table is shared by the tests: each uses its own provider key for the cursor record.
  const cursor = stateFeedCursor(state, provider, now);
  const queue = new SqsWorkQueue(sqsClient, sqs.queueUrl);
  const sent = () => sqs.messages.map((m) => JSON.parse(m.MessageBody) as SyncMessage).filter((m) => m.operator === 'exmail-log' && m.subject.endsWith(`@${provider}.test`));
  /** A scheduled run: a cold start (new connection) on the simulator at `baseUrl`. */
  const run = (baseUrl: string, store: FeedCursorStore = cursor) =>
    exmail
      .create(parseRuntimeConfig({ provider: 'exmail', mailDomain: `${provider}.test`, exmail: { apiBase: baseUrl } }), SECRET, {
        now,
        sleep: async () => undefined,
        feed: { cursor: store, enqueue: (m) => queue.enqueue(m) },
      })
      .feed.upkeep();
  return { clock, now, state, cursor, sent, run };
}

function simOf(w: { now: () => Date }, domain: string, persistDir?: string): ExmailSim {
  return createExmailSim({ ...SECRET, domains: [domain], now: w.now, ...(persistDir ? { persistDir } : {}) });
}

describe('Exmail log feed on the state table and a FIFO queue', () => {
  it('exactly once across cold starts and across a crash between the enqueue and the cursor write', async () => {
    const w = world('a');
    const sim = simOf(w, 'a.test');
    const server = await sim.start();
    try {
      const u = ['p0', 'p1', 'p2', 'p3'].map((p) => sim.seedUser({ userid: `${p}@a.test`, name: p, extid: p }));
      expect(await w.run(server.baseUrl)).toEqual({ kind: 'poll', caughtUp: { changed: 0, full: true } });
      expect(JSON.parse((await w.state.get('mailbox:a:feed-cursor'))!.fields.cursor as string)).toMatchObject({ v: 1 });

      w.clock.t += MIN;
      sim.console.disable(u[0]!.userid);
      w.clock.t += 1000;
      sim.console.delete(u[1]!.userid);
      w.clock.t += MIN;
      expect(await w.run(server.baseUrl)).toMatchObject({ caughtUp: { changed: 2 } });

      w.clock.t += MIN;
      sim.console.disable(u[2]!.userid);
      w.clock.t += 1000;
      sim.console.disable(u[3]!.userid);
      w.clock.t += MIN;
      // The function dies after sending, before the cursor is stored.
      let crashed = false;
      const dying: FeedCursorStore = {
        get: () => w.cursor.get(),
        put: async (c) => {
          if (!crashed) {
            crashed = true;
            throw new Error('killed before the cursor write');
          }
          await w.cursor.put(c);
        },
      };
      await expect(w.run(server.baseUrl, dying)).rejects.toThrow(/killed/);
      // The next scheduled run reads the same records, sends the same deduplication ids: SQS drops them.
      expect(await w.run(server.baseUrl)).toMatchObject({ caughtUp: { changed: 2 } });
      expect(await w.run(server.baseUrl)).toMatchObject({ caughtUp: { changed: 0 } });

      expect(w.sent().map((m) => [m.subject, m.hint])).toEqual([
        ['mailbox:exmail:p0@a.test', 'exmail.disabled'],
        ['mailbox:exmail:p1@a.test', 'exmail.deleted'],
        ['mailbox:exmail:p2@a.test', 'exmail.disabled'],
        ['mailbox:exmail:p3@a.test', 'exmail.disabled'],
      ]);
    } finally {
      await server.close();
    }
  });

  it('an hour down (stack and simulator restarted, the simulator from its journal): every change of the hour, once', async () => {
    const w = world('b');
    const persist = join(dir, 'b');
    const first = simOf(w, 'b.test', persist);
    let server = await first.start();
    const users = Array.from({ length: 6 }, (_, i) => first.seedUser({ userid: `p${i}@b.test`, name: `p${i}`, extid: `p${i}` }));
    await w.run(server.baseUrl);
    await server.close();
    // Down for an hour; the administrator keeps working in Exmail's console meanwhile.
    for (const [i, u] of users.entries()) {
      w.clock.t += 10 * MIN;
      if (i % 2) first.console.disable(u.userid);
      else first.console.delete(u.userid);
    }
    const second = simOf(w, 'b.test', persist); // Exmail (the simulator) comes back from its journal
    server = await second.start();
    try {
      expect(second.log.size).toBe(first.log.size);
      expect([...second.users.values()]).toEqual([...first.users.values()]);
      expect(await w.run(server.baseUrl)).toMatchObject({ caughtUp: { changed: 6, full: false } });
      expect(await w.run(server.baseUrl)).toMatchObject({ caughtUp: { changed: 0 } });
      expect(w.sent().map((m) => m.subject)).toEqual(users.map((u) => `mailbox:exmail:${u.userid}`));
    } finally {
      await server.close();
    }
  });
});
