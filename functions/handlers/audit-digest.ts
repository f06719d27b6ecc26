/**
 * Scheduled Lambda (EventBridge, hourly by default): runAuditDigest (audit/run.ts) with AWS
 * wiring — fold the audit records appended since the previous digest into the chain heads,
 * check their links, sign the snapshot with the KMS signing key and store it in the Object
 * Lock bucket. Thin: wire, call, log, map.
 *
 * Chain problems found on the way (a record that does not verify, records gone) are logged
 * as counts per kind — never subjects or values — and make the invocation fail AFTER the
 * digest is stored, so the function's Errors metric and alarm fire; `wecom-sync audit verify
 * --all` names the subjects and seqs. The role reads the audit table and the chain key's
 * meta item, unwraps the chain key (kms:Decrypt with its encryption context, never Generate:
 * this function must not mint a key), signs with the signing key and writes digests; it
 * cannot write the audit or state table (lib/stack.ts ACCESS).
 */
import middy from '@middy/core';
import { requireSetting } from '../config/secrets';
import { log } from '../core/log';
import type { ChainProblem } from '../store/audit-chain';
import type { DigestJobDeps, DigestRunResult } from '../audit/run';

export interface AuditDigestHandlerDeps {
  /** Called at each invocation; the deployed handler builds the clients once per container. */
  jobDeps: () => Promise<DigestJobDeps>;
}

export interface AuditDigestSummary {
  name: string;
  subjects: number;
  advanced: number;
  recordsRead: number;
  problems: number;
  byKind: Partial<Record<ChainProblem['kind'], number>>;
}

export class AuditChainProblemsError extends Error {
  constructor(readonly summary: AuditDigestSummary) {
    super(
      `audit digest ${summary.name} stored; ${summary.problems} chain problem(s) found (${Object.entries(summary.byKind)
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ')}): run \`wecom-sync audit verify --all\``,
    );
    this.name = 'AuditChainProblemsError';
  }
}

export function summarize(r: DigestRunResult): AuditDigestSummary {
  const byKind: AuditDigestSummary['byKind'] = {};
  for (const p of r.problems) byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
  return { name: r.name, subjects: r.subjects, advanced: r.advanced, recordsRead: r.recordsRead, problems: r.problems.length, byKind };
}

export function createAuditDigestHandler(deps: AuditDigestHandlerDeps) {
  return middy(async (): Promise<AuditDigestSummary> => {
    const { runAuditDigest } = await import('../audit/run');
    const summary = summarize(await runAuditDigest(await deps.jobDeps()));
    if (summary.problems > 0) {
      log.error('audit digest: chain problems found', { ...summary });
      throw new AuditChainProblemsError(summary);
    }
    log.info('audit digest stored', { ...summary });
    return summary;
  });
}

async function awsJobDeps(): Promise<DigestJobDeps> {
  const [{ dynamoClient }, { DynamoAuditLog, AUDIT_RETENTION_DAYS }, { createAuditChainKey }, { KMSClient }, { S3Client }, { KmsDigestSigner }, { S3DigestStore }] = await Promise.all([
    import('../store/dynamo'),
    import('../store/audit'),
    import('../security/cipher-from-env'),
    import('@aws-sdk/client-kms'),
    import('@aws-sdk/client-s3'),
    import('../audit/kms-signer'),
    import('../audit/s3-store'),
  ]);
  const dynamo = dynamoClient();
  const chain = await createAuditChainKey(dynamo, process.env, { create: false });
  const retentionDays = Number(process.env.AUDIT_RETENTION_DAYS) || AUDIT_RETENTION_DAYS;
  const kms = new KMSClient(process.env.KMS_ENDPOINT ? { endpoint: process.env.KMS_ENDPOINT } : {});
  return {
    audit: new DynamoAuditLog(dynamo, requireSetting('AUDIT_TABLE'), { chain, retentionDays }),
    chain,
    store: new S3DigestStore(new S3Client({}), requireSetting('AUDIT_DIGEST_BUCKET')),
    signer: new KmsDigestSigner(kms, requireSetting('AUDIT_DIGEST_KEY_ID')),
    retentionDays,
    intervalSeconds: Number(process.env.AUDIT_DIGEST_INTERVAL_SECONDS) || 3600,
  };
}

let wired: Promise<DigestJobDeps> | undefined;
export const handler = createAuditDigestHandler({
  jobDeps: () => {
    wired ??= awsJobDeps();
    // A failed wiring is retried by the next invocation.
    wired.catch(() => (wired = undefined));
    return wired;
  },
});
