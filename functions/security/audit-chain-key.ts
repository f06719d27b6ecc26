/**
 * The audit chain's key: each audit record's link is HMAC-SHA-256 under a 256-bit secret,
 * so that whoever can write the audit table but cannot unwrap this key (KMS Decrypt with
 * the `audit-chain-key` encryption context) cannot produce a record that verifies. A plain
 * SHA-256 chain is no such barrier: anyone can re-hash an edited record and every record
 * after it.
 *
 * The key is a StoredDataKey (hash-key.ts): 32 random bytes from KMS GenerateDataKey,
 * stored wrapped in the state table's meta item `meta#audit-chain-key`, one per deployment.
 * It is separate from the keyed-hash key so the two can be granted (and rotated) apart.
 */
import { createHmac } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { HashKeySource } from './envelope';
import { StoredDataKey, type StoredKeySpec } from './hash-key';
import type { KeyProvider } from './ports';

/** The value of a record's `alg` attribute: its `hash` is this MAC, not a plain digest. */
export const CHAIN_ALG = 'hmac-sha256';

export const AUDIT_CHAIN_KEY: StoredKeySpec = { pk: 'meta#audit-chain-key', purpose: 'audit-chain-key' };

/** What the audit log needs of the key: a MAC over canonical text. The key never leaves. */
export interface AuditChainKey {
  /** Lower-case hex HMAC-SHA-256 of `data` (UTF-8). */
  mac(data: string): Promise<string>;
}

export class HmacChainKey implements AuditChainKey {
  constructor(private readonly source: HashKeySource) {}

  async mac(data: string): Promise<string> {
    const key = await this.source.get();
    return createHmac('sha256', key).update(data, 'utf8').digest('hex');
  }
}

/**
 * The deployment's chain key. `create: false` for readers (digest job, verification): they
 * must fail rather than mint a key nobody wrote with.
 */
export function storedAuditChainKey(keys: KeyProvider, dynamo: DynamoDBClient, stateTable: string, opts: { create?: boolean } = {}): AuditChainKey {
  return new HmacChainKey(new StoredDataKey(keys, dynamo, stateTable, AUDIT_CHAIN_KEY, opts));
}

/** A fixed key (tests, benchmarks). */
export function fixedAuditChainKey(key: Uint8Array): AuditChainKey {
  return new HmacChainKey({ get: async () => key });
}
