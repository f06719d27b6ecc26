/**
 * KeyProvider on AWS KMS: GenerateDataKey / Decrypt under a symmetric key, with the
 * EncryptionContext passed through (KMS binds it cryptographically and logs it in
 * CloudTrail, so key use is attributable per table). Decrypt names the KeyId so a blob
 * produced under another key is refused rather than silently decrypted.
 */
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { DataKey, EncryptionContext, KeyProvider } from './ports';

export class KmsKeyProvider implements KeyProvider {
  constructor(
    private readonly client: KMSClient,
    private readonly keyId: string,
  ) {}

  async generateDataKey(context: EncryptionContext): Promise<DataKey> {
    const out = await this.client.send(
      new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: context }),
    );
    if (!out.Plaintext || !out.CiphertextBlob || out.Plaintext.length !== 32) {
      throw new Error('KMS GenerateDataKey returned no usable 256-bit key');
    }
    return { plaintext: out.Plaintext, encrypted: out.CiphertextBlob };
  }

  async decryptDataKey(encrypted: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
    const out = await this.client.send(
      new DecryptCommand({ KeyId: this.keyId, CiphertextBlob: encrypted, EncryptionContext: context }),
    );
    if (!out.Plaintext || out.Plaintext.length !== 32) throw new Error('KMS Decrypt returned no usable 256-bit key');
    return out.Plaintext;
  }
}
