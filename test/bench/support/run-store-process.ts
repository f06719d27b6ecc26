/**
 * A stand-in for the reconcile table that is not the bottleneck: the in-memory RunStore
 * (functions/store/run-store.ts, the same contract the Dynamo one passes in
 * test/integration/run-store.test.ts) in a CHILD process, spoken to over Node's IPC channel.
 * Its items live outside the benchmark process, as DynamoDB's would, so the reconcile
 * process's heap is its own; and its CPU is its own (/proc), so a figure says whether the
 * store or the product binds. dynalite, the other stand-in, spends ~1 ms of CPU per item
 * written and binds a million-person run by itself.
 *
 * Parent: `startRunStoreProcess()`. Child: this file run directly.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MemoryRunStore, type RunItem, type RunStore } from '../../../functions/store/run-store';
import { VersionConflictError } from '../../../functions/store/ports';

type Op = 'put' | 'get' | 'page' | 'getVersioned' | 'putVersioned';
interface Request {
  id: number;
  op: Op;
  args: unknown[];
}
interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  conflict?: string;
  error?: string;
}

if (process.argv[2] === '--run-store-child' && process.send) {
  const store = new MemoryRunStore();
  process.on('message', (req: Request) => {
    const call = (store[req.op] as (...a: unknown[]) => Promise<unknown>).apply(store, req.args);
    call.then(
      (value) => process.send!({ id: req.id, ok: true, value } satisfies Reply),
      (err: unknown) =>
        process.send!({ id: req.id, ok: false, ...(err instanceof VersionConflictError ? { conflict: err.message } : { error: String(err) }) } satisfies Reply),
    );
  });
  process.send({ id: 0, ok: true, value: 'ready' } satisfies Reply);
}

export interface RunStoreProcess {
  store: RunStore;
  pid: number;
  stop(): Promise<void>;
}

export async function startRunStoreProcess(): Promise<RunStoreProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--run-store-child'], {
    execArgv: ['--max-old-space-size=8192', '--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void }>();
  let seq = 0;
  await new Promise<void>((ok, fail) => {
    child.once('message', () => ok());
    child.once('exit', (code) => fail(new Error(`run store process exited with ${code}`)));
  });
  child.on('message', (r: Reply) => {
    const w = waiting.get(r.id);
    if (!w) return;
    waiting.delete(r.id);
    if (r.ok) w.ok(r.value);
    else w.fail(r.conflict !== undefined ? new VersionConflictError(r.conflict) : new Error(r.error));
  });
  const call = <T>(op: Op, ...args: unknown[]) =>
    new Promise<T>((ok, fail) => {
      const id = ++seq;
      waiting.set(id, { ok: ok as (v: unknown) => void, fail });
      child.send({ id, op, args } satisfies Request);
    });
  return {
    pid: child.pid!,
    store: {
      put: (items: readonly RunItem[]) => call('put', items),
      get: (pk, sk) => call('get', pk, sk),
      page: (pk, opts) => call('page', pk, opts),
      getVersioned: (pk, sk) => call('getVersioned', pk, sk),
      putVersioned: (pk, sk, value, expected) => call('putVersioned', pk, sk, value, expected),
    },
    async stop() {
      child.kill();
      await new Promise((ok) => child.once('exit', ok));
    },
  };
}
