/**
 * The WeCom and Graph simulators in their own Node process, so a benchmark's CPU figure is
 * the product's and not the simulators'. Started by `startSimsProcess()`; the child prints
 * its endpoints as one JSON line, answers `GET /stats` (calls, 45009s, linked accounts,
 * members) on a third port, and exits with its parent's stdin.
 *
 * Child env: SIMS_CONFIG = JSON { corp, wecomPerMinute, graphRate, seed: N } (seed: N new
 * Graph accounts person00000… in 技术部/研发组, the WeCom tree with that path).
 *
 * `directory: N` (the reconcile-scale bench) seeds, straight into the simulators' maps (a
 * bench-only bulk seed in this loopback child, never an HTTP route): N WeCom members
 * p0000000… and their linked Graph accounts, in sync but for planted drift — every 1,000th
 * member has no account (missing-in-mailbox), every 97th has another title in WeCom
 * (fields-differ), and one unlinked account per 5,000 (unmanaged). `GET /stats?light=1`
 * leaves out the per-account lists.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createGraphSim } from '../../../bin/local/sim/graph';
import { createWecomSim } from '../../../bin/local/sim/wecom';

export interface SimsConfig {
  corp: { corpId: string; contactsSecret: string; appSecret: string };
  wecomPerMinute: number;
  graphRate: number;
  seed: number;
  /** Bulk seed for reconcile: N members and their linked accounts, with planted drift (above). */
  directory?: number;
  /** Graph page size of GET /users (default Graph's 100 / $top up to 999). */
  graphMaxTop?: number;
}

/** What the bulk seed plants, so a bench can check the report. */
export function plantedDrift(n: number): { missing: number; fieldsDiffer: number; unmanaged: number } {
  let missing = 0;
  let fieldsDiffer = 0;
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 999) missing++;
    else if (i % 97 === 0) fieldsDiffer++;
  }
  return { missing, fieldsDiffer, unmanaged: Math.floor(n / 5000) };
}

export interface SimsStats {
  wecomCalls: Record<string, number>;
  wecomRateLimited: Record<string, number>;
  linked: number;
  distinctLinks: number;
  members: number;
  enabledMembers: number;
  accountIds: string[];
}

export interface LightStats {
  wecomCalls: Record<string, number>;
  wecomRateLimited: Record<string, number>;
  members: number;
  accounts: number;
  graphCalls: Record<string, number>;
}

export interface SimsProcess {
  lightStats(): Promise<LightStats>;
  wecomBase: string;
  graphBase: string;
  pid: number;
  stats(): Promise<SimsStats>;
  resetCalls(): Promise<void>;
  close(): Promise<void>;
}

export async function startSimsProcess(config: SimsConfig): Promise<SimsProcess> {
  const child = spawn(process.execPath, [...(config.directory ? ['--max-old-space-size=8192'] : []), '--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, SIMS_CONFIG: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const first = await new Promise<string>((ok, fail) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) ok(buf.slice(0, nl));
    });
    child.once('exit', (code) => fail(new Error(`simulators exited with ${code}`)));
  });
  const { wecomBase, graphBase, statsBase } = JSON.parse(first) as { wecomBase: string; graphBase: string; statsBase: string };
  return {
    wecomBase,
    graphBase,
    pid: child.pid!,
    stats: async () => (await (await fetch(`${statsBase}/stats`)).json()) as SimsStats,
    lightStats: async () => (await (await fetch(`${statsBase}/stats?light=1`)).json()) as LightStats,
    resetCalls: async () => void (await fetch(`${statsBase}/reset`, { method: 'POST' })),
    close: async () => {
      child.stdin!.end();
      await new Promise((ok) => child.once('exit', ok));
    },
  };
}

async function main(): Promise<void> {
  const c = JSON.parse(process.env.SIMS_CONFIG!) as SimsConfig;
  const wecom = createWecomSim({ ...c.corp, rateLimit: { perApi: c.wecomPerMinute, windowMs: 60_000, blockMs: 60_000 } });
  wecom.departments.set(2, { id: 2, name: '技术部', parentid: 1, order: 1 });
  wecom.departments.set(3, { id: 3, name: '研发组', parentid: 2, order: 1 });
  const graph = createGraphSim({ tenantId: 't', clientId: 'c', clientSecret: 's', rateLimit: { perSecond: c.graphRate }, retryAfterSeconds: 1, ...(c.graphMaxTop ? { maxTop: c.graphMaxTop } : {}) });
  for (let i = 0; i < c.seed; i++) {
    const local = `person${String(i).padStart(5, '0')}`;
    graph.seedUser({ userPrincipalName: `${local}@example.com`, mail: `${local}@example.com`, displayName: `员工 ${i}`, mailNickname: local, mobilePhone: `139 ${String(10_000_000 + i).slice(-8)}`, jobTitle: '工程师', department: '技术部/研发组' });
  }
  for (let i = 0; i < (c.directory ?? 0); i++) {
    const userid = `p${String(i).padStart(7, '0')}`;
    const mobile = `+86 139${String(10_000_000 + (i % 90_000_000)).slice(-8)}`;
    wecom.users.set(userid, { userid, name: `员工${i}`, mobile, position: i % 97 === 0 ? '架构师' : '工程师', department: [3], main_department: 3, enable: 1, status: 1 });
    if (i % 5000 === 4999) graph.seedUser({ userPrincipalName: `shared${i}@example.com`, mail: `shared${i}@example.com`, displayName: `Shared ${i}` });
    if (i % 1000 === 999) continue;
    graph.seedUser({
      userPrincipalName: `${userid}@example.com`,
      mail: `${userid}@example.com`,
      displayName: `员工${i}`,
      mailNickname: userid,
      mobilePhone: mobile,
      jobTitle: '工程师',
      department: '技术部/研发组',
      employeeId: userid,
    });
  }
  const [w, g] = await Promise.all([wecom.start(), graph.start()]);
  const stats = createServer((req, res) => {
    if (req.url === '/reset') {
      for (const k of Object.keys(wecom.calls)) delete wecom.calls[k];
      return void res.end('{}');
    }
    if (req.url === '/stats?light=1') {
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify({ wecomCalls: wecom.calls, wecomRateLimited: wecom.rateLimited, members: wecom.users.size, accounts: graph.users.size, graphCalls: graph.calls }));
    }
    const links = [...graph.users.values()].map((u) => u.employeeId).filter((e): e is string => !!e);
    const members = [...wecom.users.values()];
    const out: SimsStats = {
      wecomCalls: wecom.calls,
      wecomRateLimited: wecom.rateLimited,
      linked: links.length,
      distinctLinks: new Set(links).size,
      members: members.length,
      enabledMembers: members.filter((m) => m.enable === 1).length,
      accountIds: [...graph.users.keys()],
    };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(out));
  });
  await new Promise<void>((ok) => stats.listen(0, '127.0.0.1', () => ok()));
  process.stdout.write(JSON.stringify({ wecomBase: w.baseUrl, graphBase: g.baseUrl, statsBase: `http://127.0.0.1:${(stats.address() as AddressInfo).port}` }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

if (process.env.SIMS_CONFIG && process.argv[1] === fileURLToPath(import.meta.url)) await main();
