/**
 * A table takes writes only once ACTIVE: CreateTable answers while it is CREATING, in DynamoDB
 * and in dynalite alike (dynalite turns it ACTIVE on a timer even with createTableMs 0, and a
 * write before that is refused as ResourceNotFoundException — seen on a loaded CI host when the
 * local data-directory migration refilled a table it had just recreated).
 */
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** Polls DescribeTable until the table is ACTIVE (about 5 s at most). */
export async function waitActive(client: DynamoDBClient, name: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`table ${name} did not become active`);
}
