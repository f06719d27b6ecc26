/**
 * The signed digest of every subject's audit chain head: the external anchor a hash chain
 * needs. Records can be removed from the table without a trace in the remaining chain (the
 * newest ones, or a whole trail); a digest signed earlier still names the head the chain had
 * reached, so verification sees that it is gone.
 *
 *   { version: 1, createdAt, retentionDays, intervalSeconds,
 *     previous: SHA-256 (hex) of the previous digest document's bytes, or null for the first,
 *     heads: { "<subject>": { seq, hash, at } } }
 *
 * A digest is a full snapshot (verification needs one document, not a replay), built
 * incrementally by run.ts. It holds subjects (`user:<userid>`, `party:<id>` …), seqs, hashes
 * and times: no field values. `previous` chains the digests: one removed from the middle of
 * the series breaks the next one's `previous`.
 *
 * Signing: the signed message is the 32-byte SHA-256 of the digest's canonical JSON, signed
 * as a RAW message with ECDSA_SHA_256 (KMS Sign limits RAW messages to 4 KB, and a snapshot
 * of every subject is far larger; a prehashed DIGEST message cannot be reproduced with
 * node:crypto, so the local signer and the verifier would need a second code path).
 * The stored document is canonicalJson({ digest, signature }).
 */
import { canonicalJson, sha256Hex, type ChainProblem } from '../store/audit-chain';
import type { DigestSignature, DigestSigner, DigestStore, DigestVerifier, StoredDigest } from './ports';

export const DIGEST_VERSION = 1;

export interface ChainHead {
  seq: number;
  hash: string;
  /** The head record's `at`. */
  at: string;
}

export interface AuditDigest {
  version: typeof DIGEST_VERSION;
  createdAt: string;
  retentionDays: number;
  /** The digest schedule's period: the tolerance of the expiry rule (store/audit-chain.ts). */
  intervalSeconds: number;
  previous: string | null;
  heads: Record<string, ChainHead>;
}

/** A digest whose document parsed and whose signature verified. */
export interface OpenedDigest {
  name: string;
  digest: AuditDigest;
  /** SHA-256 (hex) of the stored bytes: the next digest's `previous`. */
  bodyHash: string;
}

export const digestName = (createdAt: string) => `${createdAt}.json`;

/** The time a digest's name stands for (NaN for a name that is not ours). */
export const digestTime = (name: string) => Date.parse(name.replace(/\.json$/, ''));

export function digestMessage(digest: AuditDigest): Uint8Array {
  return Buffer.from(sha256Hex(canonicalJson(digest)), 'hex');
}

/** Sign and serialise: the bytes to store under digestName(digest.createdAt). */
export async function sealDigest(digest: AuditDigest, signer: DigestSigner): Promise<string> {
  const signature = await signer.sign(digestMessage(digest));
  return canonicalJson({ digest, signature });
}

const HEX64 = /^[0-9a-f]{64}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** What is wrong with a document's form, or undefined. Never echoes content. */
function formProblem(doc: unknown): string | undefined {
  if (!doc || typeof doc !== 'object') return 'not a JSON object';
  const { digest, signature } = doc as { digest?: Partial<AuditDigest>; signature?: Partial<DigestSignature> };
  if (!digest || typeof digest !== 'object') return 'no digest';
  if (digest.version !== DIGEST_VERSION) return 'unknown version';
  if (typeof digest.createdAt !== 'string' || !ISO.test(digest.createdAt)) return 'createdAt is not an ISO time';
  if (!(Number.isInteger(digest.retentionDays) && digest.retentionDays! > 0)) return 'bad retentionDays';
  if (!(Number.isInteger(digest.intervalSeconds) && digest.intervalSeconds! > 0)) return 'bad intervalSeconds';
  if (digest.previous !== null && !(typeof digest.previous === 'string' && HEX64.test(digest.previous))) return 'bad previous';
  if (!digest.heads || typeof digest.heads !== 'object' || Array.isArray(digest.heads)) return 'no heads';
  for (const h of Object.values(digest.heads)) {
    if (!h || !Number.isInteger(h.seq) || h.seq < 1 || typeof h.hash !== 'string' || typeof h.at !== 'string' || Number.isNaN(Date.parse(h.at))) return 'a malformed head';
  }
  if (!signature || signature.alg !== 'ECDSA_SHA_256' || typeof signature.signature !== 'string' || typeof signature.keyId !== 'string') return 'no signature';
  return undefined;
}

/** Parse and verify a stored digest: the digest, or why it is not one. */
export async function openDigest(stored: StoredDigest, verifier: DigestVerifier): Promise<OpenedDigest | { name: string; invalid: string }> {
  let doc: unknown;
  try {
    doc = JSON.parse(stored.body);
  } catch {
    return { name: stored.name, invalid: 'not JSON' };
  }
  const form = formProblem(doc);
  if (form) return { name: stored.name, invalid: form };
  const { digest, signature } = doc as { digest: AuditDigest; signature: DigestSignature };
  if (!(await verifier.verify(digestMessage(digest), signature))) return { name: stored.name, invalid: 'signature does not verify' };
  // A genuine digest copied under another name would lie about when the heads were seen.
  if (stored.name !== digestName(digest.createdAt)) return { name: stored.name, invalid: 'stored under a name that is not its createdAt' };
  return { name: stored.name, digest, bodyHash: sha256Hex(stored.body) };
}

/** How many invalid digests to step over before giving up (each is reported). */
const MAX_INVALID = 50;

/**
 * The newest digest that verifies (at or before `atOrBefore` when given); each newer one that
 * does not is a `digest-invalid` problem. A forged or damaged newest digest therefore cannot
 * hide the evidence of the ones before it.
 */
export async function newestValidDigest(
  store: DigestStore,
  verifier: DigestVerifier,
  opts: { atOrBefore?: Date } = {},
): Promise<{ digest?: OpenedDigest; problems: ChainProblem[] }> {
  const problems: ChainProblem[] = [];
  let stored = opts.atOrBefore ? await store.atOrBefore(opts.atOrBefore) : await store.latest();
  for (let i = 0; stored && i <= MAX_INVALID; i++) {
    const opened = await openDigest(stored, verifier);
    if ('digest' in opened) return { digest: opened, problems };
    problems.push({ subject: opened.name, kind: 'digest-invalid', detail: `audit digest ${opened.name}: ${opened.invalid}` });
    const t = digestTime(stored.name);
    if (Number.isNaN(t)) break;
    stored = await store.atOrBefore(new Date(t - 1));
  }
  return { problems };
}
