/** One DynamoDB client per container, created lazily so cold start pays only for what it uses. */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';

let shared: DynamoDBClient | undefined;

export function dynamoClient(config: DynamoDBClientConfig = {}): DynamoDBClient {
  if (!shared) {
    shared = new DynamoDBClient({
      ...(process.env.DYNAMODB_ENDPOINT ? { endpoint: process.env.DYNAMODB_ENDPOINT } : {}),
      ...config,
    });
  }
  return shared;
}
