/** The embedded DynamoDB both ways: in-process (local stack, tests) and as a child process (benchmarks). */
import { GetItemCommand, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { startDynalite } from '../../bin/local/dynalite';

describe.each([false, true])('startDynalite (childProcess %s)', (childProcess) => {
  it('creates the tables, serves the real client, and stops on close', async () => {
    const dyn = await startDynalite({ childProcess });
    try {
      const tables = await dyn.client.send(new ListTablesCommand({}));
      expect(tables.TableNames?.sort()).toEqual(['audit', 'inbox', 'state']);
      await dyn.client.send(new PutItemCommand({ TableName: dyn.tables.inbox, Item: { pk: { S: 'x' } } }));
      const got = await dyn.client.send(new GetItemCommand({ TableName: dyn.tables.inbox, Key: { pk: { S: 'x' } } }));
      expect(got.Item?.pk?.S).toBe('x');
    } finally {
      await dyn.close();
    }
    await expect(fetch(dyn.endpoint, { method: 'POST' })).rejects.toThrow();
  });
});
