/**
 * Embedded DynamoDB for the local stack and the tests: dynalite on a free loopback port,
 * spoken to by the real @aws-sdk/client-dynamodb. In memory unless `path` is given
 * (the local stack persists under .data/dynamodb).
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ScanCommand,
  type AttributeValue,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
// @ts-expect-error dynalite ships no types
import dynalite from 'dynalite';
import { tableDefinitions, type TableNames } from '../../functions/store/tables';
import { waitActive } from './table-ready';

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
  const tables: TableNames = { inbox: 'inbox', state: 'state', audit: 'audit', reconcile: 'reconcile', ...opts.tables };
  for (const def of tableDefinitions(tables)) await ensureTable(client, def, opts.path);
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

/**
 * Create the table, or bring a table left by an older version up to its definition. dynalite
 * cannot add an index to a table (UpdateTable), so a table whose indexes differ is copied out,
 * recreated and refilled. The copy goes to a file beside the data first (0600): a stack killed
 * in the middle finds it at the next start and finishes the refill.
 */
async function ensureTable(client: DynamoDBClient, def: CreateTableCommandInput, dataPath?: string): Promise<void> {
  const name = def.TableName!;
  const backup = dataPath ? `${dataPath}.${name}.migration.json` : undefined;
  try {
    await client.send(new CreateTableCommand(def));
    await waitActive(client, name);
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    const have = (Table?.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName).sort().join();
    const want = (def.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName).sort().join();
    if (have !== want) {
      const items = await scanAll(client, name);
      if (backup) writeFileSync(backup, JSON.stringify(items, encodeBinary), { mode: 0o600 });
      await dropTable(client, name);
      await client.send(new CreateTableCommand(def));
      await waitActive(client, name);
      await putAll(client, name, items);
      if (backup) rmSync(backup, { force: true });
      return;
    }
  }
  if (backup && existsSync(backup)) {
    // An earlier start died between recreating the table and refilling it.
    await putAll(client, name, JSON.parse(readFileSync(backup, 'utf8'), decodeBinary) as Array<Record<string, AttributeValue>>);
    rmSync(backup, { force: true });
  }
}

/** DeleteTable completes asynchronously even in dynalite: wait until the name is free. */
export async function dropTable(client: DynamoDBClient, name: string): Promise<void> {
  await client.send(new DeleteTableCommand({ TableName: name }));
  for (let i = 0; i < 200; i++) {
    try {
      await client.send(new DescribeTableCommand({ TableName: name }));
    } catch (err) {
      if ((err as Error).name === 'ResourceNotFoundException') return;
      throw err;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`table ${name} was not deleted`);
}

async function scanAll(client: DynamoDBClient, table: string): Promise<Array<Record<string, AttributeValue>>> {
  const items: Array<Record<string, AttributeValue>> = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await client.send(new ScanCommand({ TableName: table, ...(start ? { ExclusiveStartKey: start } : {}) }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

async function putAll(client: DynamoDBClient, table: string, items: Array<Record<string, AttributeValue>>): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let requests = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    while (requests.length) {
      const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
      requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
    }
  }
}

/** Binary attributes (wrapped keys) survive the JSON copy as base64. */
function encodeBinary(_k: string, v: unknown): unknown {
  return v instanceof Uint8Array ? { $b64: Buffer.from(v).toString('base64') } : v;
}
function decodeBinary(_k: string, v: unknown): unknown {
  return v && typeof v === 'object' && typeof (v as { $b64?: unknown }).$b64 === 'string' ? new Uint8Array(Buffer.from((v as { $b64: string }).$b64, 'base64')) : v;
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
