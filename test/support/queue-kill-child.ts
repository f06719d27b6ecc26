/**
 * The process test/integration/local-queue-kill.test.ts kills with SIGKILL: a disk-backed
 * dynalite in this process (as in the local stack) and a durable LocalFifoQueue on it.
 *
 *   node --import tsx test/support/queue-kill-child.ts <enqueue|consume> <dataDir> <n> [visibilityMs] [slowMs]
 *
 * Enqueues n messages one by one over 5 groups (user:g0..g4, event ids e0..e<n-1>) and prints
 * `ack <eventId>` after each enqueue() resolves. In `consume` mode it then delivers in batches
 * of 2 with a slow consumer, printing `start <eventId> <receiveCount> <epoch ms>` when the
 * consumer gets a record and `done <eventId>` when it is about to return. It never exits by
 * itself. stdout is a pipe, which Node writes synchronously on Linux: a printed line was sent
 * before the kill could land.
 */
import { startDynalite } from '../../bin/local/dynalite';
import { LocalFifoQueue } from '../../bin/local/queue';
import type { SyncMessage } from '../../functions/queue/messages';

export const KILL_NAMESPACE = 'kill-test';
export const GROUPS = 5;

export const killTestMessage = (i: number): SyncMessage => ({
  v: 1,
  subject: `user:g${i % GROUPS}`,
  source: 'wecom',
  eventId: `e${i}`,
  operator: 'kill-test',
  receivedAt: '2026-01-01T00:00:00.000Z',
});

async function main(): Promise<void> {
  const [mode, dataDir, n, visibilityMs = '30000', slowMs = '300'] = process.argv.slice(2);
  if ((mode !== 'enqueue' && mode !== 'consume') || !dataDir || !n) throw new Error('usage: <enqueue|consume> <dataDir> <n> [visibilityMs] [slowMs]');
  const dyn = await startDynalite({ path: dataDir });
  const queue = await LocalFifoQueue.open({
    client: dyn.client,
    namespace: KILL_NAMESPACE,
    batchSize: 2,
    visibilityTimeoutMs: Number(visibilityMs),
  });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  for (let i = 0; i < Number(n); i++) {
    await queue.enqueue([killTestMessage(i)]);
    say(`ack e${i}`);
  }
  if (mode === 'consume') {
    queue.setConsumer(async (event) => {
      for (const r of event.Records) say(`start ${(JSON.parse(r.body) as SyncMessage).eventId} ${r.attributes.ApproximateReceiveCount} ${Date.now()}`);
      await new Promise((r) => setTimeout(r, Number(slowMs)));
      for (const r of event.Records) say(`done ${(JSON.parse(r.body) as SyncMessage).eventId}`);
    });
    queue.start();
  }
  say('idle');
  setInterval(() => {}, 60_000); // stay alive until killed
}

// Only when run as the child, not when the test imports the constants above.
if (process.argv[1]?.endsWith('queue-kill-child.ts')) {
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
