import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decryptMessage, encryptMessage, signature, verifySignature } from '../../functions/wecom/crypto';

const vectors = JSON.parse(readFileSync(new URL('../../../shared/wecom-callback-vectors.json', import.meta.url), 'utf8'));
const keys = { token: vectors.token, encodingAESKey: vectors.encodingAESKey, corpId: vectors.corpId };

describe('WeCom callback cipher: published known answers', () => {
  it('verifies and decrypts the URL-verification echostr', () => {
    const v = vectors.verifyUrl;
    expect(signature(keys.token, v.timestamp, v.nonce, v.echostr)).toBe(v.msg_signature);
    expect(decryptMessage(v.echostr, keys)).toBe(v.plaintext);
  });
  it('decrypts the POST sample (32-byte block padding, pad byte 22)', () => {
    const p = vectors.post;
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, p.msg_signature)).toBe(true);
    expect(decryptMessage(p.encrypt, keys)).toBe(p.plaintext);
  });
  it('round-trips', () => {
    const ct = encryptMessage('<xml>你好</xml>', keys);
    expect(decryptMessage(ct, keys)).toBe('<xml>你好</xml>');
  });
});
