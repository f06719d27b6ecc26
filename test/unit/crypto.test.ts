import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aesKey, CallbackRejected, decryptMessage, encryptMessage, signature, strictBase64, verifySignature } from '../../functions/wecom/crypto';
import { aesCbcRaw, encrypt as clientEncrypt, sign as clientSign } from '../support/wecom-callback-client';

const vectors = JSON.parse(readFileSync(new URL('../fixtures/wecom-callback-vectors.json', import.meta.url), 'utf8'));
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

// ---------------------------------------------------------------- rejections (built with the independent test client)

describe('WeCom callback cipher: agrees with the independent test client', () => {
  it('the client signs the published vector identically', () => {
    const v = vectors.verifyUrl;
    expect(clientSign(keys.token, v.timestamp, v.nonce, v.echostr)).toBe(v.msg_signature);
  });
  it('decrypts what the client encrypts, including a full 32-byte padding block', () => {
    // 20 header + msg + 18 corpId = 96 bytes: the padding is a whole 32-byte block of 0x20.
    const msg = 'a'.repeat(32 * 3 - 20 - keys.corpId.length);
    expect(decryptMessage(clientEncrypt(msg, keys), keys)).toBe(msg);
    expect(decryptMessage(clientEncrypt('<xml>中文</xml>', keys), keys)).toBe('<xml>中文</xml>');
  });
});

describe('WeCom callback cipher: rejects every defect with the same error', () => {
  const msg = 'x'; // 20 + 1 + 18 = 39 bytes → 25 bytes of padding
  const rejects = (enc: string, k: typeof keys = keys) => {
    let err: unknown;
    try {
      decryptMessage(enc, k);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CallbackRejected);
    expect((err as CallbackRejected).reason).toBe('invalid');
    expect((err as Error).message).toBe('callback rejected: invalid');
  };

  it('padding byte 0', () => rejects(clientEncrypt(msg, keys, { padding: (n) => Buffer.alloc(n, 0) })));
  it('padding byte above 32', () =>
    rejects(
      clientEncrypt(msg, keys, {
        padding: (n) => {
          const b = Buffer.alloc(n, n);
          b[n - 1] = 33;
          return b;
        },
      }),
    ));
  it('padding bytes that disagree', () =>
    rejects(
      clientEncrypt(msg, keys, {
        padding: (n) => {
          const b = Buffer.alloc(n, n);
          b[0] = n - 1;
          return b;
        },
      }),
    ));
  it('16-byte (PKCS#7 for AES blocks, not WeCom’s 32) padding', () => {
    // 39 bytes + 9 bytes of 0x09 = 48: valid for AES's 16-byte blocks, not for WeCom's 32.
    const key = Buffer.from(keys.encodingAESKey + '=', 'base64');
    const header = Buffer.alloc(20);
    header.writeUInt32BE(1, 16);
    const plain = Buffer.concat([header, Buffer.from(msg), Buffer.from(keys.corpId), Buffer.alloc(9, 9)]);
    rejects(aesCbcRaw(key, plain).toString('base64'));
  });
  it('length field larger than the buffer', () => rejects(clientEncrypt(msg, keys, { lengthField: 1 + keys.corpId.length + 1 })));
  it('length field far larger than the buffer', () => rejects(clientEncrypt(msg, keys, { lengthField: 0xffffffff })));
  it('length field shorter than the message (receive id no longer matches)', () =>
    rejects(clientEncrypt('hello', keys, { lengthField: 4 })));
  it('wrong receive id (CorpID)', () => rejects(clientEncrypt(msg, keys, { receiveId: 'ww0000000000000000' })));
  it('empty receive id', () => rejects(clientEncrypt(msg, keys, { receiveId: '' })));
  it('receive id that is a prefix of the CorpID', () => rejects(clientEncrypt(msg, keys, { receiveId: keys.corpId.slice(0, -1) })));
  it('a different AES key', () => {
    const other = { ...keys, encodingAESKey: 'a'.repeat(42) + 'A' };
    rejects(clientEncrypt(msg, other));
  });
  it('non-base64 input', () => {
    rejects('!!!!not base64!!!!');
    rejects(clientEncrypt(msg, keys).replace(/.$/, '*'));
    rejects(' ' + clientEncrypt(msg, keys));
  });
  it('empty input and blocks of the wrong size', () => {
    rejects('');
    rejects(Buffer.alloc(16, 1).toString('base64'));
    rejects(Buffer.alloc(48, 1).toString('base64'));
    const ok = Buffer.from(clientEncrypt(msg, keys), 'base64');
    rejects(ok.subarray(0, ok.length - 1).toString('base64'));
  });
  it('a truncated message (fewer than 20 bytes after unpadding)', () => {
    const key = Buffer.from(keys.encodingAESKey + '=', 'base64');
    rejects(aesCbcRaw(key, Buffer.concat([Buffer.alloc(16, 7), Buffer.alloc(16, 16)])).toString('base64'));
  });
});

describe('WeCom callback signature check', () => {
  const p = vectors.post;
  it('accepts the right signature, in either case', () => {
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, p.msg_signature)).toBe(true);
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, p.msg_signature.toUpperCase())).toBe(true);
  });
  it('refuses a missing, short, long, or wrong signature', () => {
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, undefined)).toBe(false);
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, '')).toBe(false);
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, p.msg_signature.slice(1))).toBe(false);
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, p.msg_signature + '0')).toBe(false);
    const flipped = (p.msg_signature[0] === '0' ? '1' : '0') + p.msg_signature.slice(1);
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt, flipped)).toBe(false);
  });
  it('refuses when any signed input differs', () => {
    expect(verifySignature('other-token', p.timestamp, p.nonce, p.encrypt, p.msg_signature)).toBe(false);
    expect(verifySignature(keys.token, String(Number(p.timestamp) + 1), p.nonce, p.encrypt, p.msg_signature)).toBe(false);
    expect(verifySignature(keys.token, p.timestamp, p.nonce + '1', p.encrypt, p.msg_signature)).toBe(false);
    expect(verifySignature(keys.token, p.timestamp, p.nonce, p.encrypt.replace(/^K/, 'L'), p.msg_signature)).toBe(false);
  });
});

// ---------------------------------------------------------------- what the speed-ups must not change

describe('strict base64 (re-encoding fast path, regex for the rest)', () => {
  /** The check as it was: the regex and whole 4-character groups. */
  const before = (s: string) => /^[A-Za-z0-9+/]+={0,2}$/.test(s) && s.length % 4 === 0;

  it('refuses every malformed input the regex refused, accepts every input it accepted', () => {
    let seed = 7;
    const r = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const alphabet = 'AQgw09+/=-_ \n.!*é中\0';
    const inputs: string[] = ['', '=', '==', 'A', 'AA', 'AAA', 'AAAA', 'AA==', 'AAA=', 'A===', '====', 'AA=A', 'QR==', 'QUI=', 'QUJ=', 'AAAA\n', ' AAAA', 'AA AA', 'AAAA====', 'A-_A'];
    for (let n = 0; n < 20_000; n++) {
      const canonical = Buffer.from(Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256))).toString('base64');
      let s = canonical;
      for (let k = Math.floor(r() * 3); k > 0; k--) {
        const at = Math.floor(r() * (s.length + 1));
        s = s.slice(0, at) + alphabet[Math.floor(r() * alphabet.length)] + s.slice(at + (r() < 0.5 ? 1 : 0));
      }
      inputs.push(s, canonical);
    }
    let accepted = 0;
    for (const s of inputs) {
      const got = strictBase64(s);
      expect(got !== undefined, JSON.stringify(s)).toBe(before(s));
      if (got) {
        accepted++;
        expect(got.equals(Buffer.from(s, 'base64'))).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(20_000);
    expect(inputs.length - accepted).toBeGreaterThan(5_000);
  });

  it('still takes base64 whose unused bits are set (as the regex did), and decodes it the same', () => {
    // 'QR==' is not what an encoder writes ('QQ=='), but it was accepted before and decodes to 'A'.
    expect(strictBase64('QR==')?.toString()).toBe('A');
    expect(strictBase64('QUJ=')?.toString()).toBe('AB');
  });
});

describe('imported keys (one KeyObject per EncodingAESKey)', () => {
  it('interleaved keys each decrypt their own messages and refuse the other’s', () => {
    const other = { ...keys, encodingAESKey: 'b'.repeat(42) + 'A' };
    for (let i = 0; i < 3; i++) {
      const a = clientEncrypt(`a${i}`, keys);
      const b = clientEncrypt(`b${i}`, other);
      expect(decryptMessage(a, keys)).toBe(`a${i}`);
      expect(decryptMessage(b, other)).toBe(`b${i}`);
      expect(() => decryptMessage(a, other)).toThrow(CallbackRejected);
      expect(() => decryptMessage(b, keys)).toThrow(CallbackRejected);
    }
  });
  it('more keys than the cache holds still work, and a malformed key is refused every time', () => {
    for (let i = 0; i < 20; i++) {
      const k = { ...keys, encodingAESKey: Buffer.alloc(32, i).toString('base64').slice(0, 43) };
      expect(decryptMessage(encryptMessage(`m${i}`, k), k)).toBe(`m${i}`);
    }
    const bad = { ...keys, encodingAESKey: 'not a key' };
    for (let i = 0; i < 2; i++) expect(() => decryptMessage(clientEncrypt('x', keys), bad)).toThrow('EncodingAESKey must be 43 base64 characters');
    expect(() => aesKey('a'.repeat(44))).toThrow();
  });
});
