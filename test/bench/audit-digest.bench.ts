/**
 * The audit digest job and verification at organisation scale, against dynalite in its own
 * process (the real DynamoDB client over loopback): SUBJECTS people with RECORDS records each,
 * spread over the last DAYS days.
 *
 *  - first digest: walks the 400-day retention window (one byDay Query per day), checks every
 *    record's HMAC link, signs (local ECDSA key) and writes the snapshot;
 *  - incremental digest an hour later, after NEW appends: reads one day's index only;
 *  - `audit verify --all`: one Query per subject plus a HMAC per record.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeTableCommand, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { startDynalite } from '../../bin/local/dynalite';
import { localDigestJobDeps, localDigestPaths, localVerifyDeps } from '../../functions/audit/local';
import { runAuditDigest } from '../../functions/audit/run';
import { verifyAudit } from '../../functions/audit/verify';
import { fixedAuditChainKey } from '../../functions/security/audit-chain-key';
import { DynamoAuditLog } from '../../functions/store/audit';

const SUBJECTS = 2_000;
const RECORDS = 3;
const DAYS = 30;
const NEW = 100;

const dyn = await startDynalite({ childProcess: true });
for (const t of Object.values(dyn.tables)) {
  while ((await dyn.client.send(new DescribeTableCommand({ TableName: t }))).Table?.TableStatus !== 'ACTIVE') await new Promise((r) => setTimeout(r, 5));
}
const dir = mkdtempSync(join(tmpdir(), 'audit-bench-'));
const queries = { byDay: 0, bySubject: 0 };
dyn.client.middlewareStack.add(
  (next, context) => async (args) => {
    if ((context as { commandName?: string }).commandName === 'QueryCommand') {
      if ((args.input as QueryCommandInput).IndexName === 'byDay') queries.byDay++;
      else queries.bySubject++;
    }
    return next(args);
  },
  { step: 'initialize', name: 'countQueries' },
);

try {
  let clock = Date.now() - DAYS * 86_400_000;
  const now = () => new Date(clock);
  const chain = fixedAuditChainKey(Buffer.alloc(32, 9));
  const audit = new DynamoAuditLog(dyn.client, dyn.tables.audit, { chain, now });
  const step = (DAYS * 86_400_000 - 2 * 3_600_000) / (SUBJECTS * RECORDS);
  let t = performance.now();
  for (let r = 0; r < RECORDS; r++) {
    await Promise.all(
      Array.from({ length: 8 }, async (_, lane) => {
        for (let i = lane; i < SUBJECTS; i += 8) {
          await audit.append({ subject: `user:u${i}`, operator: 'sync-worker', action: 'update', outcome: 'ok', changes: [{ field: 'position', old: 'a', new: 'b' }], at: new Date((clock += step)) });
        }
      }),
    );
  }
  const appendMs = performance.now() - t;
  console.log(`setup: ${SUBJECTS * RECORDS} appends in ${(appendMs / 1000).toFixed(1)} s (${((SUBJECTS * RECORDS) / (appendMs / 1000)).toFixed(0)}/s, 8 in flight; each a head Query + a HMAC + a conditional PutItem)`);

  clock = Date.now();
  const base = { dataDir: join(dir, '.data'), audit, chain, now };
  queries.byDay = queries.bySubject = 0;
  t = performance.now();
  const first = await runAuditDigest(localDigestJobDeps(base));
  const firstMs = performance.now() - t;
  const size = statSync(join(localDigestPaths(base.dataDir).dir, first.name)).size;
  console.log(
    `first digest: ${firstMs.toFixed(0)} ms, ${first.recordsRead} records, ${queries.byDay} byDay + ${queries.bySubject} subject queries, ${first.subjects} heads, ${(size / 1024).toFixed(0)} KB (${(size / first.subjects).toFixed(0)} B/subject), problems ${first.problems.length}`,
  );

  clock += 3_600_000;
  for (let i = 0; i < NEW; i++) await audit.append({ subject: `user:u${i * 7}`, operator: 'sync-worker', action: 'noop', outcome: 'ok', at: new Date(clock - 1_800_000 + i) });
  queries.byDay = queries.bySubject = 0;
  t = performance.now();
  const second = await runAuditDigest(localDigestJobDeps(base));
  console.log(`incremental digest (+${NEW} records an hour later): ${(performance.now() - t).toFixed(0)} ms, ${second.recordsRead} records, ${queries.byDay} byDay + ${queries.bySubject} subject queries, ${second.advanced} heads advanced`);

  queries.byDay = queries.bySubject = 0;
  t = performance.now();
  const v = await verifyAudit(localVerifyDeps({ ...base }), { all: true });
  console.log(`verify --all: ${(performance.now() - t).toFixed(0)} ms for ${v.subjects} subjects (${queries.bySubject} subject queries, ${queries.byDay} byDay), ok=${v.ok}`);
  if (!v.ok || first.problems.length || second.problems.length) throw new Error('the clean trail did not verify');
} finally {
  rmSync(dir, { recursive: true, force: true });
  await dyn.close();
}
