/**
 * The LDAP polling feed at scale, against a real slapd: a directory of N people (default
 * 50,000; LDAP_BENCH_N to change) loaded offline with slapadd, then
 *   1. the first full read: every account through listPage (what reconcile reads), pages of 500;
 *   2. the feed's first run (no cursor: OpenLDAP has no server clock to read, so it scans every
 *      entry's modifyTimestamp for the mark, and, with the state's N ids wired as `known`,
 *      compares them for deletions);
 *   3. 100 changes made by an administrator (95 modifications, 5 deletions), then an
 *      incremental poll WITH the deletion sweep (ids of the whole directory compared with the
 *      known ones), and after 100 more modifications one WITHOUT it (deletionSweepMinutes not
 *      yet due): the steady-state poll every 5 minutes.
 * Printed per phase: wall time, peak RSS and heap (sampled every 5 ms), this process's CPU,
 * and slapd's CPU share (/proc/<pid>/stat, as % of one core over the phase's wall time).
 * slapd and the bench share the machine's cores; loopback, no TLS.
 *
 * Run: npx tsx test/bench/ldap-poll.bench.ts (or npm run bench -- ldap).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { Attribute, Change } from 'ldapts';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import type { LdapDirectory } from '../../functions/mailbox/ldap/directory';
import { ldap } from '../../functions/mailbox/ldap/index';
import type { FeedCursorStore } from '../../functions/mailbox/provider';
import type { SyncMessage } from '../../functions/queue/messages';
import { PEOPLE, SKIP_REASON, slapdBinary, startSlapd, SYNC_DN, SYNC_PW } from '../support/slapd';

const N = Number(process.env.LDAP_BENCH_N ?? 50_000);
const DEPTS = 50;

if (!slapdBinary()) {
  console.log(`ldap-poll bench skipped: ${SKIP_REASON}`);
  process.exit(0);
}

const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const slapdCpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK; // utime + stime
};

function ldif(): string {
  const out: string[] = [];
  for (let d = 0; d < DEPTS; d++) out.push(`dn: ou=d${d},${PEOPLE}\nobjectClass: organizationalUnit\nou: d${d}\n`);
  for (let i = 0; i < N; i++) {
    const uid = `u${String(i).padStart(6, '0')}`;
    out.push(
      [
        `dn: uid=${uid},ou=d${i % DEPTS},${PEOPLE}`,
        'objectClass: inetOrgPerson',
        `uid: ${uid}`,
        `cn: User ${i}`,
        `sn: ${i}`,
        `displayName: User ${i}`,
        `mail: ${uid}@example.com`,
        `employeeNumber: ${uid}`,
        `mobile: +86138${String(i).padStart(8, '0')}`,
        'title: Engineer',
        `departmentNumber: 部门${i % DEPTS}`,
        '',
      ].join('\n'),
    );
  }
  return out.join('\n');
}

interface Figures {
  ms: number;
  peakRssMb: number;
  peakHeapMb: number;
  heapDeltaMb: number;
  cpuMs: number;
  slapdCpuMs: number;
}

async function measure<T>(pid: number, fn: () => Promise<T>): Promise<[T, Figures]> {
  const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
  const before = process.memoryUsage();
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 5);
  const cpu0 = process.cpuUsage();
  const s0 = slapdCpuMs(pid);
  const t0 = performance.now();
  const result = await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(timer);
  const after = process.memoryUsage();
  return [result, { ms, peakRssMb: mb(Math.max(peakRss, after.rss)), peakHeapMb: mb(Math.max(peakHeap, after.heapUsed)), heapDeltaMb: mb(after.heapUsed - before.heapUsed), cpuMs: (cpu.user + cpu.system) / 1000, slapdCpuMs: slapdCpuMs(pid) - s0 }];
}

function print(label: string, f: Figures, extra = ''): void {
  const share = (cpu: number) => `${Math.round((cpu / f.ms) * 100)} %`;
  console.log(
    `${label.padEnd(44)} ${f.ms.toFixed(0).padStart(6)} ms  peak RSS ${String(f.peakRssMb).padStart(6)} MB  peak heap ${String(f.peakHeapMb).padStart(6)} MB (Δ ${f.heapDeltaMb} MB)  ` +
      `bench CPU ${share(f.cpuMs).padStart(5)}  slapd CPU ${share(f.slapdCpuMs).padStart(5)}${extra ? `  ${extra}` : ''}`,
  );
}

const tSeed = performance.now();
const text = ldif();
const slapd = await startSlapd({ seedLdif: text, auditlog: false, indexes: ['modifyTimestamp eq', 'entryCSN eq', 'departmentNumber eq'] });
console.log(`ldap-poll: ${N.toLocaleString('en')} entries in ${DEPTS} OUs, slapadd + start ${((performance.now() - tSeed) / 1000).toFixed(1)} s (${(text.length / 1048576).toFixed(1)} MB of LDIF)`);
try {
  const admin = await slapd.admin();
  const cursorStore: FeedCursorStore & { value?: string } = { get: async () => cursorStore.value, put: async (v) => void (cursorStore.value = v) };
  let queued: SyncMessage[] = [];
  let known: string[] = [];
  const connect = (sweepMinutes: number) =>
    ldap.create(
      parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap: { urls: [slapd.url], baseDn: PEOPLE, allowPlaintext: true, pageSize: 500, feed: { deletionSweepMinutes: sweepMinutes } } }),
      { bindDn: SYNC_DN, bindPassword: SYNC_PW, webhookSecret: 'w' },
      { feed: { cursor: cursorStore, enqueue: async (m) => void queued.push(...m), known: async function* () { yield* known; } } },
    );
  const conn = connect(0);

  // 1. the first full read
  const [ids, full] = await measure(slapd.pid, async () => {
    const out: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await conn.directory.listPage(cursor);
      for (const a of page.accounts) out.push(a.id);
      cursor = page.next;
    } while (cursor);
    return out;
  });
  if (ids.length !== N) throw new Error(`listed ${ids.length}, expected ${N}`);
  print('1. full read (listPage, pages of 500)', full, `${Math.round(N / (full.ms / 1000)).toLocaleString('en')} accounts/s`);
  known = ids;

  // 2. the feed's first run
  const [first, firstF] = await measure(slapd.pid, () => conn.feed.upkeep());
  print('2. first poll (mark + deletion baseline)', firstF, `queued ${first.caughtUp?.changed}, cursor ${cursorStore.value!.length} B`);

  // 3. 100 changes, then an incremental poll with the deletion sweep
  const dn = (i: number) => `uid=u${String(i).padStart(6, '0')},ou=d${i % DEPTS},${PEOPLE}`;
  const changed = new Set<number>();
  for (let k = 0; k < 95; k++) {
    const i = (k * 523 + 17) % N;
    changed.add(i);
    await admin.modify(dn(i), new Change({ operation: 'replace', modification: new Attribute({ type: 'title', values: [`Changed ${k}`] }) }));
  }
  for (let k = 0; k < 5; k++) {
    let i = (k * 9973 + 101) % N;
    while (changed.has(i)) i = (i + 1) % N;
    changed.add(i);
    await admin.del(dn(i));
  }
  queued = [];
  const [inc, incF] = await measure(slapd.pid, () => conn.feed.upkeep());
  if (queued.length !== 100 || inc.caughtUp?.changed !== 100) throw new Error(`incremental poll queued ${queued.length}, expected 100`);
  print('3a. poll after 100 changes, with deletion sweep', incF, `queued ${queued.length} (${queued.filter((m) => m.hint === 'ldap.gone').length} gone)`);

  const steady = connect(60);
  for (let k = 0; k < 100; k++) {
    const i = (k * 331 + 5) % N;
    if (changed.has(i)) continue;
    await admin.modify(dn(i), new Change({ operation: 'replace', modification: new Attribute({ type: 'title', values: [`Again ${k}`] }) }));
  }
  queued = [];
  const [, steadyF] = await measure(slapd.pid, () => steady.feed.upkeep());
  print('3b. poll after ~100 changes, sweep not due', steadyF, `queued ${queued.length}, cursor ${cursorStore.value!.length} B`);

  queued = [];
  const [, idleF] = await measure(slapd.pid, () => steady.feed.upkeep());
  print('3c. poll with nothing changed, sweep not due', idleF, `queued ${queued.length}`);

  await (conn.directory as LdapDirectory).close();
  await (steady.directory as LdapDirectory).close();
} finally {
  await slapd.stop();
}
