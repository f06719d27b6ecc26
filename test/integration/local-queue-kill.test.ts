/**
 * A real kill -9 of a process holding a durable LocalFifoQueue on a disk-backed dynalite
 * (test/support/queue-kill-child.ts), then a new queue on the same files: every message whose
 * enqueue() was acknowledged is delivered exactly once, in per-group order; a delivery that was
 * in flight at the kill is repeated, but not before its recorded invisibleUntil; finished work
 * is not repeated (but for the batch whose outcome was being written, as SQS may).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { LocalFifoQueue } from '../../bin/local/queue';
import { LOCAL_QUEUE_TABLE, QueueStore, type QueueItem } from '../../bin/local/queue-store';
import type { SyncMessage } from '../../functions/queue/messages';
import { KILL_NAMESPACE } from '../support/queue-kill-child';

const CHILD = join(import.meta.dirname, '../support/queue-kill-child.ts');

interface Child {
  lines: string[];
  /** Resolves once a line satisfies `pred` (rejects if the child exits first). */
  waitFor(pred: (lines: string[]) => boolean, ms?: number): Promise<void>;
  /** SIGKILL, then every line it printed before dying. */
  kill(): Promise<string[]>;
}

function startChild(args: string[]): Child {
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let listeners: Array<() => void> = [];
  proc.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const f of listeners) f();
  });
  const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  return {
    lines,
    waitFor: (pred, ms = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pred(lines)) return;
          listeners = listeners.filter((f) => f !== check);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => reject(new Error(`child did not get there: ${stderr.slice(-500)}`)), ms);
        void closed.then(() => setTimeout(() => reject(new Error(`child exited: ${stderr.slice(-500)}`)), 10));
        listeners.push(check);
        check();
      }),
    kill: async () => {
      proc.kill('SIGKILL');
      await closed; // stdout fully read
      return lines;
    },
  };
}

const idx = (eventId: string) => Number(eventId.slice(1));
const acked = (lines: string[]) => lines.filter((l) => l.startsWith('ack ')).map((l) => l.slice(4));

/** Per group, event ids in increasing index order. */
function expectGroupOrder(eventIds: string[]): void {
  const last = new Map<number, number>();
  for (const id of eventIds) {
    const g = idx(id) % 5;
    expect(idx(id), `group g${g} out of order at ${id}`).toBeGreaterThan(last.get(g) ?? -1);
    last.set(g, idx(id));
  }
}

let dir: string | undefined;
let dyn: LocalDynamo | undefined;
let queue: LocalFifoQueue | undefined;
afterEach(async () => {
  await queue?.close();
  await dyn?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  [queue, dyn, dir] = [undefined, undefined, undefined];
});

async function reopen(): Promise<{ raw: QueueItem[]; got: Array<{ r: SQSRecord; at: number }> }> {
  dyn = await startDynalite({ path: dir! });
  // What the dead process left, read before the new queue changes it.
  const raw = (await new QueueStore(dyn.client, LOCAL_QUEUE_TABLE, KILL_NAMESPACE).load()).filter((i): i is QueueItem => i.state !== 'done');
  const got: Array<{ r: SQSRecord; at: number }> = [];
  queue = await LocalFifoQueue.open({
    client: dyn.client,
    namespace: KILL_NAMESPACE,
    consumer: async (e) => void got.push(...e.Records.map((r) => ({ r, at: Date.now() }))),
  });
  await queue.drain(20_000);
  return { raw, got };
}
const eventIdOf = (r: SQSRecord) => (JSON.parse(r.body) as SyncMessage).eventId;

describe('durable LocalFifoQueue under kill -9', () => {
  it('killed while enqueueing: every acknowledged message is delivered exactly once, in per-group order', async () => {
    dir = mkdtempSync(join(tmpdir(), 'queue-kill-'));
    const n = 3000;
    const child = startChild(['enqueue', dir, String(n)]);
    await child.waitFor((l) => acked(l).length >= 150);
    const ack = acked(await child.kill());
    expect(ack.length).toBeLessThan(n); // really killed mid-way

    const { got } = await reopen();
    const delivered = got.map((g) => eventIdOf(g.r));
    expect(new Set(delivered).size).toBe(delivered.length); // no duplicates
    expect(delivered.filter((id) => !ack.includes(id))).toEqual(
      // at most the one whose write finished as the kill landed, before its ack was printed
      delivered.filter((id) => id === `e${ack.length}`),
    );
    expect([...delivered].filter((id) => ack.includes(id)).sort()).toEqual([...ack].sort());
    expectGroupOrder(delivered);
    expect(got.every((g) => g.r.attributes.ApproximateReceiveCount === '1')).toBe(true);
  }, 60_000);

  it('killed while consuming: nothing acknowledged is lost, finished work is not repeated, and the batch in flight comes back only after its invisibleUntil', async () => {
    dir = mkdtempSync(join(tmpdir(), 'queue-kill-'));
    const n = 20;
    const visibilityMs = 2000;
    const child = startChild(['consume', dir, String(n), String(visibilityMs), '300']);
    // Kill during the third batch (batches of 2). On a busy machine the kill may land a little
    // later (between a delivery write and its `start` line): the checks allow for it.
    await child.waitFor((l) => l.filter((x) => x.startsWith('start ')).length >= 5);
    const lines = await child.kill();
    const killedAt = Date.now();
    const ack = acked(lines);
    expect(ack).toHaveLength(n);
    const done = lines.filter((l) => l.startsWith('done ')).map((l) => l.slice(5));
    const started = new Map(
      lines.filter((l) => l.startsWith('start ')).map((l) => {
        const [, id, count, at] = l.split(' ');
        return [id!, { count: Number(count), at: Number(at) }];
      }),
    );
    const inFlight = [...started.keys()].filter((id) => !done.includes(id));
    expect(done.length).toBeGreaterThanOrEqual(4);
    expect(inFlight.length).toBeGreaterThan(0);
    // The batch finished just before the one in flight may come back (at least once, as SQS):
    // its outcome is written while the next batch starts. Any earlier one must not.
    const mayRepeat: string[] = [];
    const firstInFlight = lines.findIndex((l) => l.startsWith('start ') && inFlight.includes(l.split(' ')[1]!));
    for (let i = firstInFlight - 1; i >= 0 && lines[i]!.startsWith('done '); i--) mayRepeat.push(lines[i]!.slice(5));

    const { raw, got } = await reopen();
    const delivered = got.map((g) => eventIdOf(g.r));
    expect(new Set(delivered).size).toBe(delivered.length);
    const repeated = delivered.filter((id) => done.includes(id));
    expect(mayRepeat).toEqual(expect.arrayContaining(repeated));
    expect(delivered.filter((id) => !done.includes(id)).sort()).toEqual(ack.filter((id) => !done.includes(id)).sort());
    expectGroupOrder([...done.filter((id) => !repeated.includes(id)), ...delivered]);

    const persisted = new Map(raw.map((i) => [i.messageId, i]));
    for (const { r, at } of got) {
      const id = eventIdOf(r);
      const before = persisted.get(r.messageId)!;
      // The receive count the dead process had recorded, plus this delivery.
      expect(Number(r.attributes.ApproximateReceiveCount)).toBe(before.receiveCount + 1);
      if (before.invisibleUntil !== undefined) expect(at, `${id} delivered before its invisibleUntil`).toBeGreaterThanOrEqual(before.invisibleUntil);
      if (inFlight.includes(id)) {
        expect(before.receiveCount).toBe(started.get(id)!.count);
        // recorded before the consumer ran, one visibility timeout ahead (less the time from the
        // receive's write to the consumer's `start` line: up to a second on a loaded 2-core host)
        expect(before.invisibleUntil! - started.get(id)!.at).toBeGreaterThan(visibilityMs - 1000);
        expect(before.invisibleUntil! - started.get(id)!.at).toBeLessThanOrEqual(visibilityMs);
      }
    }
    // and the reopen did not simply wait for everything: messages of other groups went first
    expect(got[0]!.at).toBeLessThan(killedAt + visibilityMs);
  }, 60_000);
});
