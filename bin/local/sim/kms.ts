/**
 * A loopback KMS that speaks the AWS JSON 1.1 protocol the real @aws-sdk/client-kms sends
 * (POST /, `X-Amz-Target: TrentService.<Op>`, `application/x-amz-json-1.1`, blobs base64).
 * No KMS emulator installs from npm, and mocking the SDK would not prove that our
 * EncryptionContext and blob handling work on the wire, so tests talk to this instead.
 *
 * Ciphertext blobs embed the key id (like real KMS blobs do) and are sealed with AES-256-GCM
 * under a per-key master secret held in memory, with the canonical encryption context as
 * additional authenticated data: a context mismatch or a tampered blob fails to decrypt and
 * is answered `400 {"__type":"InvalidCiphertextException"}`, as KMS does.
 *
 * One asymmetric key (ECC_NIST_P256, SIGN_VERIFY) signs audit digests: `Sign` (MessageType
 * RAW, ECDSA_SHA_256, DER signature, as KMS returns it) and `GetPublicKey` (DER SPKI). The
 * symmetric operations refuse it and `Sign` refuses the symmetric key
 * (InvalidKeyUsageException), as KMS does.
 *
 * Mountable: `kmsHandler(state)` is a node:http-style `(req, res, subpath)` handler for the
 * local dev server; `startKmsServer()` listens on 127.0.0.1:0 for tests.
 */
import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface KmsCalls {
  GenerateDataKey: number;
  Decrypt: number;
  Encrypt: number;
  Sign: number;
  GetPublicKey: number;
}

export interface KmsSimState {
  /** The one symmetric key this simulator knows (an ARN, as KMS returns). */
  keyId: string;
  /** Master secret per key id; never leaves the process. */
  masters: Map<string, Buffer>;
  /** The asymmetric signing key (an ARN). */
  signingKeyId: string;
  signers: Map<string, { privateKey: KeyObject; publicKey: KeyObject }>;
  calls: KmsCalls;
}

export interface KmsServer {
  endpoint: string;
  keyId: string;
  signingKeyId: string;
  calls: KmsCalls;
  close(): Promise<void>;
}

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';
const BLOB_VERSION = 1;

export function createKmsState(): KmsSimState {
  const keyId = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${randomUUID()}`;
  const signingKeyId = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${randomUUID()}`;
  return {
    keyId,
    masters: new Map([[keyId, randomBytes(32)]]),
    signingKeyId,
    signers: new Map([[signingKeyId, generateKeyPairSync('ec', { namedCurve: 'P-256' })]]),
    calls: { GenerateDataKey: 0, Decrypt: 0, Encrypt: 0, Sign: 0, GetPublicKey: 0 },
  };
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Canonical form of an EncryptionContext: sorted keys, so {a,b} and {b,a} are the same context. */
function canonicalContext(ctx: unknown): Buffer {
  const entries = ctx && typeof ctx === 'object' ? Object.entries(ctx as Record<string, unknown>) : [];
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries), 'utf8');
}

/** Accept a key id, key ARN or alias-less short id; this simulator has a single key. */
function resolveKey(state: KmsSimState, keyId: unknown, usage: 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' = 'ENCRYPT_DECRYPT'): string {
  if (typeof keyId !== 'string' || !keyId) throw new KmsError('ValidationException', 'KeyId is required');
  const match = (ids: Iterable<string>) => [...ids].find((id) => id === keyId || id.endsWith(`/${keyId}`));
  const found = match(usage === 'ENCRYPT_DECRYPT' ? state.masters.keys() : state.signers.keys());
  if (found) return found;
  if (match(usage === 'ENCRYPT_DECRYPT' ? state.signers.keys() : state.masters.keys())) {
    throw new KmsError('InvalidKeyUsageException', `key usage of '${keyId}' is not ${usage}`);
  }
  throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
}

/** blob = version(1) | keyIdLen(2) | keyId | iv(12) | tag(16) | ciphertext */
function seal(state: KmsSimState, keyId: string, plaintext: Buffer, ctx: unknown): Buffer {
  const iv = randomBytes(12);
  const id = Buffer.from(keyId, 'utf8');
  const cipher = createCipheriv('aes-256-gcm', state.masters.get(keyId)!, iv);
  cipher.setAAD(Buffer.concat([id, canonicalContext(ctx)]));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const head = Buffer.alloc(3);
  head.writeUInt8(BLOB_VERSION, 0);
  head.writeUInt16BE(id.length, 1);
  return Buffer.concat([head, id, iv, cipher.getAuthTag(), ct]);
}

function open(state: KmsSimState, blob: Buffer, ctx: unknown, expectKeyId: unknown): { keyId: string; plaintext: Buffer } {
  const invalid = () => new KmsError('InvalidCiphertextException', 'The ciphertext is invalid, was tampered with, or its encryption context does not match');
  if (blob.length < 3 + 12 + 16 || blob.readUInt8(0) !== BLOB_VERSION) throw invalid();
  const idLen = blob.readUInt16BE(1);
  if (blob.length < 3 + idLen + 28) throw invalid();
  const keyId = blob.subarray(3, 3 + idLen).toString('utf8');
  const master = state.masters.get(keyId);
  if (!master) throw invalid();
  if (expectKeyId !== undefined && resolveKey(state, expectKeyId) !== keyId) {
    throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key that encrypted the ciphertext');
  }
  const iv = blob.subarray(3 + idLen, 3 + idLen + 12);
  const tag = blob.subarray(3 + idLen + 12, 3 + idLen + 28);
  const ct = blob.subarray(3 + idLen + 28);
  try {
    const decipher = createDecipheriv('aes-256-gcm', master, iv);
    decipher.setAAD(Buffer.concat([Buffer.from(keyId, 'utf8'), canonicalContext(ctx)]));
    decipher.setAuthTag(tag);
    return { keyId, plaintext: Buffer.concat([decipher.update(ct), decipher.final()]) };
  } catch {
    throw invalid();
  }
}

function b64(value: unknown, name: string): Buffer {
  if (typeof value !== 'string') throw new KmsError('ValidationException', `${name} is required`);
  return Buffer.from(value, 'base64');
}

function dispatch(state: KmsSimState, op: string, body: Record<string, unknown>): Record<string, unknown> {
  switch (op) {
    case 'GenerateDataKey': {
      state.calls.GenerateDataKey++;
      const keyId = resolveKey(state, body.KeyId);
      const bytes = body.KeySpec === 'AES_128' ? 16 : typeof body.NumberOfBytes === 'number' ? body.NumberOfBytes : 32;
      if (bytes < 1 || bytes > 1024) throw new KmsError('ValidationException', 'NumberOfBytes out of range');
      const plaintext = randomBytes(bytes);
      const blob = seal(state, keyId, plaintext, body.EncryptionContext);
      return { KeyId: keyId, Plaintext: plaintext.toString('base64'), CiphertextBlob: blob.toString('base64') };
    }
    case 'Encrypt': {
      state.calls.Encrypt++;
      const keyId = resolveKey(state, body.KeyId);
      const plaintext = b64(body.Plaintext, 'Plaintext');
      if (plaintext.length > 4096) throw new KmsError('ValidationException', 'Plaintext longer than 4096 bytes');
      const blob = seal(state, keyId, plaintext, body.EncryptionContext);
      return { KeyId: keyId, CiphertextBlob: blob.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    }
    case 'Decrypt': {
      state.calls.Decrypt++;
      const { keyId, plaintext } = open(state, b64(body.CiphertextBlob, 'CiphertextBlob'), body.EncryptionContext, body.KeyId);
      return { KeyId: keyId, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    }
    case 'Sign': {
      state.calls.Sign++;
      const keyId = resolveKey(state, body.KeyId, 'SIGN_VERIFY');
      if (body.SigningAlgorithm !== 'ECDSA_SHA_256') throw new KmsError('InvalidKeyUsageException', 'this key signs with ECDSA_SHA_256 only');
      if ((body.MessageType ?? 'RAW') !== 'RAW') throw new KmsError('ValidationException', 'only MessageType RAW is simulated');
      const message = b64(body.Message, 'Message');
      if (message.length > 4096) throw new KmsError('ValidationException', 'Message longer than 4096 bytes');
      const signature = sign('sha256', message, state.signers.get(keyId)!.privateKey);
      return { KeyId: keyId, Signature: signature.toString('base64'), SigningAlgorithm: 'ECDSA_SHA_256' };
    }
    case 'GetPublicKey': {
      state.calls.GetPublicKey++;
      const keyId = resolveKey(state, body.KeyId, 'SIGN_VERIFY');
      const der = state.signers.get(keyId)!.publicKey.export({ type: 'spki', format: 'der' });
      return { KeyId: keyId, PublicKey: der.toString('base64'), KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_256'] };
    }
    default:
      throw new KmsError('UnknownOperationException', `operation ${op} is not simulated`);
  }
}

/** Mountable handler: `subpath` is ignored (KMS has a single POST / endpoint). */
export function kmsHandler(state: KmsSimState) {
  return (req: IncomingMessage, res: ServerResponse, _subpath = '/'): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        res.end(JSON.stringify(payload));
      };
      try {
        const target = String(req.headers['x-amz-target'] ?? '');
        if (req.method !== 'POST' || !target.startsWith('TrentService.')) {
          throw new KmsError('UnknownOperationException', 'expected POST with X-Amz-Target: TrentService.<Operation>');
        }
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        } catch {
          throw new KmsError('SerializationException', 'request body is not JSON');
        }
        reply(200, dispatch(state, target.slice('TrentService.'.length), body));
      } catch (err) {
        if (err instanceof KmsError) reply(err.status, { __type: err.type, message: err.message });
        else reply(500, { __type: 'KMSInternalException', message: 'internal error' });
      }
    });
  };
}

export async function startKmsServer(state: KmsSimState = createKmsState()): Promise<KmsServer> {
  const handle = kmsHandler(state);
  const server = createServer((req, res) => handle(req, res, req.url ?? '/'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    keyId: state.keyId,
    signingKeyId: state.signingKeyId,
    calls: state.calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
