/**
 * Key material ports. Two KeyProvider implementations exist: AWS KMS (the deployed path)
 * and a local key file under `.data/` (the local stack). Everything above them is shared.
 */

export type EncryptionContext = Record<string, string>;

export interface DataKey {
  plaintext: Uint8Array;
  /** The data key wrapped by the master key; stored beside the ciphertext. */
  encrypted: Uint8Array;
}

export interface KeyProvider {
  /** A fresh 256-bit data key, wrapped under `context` (KMS EncryptionContext). */
  generateDataKey(context: EncryptionContext): Promise<DataKey>;
  /** Unwrap; must fail when `context` differs from the one used to wrap. */
  decryptDataKey(encrypted: Uint8Array, context: EncryptionContext): Promise<Uint8Array>;
}

/** Where a sensitive value lives: binds a ciphertext to its row and field. */
export interface FieldLocation {
  table: string;
  subject: string;
  field: string;
}

/** A stored sensitive value: versioned ciphertext and keyed hash of the normalized value. */
export interface SealedValue {
  /** e.g. 'v1.<edk>.<iv>.<ct>' (see envelope.ts). */
  ct: string;
  /** HMAC-SHA-256 (hex or base64url) of the normalized value under the KMS-protected hash key. */
  h: string;
}

export interface FieldCipher {
  seal(value: string, where: FieldLocation): Promise<SealedValue>;
  open(sealed: SealedValue | string, where: FieldLocation): Promise<string>;
  /** Keyed hash for equality and duplicate checks without decrypting. Same value → same hash. */
  hash(field: string, normalizedValue: string): Promise<string>;
}
