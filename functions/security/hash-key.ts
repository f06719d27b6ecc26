/**
 * The keyed-hash (HMAC) key: generated once per deployment with GenerateDataKey, stored
 * WRAPPED in the state table's meta item, unwrapped at cold start and cached for the
 * container's life. Only ciphertext of it ever touches DynamoDB.
 *
 * Concurrent cold starts of a fresh deployment could both generate a key; the conditional
 * put (attribute_not_exists) lets exactly one win, and the loser re-reads and uses the
 * winner's key, so every container hashes with the same key.
 */
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMS_APP, type HashKeySource } from './envelope';
import type { EncryptionContext, KeyProvider } from './ports';

export const HASH_KEY_PK = 'meta#hash-key';
export const HASH_KEY_SK = 'meta';
const CONTEXT: EncryptionContext = { app: KMS_APP, purpose: 'hash-key' };

export class StoredHashKey implements HashKeySource {
  private cached?: Promise<Uint8Array>;

  constructor(
    private readonly keys: KeyProvider,
    private readonly dynamo: DynamoDBClient,
    private readonly stateTable: string,
  ) {}

  get(): Promise<Uint8Array> {
    this.cached ??= this.load().catch((err: unknown) => {
      this.cached = undefined; // a transient failure must not poison the container
      throw err;
    });
    return this.cached;
  }

  private async load(): Promise<Uint8Array> {
    const stored = await this.read();
    if (stored) return this.keys.decryptDataKey(stored, CONTEXT);
    const fresh = await this.keys.generateDataKey(CONTEXT);
    try {
      await this.dynamo.send(
        new PutItemCommand({
          TableName: this.stateTable,
          Item: {
            pk: { S: HASH_KEY_PK },
            sk: { S: HASH_KEY_SK },
            wrappedKey: { B: fresh.encrypted },
            createdAt: { S: new Date().toISOString() },
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return fresh.plaintext;
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // Lost the race: another container stored its key first. Use that one.
      const winner = await this.read();
      if (!winner) throw new Error('hash key meta item vanished after a conditional-put conflict');
      return this.keys.decryptDataKey(winner, CONTEXT);
    }
  }

  private async read(): Promise<Uint8Array | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.stateTable,
        Key: { pk: { S: HASH_KEY_PK }, sk: { S: HASH_KEY_SK } },
        ConsistentRead: true,
      }),
    );
    return out.Item?.wrappedKey?.B;
  }
}
