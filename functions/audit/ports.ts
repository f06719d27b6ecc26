/**
 * Ports of the signed audit digests. Adapters: AWS (KMS asymmetric key, S3 bucket with Object
 * Lock: kms-signer.ts, s3-store.ts) and local (an ECDSA key pair and files under the data
 * directory: local.ts). Everything above them (digest.ts, run.ts, verify.ts) is shared.
 */
import type { StoredAuditRecord } from '../store/audit-chain';

export interface DigestSignature {
  /** ECDSA over P-256 with SHA-256 (KMS `ECDSA_SHA_256`), DER-encoded. */
  alg: 'ECDSA_SHA_256';
  /** Which key signed (informational: verification uses the verifier's own key). */
  keyId: string;
  /** Base64. */
  signature: string;
}

export interface DigestVerifier {
  /** True when `signature` is this key's signature of `message`. Never throws for a bad signature. */
  verify(message: Uint8Array, signature: DigestSignature): Promise<boolean>;
}

export interface DigestSigner extends DigestVerifier {
  sign(message: Uint8Array): Promise<DigestSignature>;
}

/** A stored digest document: its name (`<ISO createdAt>.json`) and its exact bytes as text. */
export interface StoredDigest {
  name: string;
  body: string;
}

/**
 * Append-only storage of digest documents. Names sort chronologically (ISO-8601 UTC times of
 * fixed width), which is what `latest` and `atOrBefore` rely on.
 */
export interface DigestStore {
  latest(): Promise<StoredDigest | undefined>;
  /** The newest digest whose name's time is <= `time`. */
  atOrBefore(time: Date): Promise<StoredDigest | undefined>;
  /** Store a new digest; throws DigestExistsError when `name` exists (never overwrites). */
  put(name: string, body: string): Promise<void>;
}

export class DigestExistsError extends Error {
  constructor(name: string) {
    super(`audit digest ${name} already exists: digests are never overwritten`);
    this.name = 'DigestExistsError';
  }
}

/** The raw reads of the audit table the digest job and the verifier need (DynamoAuditLog). */
export interface AuditReader {
  /** Items with from <= at <= to, oldest first, a page at a time. */
  rawByTime(from: Date, to: Date): AsyncIterable<StoredAuditRecord[]>;
  /** A subject's items in key order, optionally seqs fromSeq..toSeq only. */
  rawBySubject(subject: string, range?: { fromSeq?: number; toSeq?: number }): Promise<StoredAuditRecord[]>;
}
