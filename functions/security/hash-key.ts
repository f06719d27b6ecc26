/**
 * Deployment-wide secret keys kept WRAPPED in the state table: generated once with
 * GenerateDataKey, stored as ciphertext in a meta item, unwrapped at cold start and cached
 * for the container's life. Only ciphertext of them ever touches DynamoDB.
 *
 * Two keys use this, each under its own meta item and its own KMS encryption context
 * `purpose` (KMS binds the context to the ciphertext, and IAM can grant one purpose without
 * the other — the subscriptions function may unwrap the audit chain key but not the
 * keyed-hash key):
 *  - `hash-key`: the keyed hash of personal values (equality without decrypting, envelope.ts);
 *  - `audit-chain-key`: the HMAC links of the audit chain (audit-chain-key.ts).
 *
 * Concurrent cold starts of a fresh deployment could both generate a key; the conditional
 * put (attribute_not_exists) lets exactly one win, and the loser re-reads and uses the
 * winner's key, so every container uses the same key.
 */
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMS_APP, type HashKeySource } from './envelope';
import type { EncryptionContext, KeyProvider } from './ports';

/** Which stored key: its meta item and the `purpose` of its KMS encryption context. */
export interface StoredKeySpec {
  pk: string;
  purpose: string;
}

export const HASH_KEY: StoredKeySpec = { pk: 'meta#hash-key', purpose: 'hash-key' };
export const HASH_KEY_PK = HASH_KEY.pk;
export const HASH_KEY_SK = 'meta';

export class StoredKeyMissingError extends Error {
  constructor(purpose: string) {
    super(`no ${purpose} is stored yet (it is created by the first function that needs it)`);
    this.name = 'StoredKeyMissingError';
  }
}

/** The KMS encryption context of a stored key: the app and the key's purpose. */
export function storedKeyContext(spec: StoredKeySpec): EncryptionContext {
  return { app: KMS_APP, purpose: spec.purpose };
}

export interface StoredDataKeyOptions {
  /**
   * Generate and store the key when none exists (default true). Readers that must never
   * write — the audit digest job, `audit verify` — pass false and get StoredKeyMissingError:
   * a verifier that minted a fresh key would report every record as forged.
   */
  create?: boolean;
}

export class StoredDataKey implements HashKeySource {
  private cached?: Promise<Uint8Array>;
  private readonly context: EncryptionContext;
  private readonly create: boolean;

  constructor(
    private readonly keys: KeyProvider,
    private readonly dynamo: DynamoDBClient,
    private readonly stateTable: string,
    private readonly spec: StoredKeySpec,
    opts: StoredDataKeyOptions = {},
  ) {
    this.context = storedKeyContext(spec);
    this.create = opts.create ?? true;
  }

  get(): Promise<Uint8Array> {
    this.cached ??= this.load().catch((err: unknown) => {
      this.cached = undefined; // a transient failure must not poison the container
      throw err;
    });
    return this.cached;
  }

  private async load(): Promise<Uint8Array> {
    const stored = await this.read();
    if (stored) return this.keys.decryptDataKey(stored, this.context);
    if (!this.create) throw new StoredKeyMissingError(this.spec.purpose);
    const fresh = await this.keys.generateDataKey(this.context);
    try {
      await this.dynamo.send(
        new PutItemCommand({
          TableName: this.stateTable,
          Item: {
            pk: { S: this.spec.pk },
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
      if (!winner) throw new Error(`${this.spec.purpose} meta item vanished after a conditional-put conflict`);
      return this.keys.decryptDataKey(winner, this.context);
    }
  }

  private async read(): Promise<Uint8Array | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.stateTable,
        Key: { pk: { S: this.spec.pk }, sk: { S: HASH_KEY_SK } },
        ConsistentRead: true,
      }),
    );
    return out.Item?.wrappedKey?.B;
  }
}

/** The keyed-hash key of the envelope cipher (kept as its own name: it is wired in several places). */
export class StoredHashKey extends StoredDataKey {
  constructor(keys: KeyProvider, dynamo: DynamoDBClient, stateTable: string) {
    super(keys, dynamo, stateTable, HASH_KEY);
  }
}
