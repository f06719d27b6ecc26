/**
 * DigestSigner on a KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY): the private key never
 * leaves KMS, and only the digest job's role may call kms:Sign on it.
 *
 * Sign: MessageType RAW with the 32-byte message digest.ts builds, ECDSA_SHA_256 — KMS hashes
 * it with SHA-256 and returns a DER signature, exactly what node:crypto produces and checks.
 * Verify: locally, with the key's public half (kms:GetPublicKey, once per instance): the same
 * check the local signer makes, no KMS call per digest, and it works for anyone allowed to
 * read the public key.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { GetPublicKeyCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { DigestSignature, DigestSigner } from './ports';

export class KmsDigestSigner implements DigestSigner {
  private publicKey?: Promise<KeyObject>;

  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
  ) {}

  async sign(message: Uint8Array): Promise<DigestSignature> {
    const out = await this.client.send(new SignCommand({ KeyId: this.keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
    if (!out.Signature?.length) throw new Error('KMS Sign returned no signature');
    return { alg: 'ECDSA_SHA_256', keyId: out.KeyId ?? this.keyId, signature: Buffer.from(out.Signature).toString('base64') };
  }

  async verify(message: Uint8Array, signature: DigestSignature): Promise<boolean> {
    const key = await this.key();
    try {
      return verify('sha256', message, key, Buffer.from(signature.signature, 'base64'));
    } catch {
      return false;
    }
  }

  private key(): Promise<KeyObject> {
    this.publicKey ??= (async () => {
      const out = await this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId }));
      if (!out.PublicKey || out.KeySpec !== 'ECC_NIST_P256' || out.KeyUsage !== 'SIGN_VERIFY') {
        throw new Error('the audit digest key is not an ECC_NIST_P256 SIGN_VERIFY key');
      }
      return createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' });
    })().catch((err: unknown) => {
      this.publicKey = undefined;
      throw err;
    });
    return this.publicKey;
  }
}
