/**
 * A second, independent implementation of the WeCom callback protocol, written from the
 * published description (not from functions/wecom/crypto.ts), used by tests to play WeCom:
 *
 *   AESKey = base64decode(EncodingAESKey + '='), IV = AESKey[0..16)
 *   plaintext = random(16) ‖ uint32be(len(msg)) ‖ msg ‖ receiveId, PKCS#7-padded to 32 bytes
 *   Encrypt = base64(AES-256-CBC(plaintext))
 *   msg_signature = hex(SHA1(sort([token, timestamp, nonce, Encrypt]).join('')))
 *
 * Knobs let tests build deliberately broken messages (bad padding, wrong receive id, lying
 * length field) to check that the receiver refuses them.
 */
import crypto from 'node:crypto';

export interface ClientKeys {
  token: string;
  encodingAESKey: string;
  corpId: string;
}

export interface EncryptOptions {
  /** Receive id appended after the message (default: keys.corpId). */
  receiveId?: string;
  /** Override the 4-byte length field. */
  lengthField?: number;
  /** Replace the padding: a function from the correct pad length to the bytes to append. */
  padding?: (padLen: number) => Buffer;
  random?: Buffer;
}

function keyOf(encodingAESKey: string): Buffer {
  const key = Buffer.from(`${encodingAESKey}=`, 'base64');
  if (key.length !== 32) throw new Error('test client: bad EncodingAESKey');
  return key;
}

export function pkcs7Pad32(len: number): Buffer {
  const n = 32 - (len % 32); // 1..32
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = n;
  return out;
}

/** Raw AES-256-CBC over already-padded data (no library padding). */
export function aesCbcRaw(key: Buffer, data: Buffer): Buffer {
  if (data.length % 16 !== 0) throw new Error('test client: data not block aligned');
  const c = crypto.createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

export function encrypt(msg: string, keys: ClientKeys, opts: EncryptOptions = {}): string {
  const key = keyOf(keys.encodingAESKey);
  const m = Buffer.from(msg, 'utf8');
  const header = Buffer.alloc(20);
  (opts.random ?? crypto.randomBytes(16)).copy(header, 0, 0, 16);
  header.writeUInt32BE(opts.lengthField ?? m.length, 16);
  const unpadded = Buffer.concat([header, m, Buffer.from(opts.receiveId ?? keys.corpId, 'utf8')]);
  const correct = pkcs7Pad32(unpadded.length);
  const padding = opts.padding ? opts.padding(correct.length) : correct;
  return aesCbcRaw(key, Buffer.concat([unpadded, padding])).toString('base64');
}

export function sign(token: string, timestamp: string, nonce: string, encrypted: string): string {
  const parts = [token, timestamp, nonce, encrypted];
  parts.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const h = crypto.createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export interface CallbackRequest {
  query: Record<string, string>;
  body: string;
}

export interface BuildOptions extends EncryptOptions {
  timestamp?: number;
  nonce?: string;
  /** Sign with this token instead (forgery). */
  signToken?: string;
  /** Replace the whole Encrypt value (after signing it, unless signOverride). */
  encryptOverride?: string;
}

/** A POST as WeCom sends it: envelope XML body and signed query. */
export function buildPost(innerXml: string, keys: ClientKeys, opts: BuildOptions = {}): CallbackRequest {
  const enc = opts.encryptOverride ?? encrypt(innerXml, keys, opts);
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = opts.nonce ?? String(crypto.randomInt(1e9));
  return {
    query: { msg_signature: sign(opts.signToken ?? keys.token, timestamp, nonce, enc), timestamp, nonce },
    body: envelope(enc, keys.corpId),
  };
}

export function envelope(enc: string, corpId: string): string {
  return `<xml><ToUserName><![CDATA[${corpId}]]></ToUserName><Encrypt><![CDATA[${enc}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>`;
}

/** A URL-verification GET: the echostr as WeCom sends it (before URL decoding). */
export function buildVerify(echo: string, keys: ClientKeys, opts: BuildOptions = {}) {
  const enc = encrypt(echo, keys, opts);
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = opts.nonce ?? String(crypto.randomInt(1e9));
  return { msg_signature: sign(keys.token, timestamp, nonce, enc), timestamp, nonce, echostr: enc };
}

// ---------------------------------------------------------------- inner events

const cdata = (v: string) => `<![CDATA[${v}]]>`;

export function eventXml(corpId: string, fields: Record<string, string>, createTime = Math.floor(Date.now() / 1000)): string {
  const body = Object.entries(fields)
    .map(([k, v]) => `<${k}>${cdata(v)}</${k}>`)
    .join('');
  return `<xml><ToUserName>${cdata(corpId)}</ToUserName><FromUserName>${cdata('sys')}</FromUserName><CreateTime>${createTime}</CreateTime><MsgType>${cdata('event')}</MsgType>${body}</xml>`;
}

export const contactEvent = (corpId: string, changeType: string, fields: Record<string, string>, createTime?: number) =>
  eventXml(corpId, { Event: 'change_contact', ChangeType: changeType, ...fields }, createTime);

/** A random valid EncodingAESKey (43 base64 chars). */
export function randomEncodingAESKey(): string {
  return crypto.randomBytes(32).toString('base64').slice(0, 43);
}
