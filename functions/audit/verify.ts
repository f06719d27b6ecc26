/**
 * Verification of the audit trail against the signed digests (`wecom-sync audit verify`,
 * `wecom-sync audit --subject`, the tests).
 *
 * Per subject: its items read raw (key order), each record's link under the chain key, seq
 * continuity and links, each item under its own key, and the newest valid digest's head for
 * the subject, which must still be in the chain with the same hash (store/audit-chain.ts has
 * the rules and the kinds of break). A missing prefix or gap that may be TTL expiry is
 * checked once more against an older digest — the newest one created at least the retention
 * period (less one interval) ago — whose heads prove which records existed back then.
 *
 * Scope: one subject, or all: every subject of the newest digest plus every subject with
 * records since it (the whole retention window when there is no digest yet).
 *
 * What remains undetectable (the tolerance, stated in the README too): records appended after
 * the newest digest are protected by their links only — the newest of them can be removed
 * without a trace until the next digest; and records within one digest interval of their
 * expiry can be removed as if they had expired.
 */
import { DEFAULT_DIGEST_INTERVAL_MS } from '../store/audit';
import { checkTrail, type ChainProblem, type SignedHead } from '../store/audit-chain';
import type { AuditChainKey } from '../security/audit-chain-key';
import { newestValidDigest, type OpenedDigest } from './digest';
import { DEFAULT_OVERLAP_MS } from './run';
import type { AuditReader, DigestStore, DigestVerifier } from './ports';

const DAY_MS = 86_400_000;
const PARALLEL_SUBJECTS = 8;

export interface AuditVerifyDeps {
  audit: AuditReader;
  chain: AuditChainKey;
  store: DigestStore;
  verifier: DigestVerifier;
  /** The table's TTL retention. */
  retentionDays: number;
  now?: () => Date;
}

export interface AuditVerification {
  ok: boolean;
  /** How many subjects were checked. */
  subjects: number;
  /** The newest valid digest the heads came from (null: none yet). */
  digest: { name: string; createdAt: string } | null;
  /** The older digest consulted for possibly expired records, when one was needed and found. */
  witness: { name: string; createdAt: string } | null;
  /** Sorted by subject, then seq. */
  problems: ChainProblem[];
}

const summaryOf = (d?: OpenedDigest) => (d ? { name: d.name, createdAt: d.digest.createdAt } : null);

function headOf(d: OpenedDigest | undefined, subject: string): SignedHead | undefined {
  const h = d?.digest.heads[subject];
  return h ? { ...h, digestAt: d!.digest.createdAt } : undefined;
}

export async function verifyAudit(deps: AuditVerifyDeps, scope: { subject: string } | { all: true }): Promise<AuditVerification> {
  const now = (deps.now ?? (() => new Date()))();
  const latest = await newestValidDigest(deps.store, deps.verifier);
  const problems: ChainProblem[] = [...latest.problems];
  const intervalMs = latest.digest ? latest.digest.digest.intervalSeconds * 1000 : DEFAULT_DIGEST_INTERVAL_MS;

  // The witness is read only when some subject has a gap that expiry might explain.
  let witness: Promise<OpenedDigest | undefined> | undefined;
  const loadWitness = () =>
    (witness ??= newestValidDigest(deps.store, deps.verifier, { atOrBefore: new Date(now.getTime() - deps.retentionDays * DAY_MS + intervalMs) }).then((w) => {
      for (const p of w.problems) if (!problems.some((q) => q.subject === p.subject && q.kind === p.kind)) problems.push(p);
      return w.digest;
    }));

  const subjects = 'subject' in scope ? [scope.subject] : await subjectsToCheck(deps.audit, latest.digest, now, deps.retentionDays);
  let witnessUsed: OpenedDigest | undefined;
  const checkOne = async (subject: string) => {
    const stored = await deps.audit.rawBySubject(subject);
    const head = headOf(latest.digest, subject);
    const base = { ...(head ? { head } : {}), now, retentionDays: deps.retentionDays, intervalMs };
    let found = await checkTrail(subject, stored, deps.chain, base);
    if (found.some((p) => p.kind === 'removed')) {
      const w = await loadWitness();
      const wHead = headOf(w, subject);
      if (wHead) {
        witnessUsed = w;
        found = await checkTrail(subject, stored, deps.chain, { ...base, witnesses: [wHead] });
      }
    }
    problems.push(...found);
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL_SUBJECTS, subjects.length) }, async () => {
      while (next < subjects.length) await checkOne(subjects[next++]!);
    }),
  );

  problems.sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : (a.seq ?? 0) - (b.seq ?? 0)));
  return { ok: problems.length === 0, subjects: subjects.length, digest: summaryOf(latest.digest), witness: summaryOf(witnessUsed), problems };
}

/** The newest digest's subjects plus those with records since it (or in the whole window). */
async function subjectsToCheck(audit: AuditReader, latest: OpenedDigest | undefined, now: Date, retentionDays: number): Promise<string[]> {
  const out = new Set(Object.keys(latest?.digest.heads ?? {}));
  const windowStart = now.getTime() - retentionDays * DAY_MS;
  const from = latest ? Math.max(windowStart, Date.parse(latest.digest.createdAt) - DEFAULT_OVERLAP_MS) : windowStart;
  for await (const page of audit.rawByTime(new Date(from), now)) for (const s of page) out.add(s.pk);
  return [...out].sort();
}
