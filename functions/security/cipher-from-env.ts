/**
 * Wiring helper for handlers and the local stack: the FieldCipher of this container.
 *
 * - `KMS_KEY_ID` set (AWS, or tests with `KMS_ENDPOINT` on loopback): KMS key provider.
 * - otherwise: the local key file `LOCAL_MASTER_KEY_FILE` (default `.data/master.key`).
 *
 * The hash key lives wrapped in the state table (`STATE_TABLE`). One cipher per container,
 * so its data-key caches survive across invocations — that is what keeps KMS calls at
 * about one per several thousand fields instead of one per field.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { storedAuditChainKey, type AuditChainKey } from './audit-chain-key';
import { EnvelopeCipher } from './envelope';
import { StoredHashKey } from './hash-key';
import { LocalFileKeyProvider } from './local-key-provider';
import type { FieldCipher, KeyProvider } from './ports';

let shared: Promise<FieldCipher> | undefined;
let sharedChain: Promise<AuditChainKey> | undefined;

export async function keyProviderFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<KeyProvider> {
  if (env.KMS_KEY_ID) {
    // Imported only on the KMS path: the local stack and most tests never load the KMS client.
    const [{ KMSClient }, { KmsKeyProvider }] = await Promise.all([import('@aws-sdk/client-kms'), import('./kms-key-provider')]);
    const client = new KMSClient(env.KMS_ENDPOINT ? { endpoint: env.KMS_ENDPOINT } : {});
    return new KmsKeyProvider(client, env.KMS_KEY_ID);
  }
  return new LocalFileKeyProvider(env.LOCAL_MASTER_KEY_FILE ?? '.data/master.key');
}

/** Build a cipher from env (no caching: tests and the local stack call this directly). */
export async function createFieldCipher(dynamo: DynamoDBClient, env: NodeJS.ProcessEnv = process.env): Promise<FieldCipher> {
  const stateTable = env.STATE_TABLE;
  if (!stateTable) throw new Error('STATE_TABLE is not set (the hash key is stored there)');
  const keys = await keyProviderFromEnv(env);
  return new EnvelopeCipher({ keys, hashKey: new StoredHashKey(keys, dynamo, stateTable) });
}

/** The container-wide cipher (handlers). A failed build is not cached. */
export function fieldCipherFromEnv(dynamo: DynamoDBClient): Promise<FieldCipher> {
  shared ??= createFieldCipher(dynamo).catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

/**
 * The audit chain key of this container (stored wrapped in STATE_TABLE like the hash key,
 * under its own KMS purpose). `create: false` for functions that only read the audit trail.
 */
export async function createAuditChainKey(dynamo: DynamoDBClient, env: NodeJS.ProcessEnv = process.env, opts: { create?: boolean } = {}): Promise<AuditChainKey> {
  const stateTable = env.STATE_TABLE;
  if (!stateTable) throw new Error('STATE_TABLE is not set (the audit chain key is stored there)');
  return storedAuditChainKey(await keyProviderFromEnv(env), dynamo, stateTable, opts);
}

/** The container-wide chain key of the appending functions (the key itself is cached inside). */
export function auditChainKeyFromEnv(dynamo: DynamoDBClient): Promise<AuditChainKey> {
  sharedChain ??= createAuditChainKey(dynamo).catch((err: unknown) => {
    sharedChain = undefined;
    throw err;
  });
  return sharedChain;
}
