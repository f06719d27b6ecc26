/**
 * WeCom callback cipher ("WXBizMsgCrypt"), written to the protocol and hardened beyond the
 * official libraries: constant-time signature check, strict 32-byte-block PKCS#7, the
 * 4-byte length bounded by the buffer, and the trailing receive id compared to the CorpID.
 *
 * Every failure is the same `CallbackRejected('invalid')` with no detail about which check
 * failed, so the endpoint is no padding or signature oracle. (Own code rather than a
 * library: this is the product's front door and the available packages skip these checks.)
 *
 * Speed (test/bench/callback.bench.ts): on Node 24 a cipher created from a raw Buffer key
 * imports the key again on every call (~15 µs), so the AES key is imported once per
 * EncodingAESKey as a KeyObject and kept (`derived` below); that alone is most of the cost
 * of a decrypt.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

export interface CallbackKeys {
  token: string;
  /** 43 characters of base64 without the trailing '='. */
  encodingAESKey: string;
  /** The receive id: CorpID for contact callbacks. */
  corpId: string;
}

const BLOCK = 32;

export class CallbackRejected extends Error {
  constructor(readonly reason: 'invalid' | 'stale' | 'malformed' | 'too-large') {
    super(`callback rejected: ${reason}`);
    this.name = 'CallbackRejected';
  }
}

/** Derive the AES key; throws on a key that is not 43 base64 chars decoding to 32 bytes. */
export function aesKey(encodingAESKey: string): Buffer {
  if (!/^[A-Za-z0-9+/]{43}$/.test(encodingAESKey)) throw new Error('EncodingAESKey must be 43 base64 characters');
  const key = Buffer.from(encodingAESKey + '=', 'base64');
  if (key.length !== 32) throw new Error('EncodingAESKey must decode to 32 bytes');
  return key;
}

interface DerivedKey {
  key: KeyObject;
  /** The protocol's IV: the first 16 bytes of the AES key. */
  iv: Buffer;
}

/**
 * Imported keys by EncodingAESKey. A deployment has one key (two during a rotation, more only
 * in tests), so the map is tiny; it is cleared rather than grown past a few entries.
 */
const derived = new Map<string, DerivedKey>();
const MAX_DERIVED = 8;

function derivedKey(encodingAESKey: string): DerivedKey {
  let d = derived.get(encodingAESKey);
  if (!d) {
    const raw = aesKey(encodingAESKey); // validates; throws before anything is cached
    d = { key: createSecretKey(raw), iv: Buffer.from(raw.subarray(0, 16)) };
    raw.fill(0);
    if (derived.size >= MAX_DERIVED) derived.clear();
    derived.set(encodingAESKey, d);
  }
  return d;
}

/** SHA-1 over the lexicographically sorted (token, timestamp, nonce, encrypt). */
export function signature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypt].sort().join('')).digest('hex');
}

/** Constant-time check of a claimed msg_signature. */
export function verifySignature(
  token: string,
  timestamp: string,
  nonce: string,
  encrypt: string,
  claimed: string | undefined,
): boolean {
  if (typeof claimed !== 'string' || claimed.length !== 40) return false;
  const expected = Buffer.from(signature(token, timestamp, nonce, encrypt), 'utf8');
  const got = Buffer.from(claimed.toLowerCase(), 'utf8');
  return got.length === expected.length && timingSafeEqual(expected, got);
}

/** Encrypt a message as WeCom does (used by the simulator and by tests). */
export function encryptMessage(plaintext: string, keys: Pick<CallbackKeys, 'encodingAESKey' | 'corpId'>, random16?: Buffer): string {
  const { key, iv } = derivedKey(keys.encodingAESKey);
  const msg = Buffer.from(plaintext, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msg.length, 0);
  const body = Buffer.concat([random16 ?? randomBytes(16), len, msg, Buffer.from(keys.corpId, 'utf8')]);
  const pad = BLOCK - (body.length % BLOCK);
  const padded = Buffer.concat([body, Buffer.alloc(pad, pad)]);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(padded), cipher.final()]).toString('base64');
}

/** Strict base64: only the alphabet, at most two '=' at the end, whole 4-character groups. */
const STRICT_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decode `text` only if it is strict base64; undefined otherwise. Buffer.from silently skips
 * junk, which would let garbage through, hence the check. Fast path: what the encoder writes
 * back is canonical base64, so a string equal to its own re-encoding passes the strict check
 * by construction (a few µs cheaper than the regex on a 5 KB value); anything else — junk, or
 * base64 with non-zero unused bits — is judged by the regex exactly as before.
 */
export function strictBase64(text: string): Buffer | undefined {
  const data = Buffer.from(text, 'base64');
  if (data.length > 0 && data.toString('base64') === text) return data;
  return STRICT_BASE64.test(text) && text.length % 4 === 0 ? data : undefined;
}

/**
 * Decrypt and check an `Encrypt` value. Returns the inner message. Throws
 * CallbackRejected('invalid') on any defect (bad base64, block size, padding, length, receive id).
 */
export function decryptMessage(encrypt: string, keys: Pick<CallbackKeys, 'encodingAESKey' | 'corpId'>): string {
  const fail = () => new CallbackRejected('invalid');
  const data = strictBase64(encrypt);
  if (!data || data.length === 0 || data.length % BLOCK !== 0) throw fail();
  const { key, iv } = derivedKey(keys.encodingAESKey);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-cbc', key, iv);
    decipher.setAutoPadding(false);
    const head = decipher.update(data);
    const tail = decipher.final(); // empty: the input is block-aligned and padding is ours to check
    plain = tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    throw fail();
  }
  const pad = plain[plain.length - 1]!;
  if (pad < 1 || pad > BLOCK) throw fail();
  for (let i = plain.length - pad; i < plain.length; i++) if (plain[i] !== pad) throw fail();
  const content = plain.subarray(0, plain.length - pad);
  if (content.length < 20) throw fail();
  const msgLen = content.readUInt32BE(16);
  if (msgLen > content.length - 20) throw fail();
  const msg = content.subarray(20, 20 + msgLen);
  const receiveId = content.subarray(20 + msgLen);
  const expected = Buffer.from(keys.corpId, 'utf8');
  if (receiveId.length !== expected.length || !timingSafeEqual(receiveId, expected)) throw fail();
  return msg.toString('utf8');
}
