/** The embedded DynamoDB both ways: in-process (local stack, tests) and as a child process (benchmarks). */
import { GetItemCommand, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { dropTable, startDynalite } from '../../bin/local/dynalite';
import { waitActive } from '../../bin/local/table-ready';

describe.each([false, true])('startDynalite (childProcess %s)', (childProcess) => {
  it('creates the tables, serves the real client, and stops on close', async () => {
    const dyn = await startDynalite({ childProcess });
    try {
      const tables = await dyn.client.send(new ListTablesCommand({}));
      expect(tables.TableNames?.sort()).toEqual(['audit', 'inbox', 'reconcile', 'state']);
      await dyn.client.send(new PutItemCommand({ TableName: dyn.tables.inbox, Item: { pk: { S: 'x' } } }));
      const got = await dyn.client.send(new GetItemCommand({ TableName: dyn.tables.inbox, Key: { pk: { S: 'x' } } }));
      expect(got.Item?.pk?.S).toBe('x');
    } finally {
      await dyn.close();
    }
    await expect(fetch(dyn.endpoint, { method: 'POST' })).rejects.toThrow();
  });
});

describe('a data directory left by an older version', () => {
  it('tables whose indexes changed are rebuilt with every item kept (binary attributes included)', async () => {
    const { mkdtempSync, rmSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { CreateTableCommand, DescribeTableCommand, ScanCommand } = await import('@aws-sdk/client-dynamodb');
    const dir = mkdtempSync(join(tmpdir(), 'dynalite-migrate-'));
    const path = join(dir, 'dynamodb');
    try {
      // An "old" state table: same keys, no byHeld index; an inbox without the pending index.
      const old = await startDynalite({ path });
      for (const t of ['state', 'inbox']) {
        const d = await old.client.send(new DescribeTableCommand({ TableName: t }));
        await dropTable(old.client, t);
        await old.client.send(
          new CreateTableCommand({
            TableName: t,
            BillingMode: 'PAY_PER_REQUEST',
            AttributeDefinitions: d.Table!.KeySchema!.map((k) => ({ AttributeName: k.AttributeName!, AttributeType: 'S' })),
            KeySchema: d.Table!.KeySchema!,
          }),
        );
        await waitActive(old.client, t);
      }
      for (let i = 0; i < 60; i++) {
        await old.client.send(new PutItemCommand({ TableName: 'state', Item: { pk: { S: `user:u${i}` }, sk: { S: 'state' }, kind: { S: 'user' }, v: { N: '1' } } }));
      }
      await old.client.send(new PutItemCommand({ TableName: 'state', Item: { pk: { S: 'meta#key' }, sk: { S: 'meta' }, wrapped: { B: new Uint8Array([0, 1, 2, 250]) } } }));
      await old.close();

      const dyn = await startDynalite({ path });
      try {
        const state = await dyn.client.send(new DescribeTableCommand({ TableName: 'state' }));
        expect(state.Table!.GlobalSecondaryIndexes!.map((g) => g.IndexName).sort()).toEqual(['byHeld', 'byKind', 'byTarget']);
        const inbox = await dyn.client.send(new DescribeTableCommand({ TableName: 'inbox' }));
        expect(inbox.Table!.GlobalSecondaryIndexes!.map((g) => g.IndexName)).toEqual(['pending']);
        const items = (await dyn.client.send(new ScanCommand({ TableName: 'state' }))).Items!;
        expect(items).toHaveLength(61);
        const meta = await dyn.client.send(new GetItemCommand({ TableName: 'state', Key: { pk: { S: 'meta#key' }, sk: { S: 'meta' } } }));
        expect([...meta.Item!.wrapped!.B!]).toEqual([0, 1, 2, 250]);
        expect(existsSync(`${path}.state.migration.json`)).toBe(false);
      } finally {
        await dyn.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
