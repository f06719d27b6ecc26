/**
 * `npm run bench`: runs every test/bench/*.bench.ts in its own Node process (so module-load
 * and memory figures are not polluted by each other), one after another, and fails if any
 * benchmark fails. Each benchmark prints its own figures. `npm run bench -- callback` runs
 * only the benchmarks whose file name contains "callback"; `npm run bench -- reconcile-scale`
 * the chunked reconcile at 1,000,000 people (tens of minutes on 2 cores; `RS_N=100000` for a
 * quicker run).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts') && (!filter || f.includes(filter)))
  .sort();
let failed = 0;
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, file)], { stdio: 'inherit' });
  if (run.status !== 0) {
    failed++;
    console.error(`!!! ${file} exited with ${run.status}`);
  }
}
console.log(`\n${files.length - failed} benchmarks passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
