/**
 * The rules of the audit chain, shared by the writer (audit.ts), the digest job and the
 * verifier (functions/audit/): the canonical form of a record, its link, and what a trail
 * read back from the table proves.
 *
 *   link = HMAC-SHA-256(chainKey, canonicalJson(record without `hash`)), stored as `hash`
 *
 * The record's canonical form includes `seq`, `subject`, `prevHash` (the previous record's
 * link; GENESIS for seq 1) and `alg` ('hmac-sha256'), so a link authenticates the record's
 * content AND its place: a record copied to another seq or subject, or a chain re-linked
 * around a removed record, no longer verifies without the key. A record without `alg` (the
 * plain SHA-256 records written before the chain key existed, or a forgery that drops it)
 * authenticates nothing and is reported `unauthenticated`.
 *
 * What a trail alone cannot prove — the newest records removed, or the whole trail deleted —
 * is what the signed digests of chain heads add (functions/audit/digest.ts); `checkTrail`
 * takes what a digest saw as evidence.
 *
 * Retention: records expire by TTL `retentionDays` after `at`, so a missing PREFIX of an old
 * trail is normal. A missing range ..b is forgiven when it can have expired: some evidence
 * shows record b was written before `now − retentionDays + interval` — an authentic later
 * record older than that (records are appended in seq order), or a signed head at or after b
 * that old, or a digest created that long ago that already saw seq ≥ b (a digest from time t
 * proves those records existed at t). The `interval` (one digest interval) is the tolerance:
 * a range within one interval of its expiry can be removed undetected. DynamoDB's TTL also
 * deletes in no particular order, which is why the rule applies to inner gaps too.
 */
import { createHash } from 'node:crypto';
import { CHAIN_ALG, type AuditChainKey } from '../security/audit-chain-key';
import type { AuditRecord } from './ports';

export const GENESIS_HASH = '0'.repeat(64);
const SEQ_DIGITS = 12;
const DAY_MS = 86_400_000;

export const padSeq = (seq: number) => String(seq).padStart(SEQ_DIGITS, '0');

/** Stable JSON: object keys sorted at every level, undefined members dropped. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export const sha256Hex = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');

/** The link of a record (everything but `hash`). */
export function recordLink(unsigned: Record<string, unknown>, chain: AuditChainKey): Promise<string> {
  return chain.mac(canonicalJson(unsigned));
}

export type Authenticity = 'ok' | 'bad' | 'no-alg';

/** Whether the record's `hash` is its link under the chain key. */
export async function authenticate(record: AuditRecord, chain: AuditChainKey): Promise<Authenticity> {
  if (record.alg !== CHAIN_ALG) return 'no-alg';
  const { hash, ...unsigned } = record;
  return (await recordLink(unsigned, chain)) === hash ? 'ok' : 'bad';
}

/** An audit item as stored: the record and the key it sits under. */
export interface StoredAuditRecord {
  record: AuditRecord;
  pk: string;
  sk: string;
}

/** The item sits under its own subject and seq. */
export function isInPlace(s: StoredAuditRecord, subject: string): boolean {
  return Number.isInteger(s.record.seq) && s.record.seq >= 1 && s.sk === padSeq(s.record.seq) && s.pk === subject && s.record.subject === subject;
}

// ------------------------------------------------------------------ problems

/**
 * edited: a record whose place the chain vouches for (a later authentic record or a signed
 *   head covers its seq) no longer matches its link — changed, re-hashed, re-keyed.
 * inserted: a record no authentic record or digest vouches for and that does not verify —
 *   appended after the newest authentic record, or stored under a key of its own. (An edit
 *   of a record newer than every digest and every authentic record looks the same.)
 * removed: records missing inside the chain (or a prefix) that cannot have expired yet.
 * removed-newest: the newest records gone: a digest saw the chain reach a later seq.
 * trail-deleted: no record left of a subject a digest lists, and its head cannot have expired.
 * unauthenticated: a record without the chain's MAC (`alg`), e.g. a plain SHA-256 record.
 * moved: an authentic record stored under another seq's key or another subject.
 * digest-invalid: a stored digest whose signature (or form) does not verify.
 */
export type BreakKind = 'edited' | 'inserted' | 'removed' | 'removed-newest' | 'trail-deleted' | 'unauthenticated' | 'moved' | 'digest-invalid';

export interface ChainProblem {
  /** The subject (`user:<userid>` …), or the digest's name for `digest-invalid`. */
  subject: string;
  seq?: number;
  kind: BreakKind;
  /** Seqs, hashes, times, keys only: never a field value. */
  detail: string;
}

export function formatProblem(p: ChainProblem): string {
  return `${p.seq !== undefined ? `seq ${p.seq}: ` : ''}${p.kind} (${p.detail})`;
}

// ------------------------------------------------------------------ evidence and the trail check

/** A chain head as a signed digest recorded it. */
export interface SignedHead {
  seq: number;
  hash: string;
  /** The head record's `at`. */
  at: string;
  /** When the digest that saw it was created. */
  digestAt: string;
}

export interface TrailEvidence {
  /** The newest valid digest's head of this subject (absent: the digest does not list it, or there is none). */
  head?: SignedHead;
  /** Heads of this subject in older signed digests (e.g. one at least the retention period old). */
  witnesses?: SignedHead[];
  now: Date;
  retentionDays: number;
  /** One digest interval: the tolerance of the expiry rule (see the header). */
  intervalMs: number;
}

/**
 * Everything a subject's stored trail (read raw, in key order) and the signed evidence say
 * is wrong with it. Without evidence (`head` absent) the newest records' removal is invisible.
 */
export async function checkTrail(subject: string, stored: StoredAuditRecord[], chain: AuditChainKey, ev: TrailEvidence): Promise<ChainProblem[]> {
  const problems: ChainProblem[] = [];
  const add = (seq: number | undefined, kind: BreakKind, detail: string) => problems.push({ subject, ...(seq !== undefined ? { seq } : {}), kind, detail });
  const checked = await Promise.all(stored.map(async (s) => ({ ...s, auth: await authenticate(s.record, chain) })));
  const signed = [...(ev.head ? [ev.head] : []), ...(ev.witnesses ?? [])];
  const bound = ev.now.getTime() - ev.retentionDays * DAY_MS + ev.intervalMs;

  const placed = checked.filter((c) => isInPlace(c, subject)).sort((a, b) => a.record.seq - b.record.seq);
  for (const c of checked) {
    if (isInPlace(c, subject)) continue;
    const where = c.record.subject === subject ? `key ${c.sk}` : `key ${c.sk} of another subject's record`;
    if (c.auth === 'ok') add(c.record.seq, 'moved', `an authentic record of seq ${c.record.seq} stored under ${where}`);
    else add(Number.isInteger(c.record.seq) ? c.record.seq : undefined, 'inserted', `a record stored under ${where} that does not verify`);
  }

  const authentic = placed.filter((p) => p.auth === 'ok');
  const newestAuthentic = authentic.at(-1)?.record.seq ?? 0;
  /** Does something trustworthy say the chain reached `seq`? */
  const vouched = (seq: number) => seq < newestAuthentic || signed.some((h) => h.seq >= seq);
  /** Can records up to `seq` have expired (within one interval)? */
  const canHaveExpired = (seq: number) =>
    authentic.some((p) => p.record.seq > seq && Date.parse(p.record.at) < bound) ||
    signed.some((h) => h.seq >= seq && (Date.parse(h.at) < bound || Date.parse(h.digestAt) < bound));

  for (const p of placed) {
    if (p.auth === 'no-alg') add(p.record.seq, 'unauthenticated', 'no chain MAC (alg): not written with the chain key');
    else if (p.auth === 'bad') {
      if (vouched(p.record.seq)) add(p.record.seq, 'edited', 'content does not match its link');
      else add(p.record.seq, 'inserted', 'does not verify, and no authentic record or digest vouches for this seq');
    }
  }

  let prev: (typeof placed)[number] | undefined;
  for (const p of placed) {
    const expected = prev ? prev.record.seq + 1 : 1;
    if (p.record.seq > expected) {
      const last = p.record.seq - 1;
      if (vouched(last) && !canHaveExpired(last)) {
        add(expected, 'removed', expected === last ? `seq ${expected} missing` : `seq ${expected}..${last} missing`);
      }
    } else if (p.auth === 'ok') {
      const expectedLink = prev ? prev.record.hash : GENESIS_HASH;
      // Both authentic yet unlinked cannot be produced without the key; report it all the same.
      if (p.record.prevHash !== expectedLink && (!prev || prev.auth === 'ok')) {
        add(prev?.record.seq ?? p.record.seq, 'edited', `the link of seq ${p.record.seq} does not name the record before it`);
      }
    }
    prev = p;
  }

  if (ev.head) {
    const h = ev.head;
    const atHead = placed.find((p) => p.record.seq === h.seq);
    if (atHead) {
      if (atHead.auth === 'ok' && atHead.record.hash !== h.hash) add(h.seq, 'edited', `differs from the record the digest of ${h.digestAt} saw`);
    } else {
      const last = placed.at(-1);
      const expired = Date.parse(h.at) < bound;
      if (!expired && !last) add(h.seq, 'trail-deleted', `no record left; the digest of ${h.digestAt} saw seq ${h.seq}`);
      else if (!expired && last && last.record.seq < h.seq) {
        add(last.record.seq + 1, 'removed-newest', `records after seq ${last.record.seq} removed: the digest of ${h.digestAt} saw seq ${h.seq}`);
      }
      // Otherwise seq h.seq is a gap inside the chain: reported (or forgiven) above.
    }
  }
  return problems.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
}
