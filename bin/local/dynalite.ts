/**
 * Embedded DynamoDB for the local stack and the tests: dynalite on a free loopback port,
 * spoken to by the real @aws-sdk/client-dynamodb. In memory unless `path` is given
 * (the local stack persists under .data/dynamodb).
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
// @ts-expect-error dynalite ships no types
import dynalite from 'dynalite';
import { tableDefinitions, type TableNames } from '../../functions/store/tables';

export interface LocalDynamo {
  endpoint: string;
  client: DynamoDBClient;
  tables: TableNames;
  close(): Promise<void>;
}

/** Fake but syntactically valid credentials: dynalite does not check them, the SDK needs some. */
export const LOCAL_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
};

export interface StartDynaliteOptions {
  path?: string;
  tables?: Partial<TableNames>;
  /**
   * Run dynalite in its own Node process (benchmarks): an in-process dynalite shares the event
   * loop with the code under measurement, which a real DynamoDB never does.
   */
  childProcess?: boolean;
}

export async function startDynalite(opts: StartDynaliteOptions = {}): Promise<LocalDynamo> {
  const { endpoint, stop } = opts.childProcess ? await spawnDynalite(opts.path) : await listenInProcess(opts.path);
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint });
  const tables: TableNames = { inbox: 'inbox', state: 'state', audit: 'audit', ...opts.tables };
  for (const def of tableDefinitions(tables)) {
    try {
      await client.send(new CreateTableCommand(def));
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err;
    }
  }
  return {
    endpoint,
    client,
    tables,
    close: async () => {
      client.destroy();
      await stop();
    },
  };
}

async function listenInProcess(path?: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function spawnDynalite(path?: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const bin = createRequire(import.meta.url).resolve('dynalite/cli.js');
  const args = [bin, '--host', '127.0.0.1', '--port', String(port), '--createTableMs', '0', '--deleteTableMs', '0', '--updateTableMs', '0', ...(path ? ['--path', path] : [])];
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await fetch(endpoint, { method: 'POST' });
      break; // any HTTP answer: it is listening
    } catch {
      if (i > 100 || child.exitCode !== null) throw new Error('dynalite child process did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
