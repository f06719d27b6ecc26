/**
 * The scheduled digest job: fold the records appended since the previous digest into its
 * heads, check them, sign the new snapshot and store it (append-only).
 *
 * Incremental: the previous digest's heads + the records with `at` since its creation (minus
 * a small overlap: `at` is taken before the write lands, and clocks differ a little), read
 * day by day through the byDay index. A record at or below a subject's head is already
 * covered and skipped. The very first digest (or the first after every stored one turned out
 * invalid) walks the whole retention window by day. Memory holds one page of records plus a
 * small state per subject.
 *
 * It never signs a head it has not checked: a subject's head advances only over records
 * that authenticate under the chain key, sit under their own key and link to the record
 * before (known from the previous head or the previous record). At the first record that
 * fails, that subject's head stays where it was and the problem is reported; other subjects
 * still advance, and the digest is signed. A gap in what the window showed is first looked
 * up directly (a record may carry an `at` older than the window); if the records are really
 * gone it is reported as `removed` (unless they can have expired) and the head continues
 * after the gap, so later records stay anchored while verification keeps reporting the gap.
 *
 * Heads whose record is older than the retention period are dropped: their trails have
 * expired, and verification forgives their absence.
 */
import { authenticate, isInPlace, type ChainProblem, type StoredAuditRecord } from '../store/audit-chain';
import type { AuditChainKey } from '../security/audit-chain-key';
import { DIGEST_VERSION, digestName, newestValidDigest, sealDigest, type AuditDigest, type ChainHead } from './digest';
import type { AuditReader, DigestSigner, DigestStore } from './ports';

const DAY_MS = 86_400_000;
/** Records whose `at` is this much before the previous digest are read again (and skipped). */
export const DEFAULT_OVERLAP_MS = 10 * 60_000;

export interface DigestJobDeps {
  audit: AuditReader;
  chain: AuditChainKey;
  store: DigestStore;
  signer: DigestSigner;
  retentionDays: number;
  /** The schedule's period (recorded in the digest: the verifier's tolerance). Default: the previous digest's, else 3600. */
  intervalSeconds?: number;
  now?: () => Date;
  overlapMs?: number;
}

export interface DigestRunResult {
  name: string;
  createdAt: string;
  /** The previous digest this one builds on (null: walked the retention window). */
  previous: string | null;
  subjects: number;
  /** Subjects whose head moved. */
  advanced: number;
  recordsRead: number;
  /** Chain problems found in what was read, and digests that did not verify. */
  problems: ChainProblem[];
}

interface Track {
  head?: ChainHead;
  /** The next seq the chain continues with (undefined: a subject seen for the first time). */
  next?: number;
  /** The link the next record must name (undefined: not known, e.g. after an expired gap). */
  link?: string;
  pending: Map<number, StoredAuditRecord>;
  /** A record failed its check: the head no longer advances in this run. */
  stopped: boolean;
  moved: boolean;
}

export async function runAuditDigest(deps: DigestJobDeps): Promise<DigestRunResult> {
  const now = (deps.now ?? (() => new Date()))();
  const { digest: prev, problems } = await newestValidDigest(deps.store, deps.signer);
  const windowStart = now.getTime() - deps.retentionDays * DAY_MS;
  const from = new Date(prev ? Math.max(windowStart, Date.parse(prev.digest.createdAt) - (deps.overlapMs ?? DEFAULT_OVERLAP_MS)) : windowStart);
  const intervalSeconds = deps.intervalSeconds ?? prev?.digest.intervalSeconds ?? 3600;
  const expiryBound = windowStart + intervalSeconds * 1000;

  const tracks = new Map<string, Track>();
  const track = (subject: string): Track => {
    let t = tracks.get(subject);
    if (!t) {
      const head = prev?.digest.heads[subject];
      t = { ...(head ? { head, next: head.seq + 1, link: head.hash } : {}), pending: new Map(), stopped: false, moved: false };
      tracks.set(subject, t);
    }
    return t;
  };
  const report = (subject: string, seq: number | undefined, kind: ChainProblem['kind'], detail: string) =>
    problems.push({ subject, ...(seq !== undefined ? { seq } : {}), kind, detail });

  /** Advance over pending records while they continue the chain and check out. */
  const drain = async (subject: string, t: Track) => {
    if (t.next === undefined && t.pending.size) t.next = Math.min(...t.pending.keys());
    // A first-seen subject starts at its lowest seq in the window; an older one arriving
    // later (a raced append across midnight) is left out rather than rewinding the head.
    for (const k of t.pending.keys()) if (t.next !== undefined && k < t.next) t.pending.delete(k);
    while (!t.stopped && t.next !== undefined && t.pending.has(t.next)) {
      const s = t.pending.get(t.next)!;
      t.pending.delete(t.next);
      const auth = await authenticate(s.record, deps.chain);
      if (auth !== 'ok') {
        const later = [...t.pending.keys()].some((k) => k > s.record.seq);
        if (auth === 'no-alg') report(subject, s.record.seq, 'unauthenticated', 'no chain MAC (alg): not written with the chain key');
        else report(subject, s.record.seq, later ? 'edited' : 'inserted', 'does not verify under the chain key');
        t.stopped = true;
      } else if (t.link !== undefined && s.record.prevHash !== t.link) {
        report(subject, s.record.seq - 1, 'edited', `the link of seq ${s.record.seq} does not name the record before it`);
        t.stopped = true;
      } else {
        t.head = { seq: s.record.seq, hash: s.record.hash, at: s.record.at };
        t.link = s.record.hash;
        t.next = s.record.seq + 1;
        t.moved = true;
      }
    }
  };

  let recordsRead = 0;
  // One UTC day of pages at a time: sorted per subject, so appends that raced (a later seq
  // with an earlier `at`) still arrive in chain order.
  let day = '';
  let batch: StoredAuditRecord[] = [];
  const flush = async () => {
    const bySubject = new Map<string, StoredAuditRecord[]>();
    for (const s of batch) {
      const list = bySubject.get(s.pk);
      if (list) list.push(s);
      else bySubject.set(s.pk, [s]);
    }
    batch = [];
    for (const [subject, items] of bySubject) {
      const t = track(subject);
      for (const s of items) {
        if (!isInPlace(s, subject)) {
          report(subject, Number.isInteger(s.record.seq) ? s.record.seq : undefined, 'inserted', `an item under key ${s.sk} that is not its own seq and subject`);
          continue;
        }
        if (t.head && s.record.seq <= t.head.seq) continue; // covered by the previous digest
        t.pending.set(s.record.seq, s);
      }
      await drain(subject, t);
    }
  };
  for await (const page of deps.audit.rawByTime(from, now)) {
    recordsRead += page.length;
    for (const s of page) {
      const d = s.record.at?.slice(0, 10) ?? '';
      if (d !== day && batch.length) await flush();
      day = d;
      batch.push(s);
    }
  }
  await flush();

  // Gaps the window did not explain: look the records up directly, then report what is gone.
  for (const [subject, t] of tracks) {
    while (!t.stopped && t.pending.size) {
      const before = t.pending.size;
      const first = Math.min(...t.pending.keys());
      const missingFrom = t.next ?? first;
      const direct = await deps.audit.rawBySubject(subject, { fromSeq: missingFrom, toSeq: first - 1 });
      for (const s of direct) if (isInPlace(s, subject)) t.pending.set(s.record.seq, s);
      await drain(subject, t);
      if (t.stopped || !t.pending.size) break;
      const after = Math.min(...t.pending.keys());
      if (t.next !== undefined && after > t.next) {
        const gone = t.next === after - 1 ? `seq ${t.next} missing` : `seq ${t.next}..${after - 1} missing`;
        const expired = Date.parse(t.pending.get(after)!.record.at) < expiryBound;
        if (!expired) report(subject, t.next, 'removed', gone);
        // Continue after the gap: the next record's link names a record we cannot check.
        t.next = after;
        t.link = undefined;
        await drain(subject, t);
      }
      if (t.pending.size >= before) break; // no progress: never loop
    }
  }

  const heads: Record<string, ChainHead> = {};
  for (const [subject, head] of Object.entries(prev?.digest.heads ?? {})) heads[subject] = head;
  for (const [subject, t] of tracks) if (t.head) heads[subject] = t.head;
  for (const [subject, head] of Object.entries(heads)) if (Date.parse(head.at) < windowStart) delete heads[subject];

  const digest: AuditDigest = {
    version: DIGEST_VERSION,
    createdAt: now.toISOString(),
    retentionDays: deps.retentionDays,
    intervalSeconds,
    previous: prev?.bodyHash ?? null,
    heads,
  };
  const name = digestName(digest.createdAt);
  await deps.store.put(name, await sealDigest(digest, deps.signer));
  return {
    name,
    createdAt: digest.createdAt,
    previous: prev?.name ?? null,
    subjects: Object.keys(heads).length,
    advanced: [...tracks.values()].filter((t) => t.moved).length,
    recordsRead,
    problems,
  };
}
