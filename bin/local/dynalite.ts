/**
 * Embedded DynamoDB for the local stack and the tests: dynalite on a free loopback port,
 * spoken to by the real @aws-sdk/client-dynamodb. In memory unless `path` is given
 * (the local stack persists under .data/dynamodb).
 */
import type { AddressInfo } from 'node:net';
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

export async function startDynalite(opts: { path?: string; tables?: Partial<TableNames> } = {}): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(opts.path ? { path: opts.path } : {}) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
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
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
