/**
 * The loopback simulators' `persistDir` (bin/local/sim/journal.ts): what the HTTP API, the
 * console routes and direct Map calls changed comes back identical in a second simulator on
 * the same directory (a Graph delta link from before the restart still works after it); a
 * torn last line is tolerated; one mutation appends one short line whatever the collection's
 * size; and a real `kill -9` in the middle of creates loses none that was acknowledged.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import type { UserTable } from '../../bin/local/sim/graph/state';
import { createWecomSim, type WecomSim } from '../../bin/local/sim/wecom';
import { DeltaExpired } from '../../functions/mailbox/graph/delta';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { WecomApiClient } from '../../functions/wecom/api';
import { decryptMessage } from '../../functions/wecom/crypto';
import { randomEncodingAESKey } from '../support/wecom-callback-client';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORP = { corpId: 'wwpersist01', contactsSecret: 'contacts-secret-p', appSecret: 'app-secret-p' };
const CB = { token: 'cbTokenPersist', encodingAESKey: randomEncodingAESKey() };
const DAY = 24 * 3600_000;

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sim-persist-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------- a host that outlives a simulator

type Handler = (req: IncomingMessage, res: ServerResponse, subpath: string) => unknown;
/** Routes to whichever simulator is plugged in: a restart keeps the URL, as in the local stack. */
let host: Server;
let hostUrl: string;
let plugged: Handler | undefined;
const plug = (sim: { handle: Handler }) => (plugged = sim.handle);

// The callback receiver: records what the WeCom simulator delivers (decrypted).
let receiver: Server;
let receiverUrl: string;
let delivered: Array<Record<string, string>> = [];
const xml = new XMLParser({ parseTagValue: false });

beforeAll(async () => {
  host = createServer((req, res) => void plugged!(req, res, req.url ?? '/'));
  receiver = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const inner = decryptMessage((xml.parse(body) as { xml: { Encrypt: string } }).xml.Encrypt, { ...CB, corpId: CORP.corpId });
    delivered.push((xml.parse(inner) as { xml: Record<string, string> }).xml);
    res.writeHead(200).end('success');
  });
  for (const s of [host, receiver]) await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/wecom/callback`;
});
afterAll(async () => {
  for (const s of [host, receiver]) await new Promise<void>((ok) => s.close(() => ok()));
});

type Json = Record<string, unknown>;
async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${hostUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Json) : {} };
}

// ---------------------------------------------------------------- WeCom

const wecomState = (sim: WecomSim) => ({
  users: [...sim.users],
  departments: [...sim.departments],
  tags: [...sim.tags].map(([id, members]) => [id, [...members]]),
  pending: sim.pendingCallbacks(),
});

describe('WeCom simulator with persistDir', () => {
  it('API, console and direct Map changes come back identical; pending callbacks are delivered after the restart; an old token gets 40014 and the client refetches', async () => {
    const dir = join(tmp, 'sims');
    const opts = { ...CORP, callback: { url: receiverUrl, ...CB }, persistDir: dir };
    const a = createWecomSim(opts);
    plug(a);
    // Console: departments created, renamed and moved in place, one deleted; members created,
    // updated in place, one deleted.
    for (const name of ['技术部', '市场部', '临时组']) expect((await call('POST', '/departments', { name })).status).toBe(201);
    expect((await call('POST', '/departments/2', { name: '研发部' })).status).toBe(200);
    expect((await call('POST', '/departments/4', { parentid: 2 })).status).toBe(200);
    expect((await call('DELETE', '/departments/4')).status).toBe(200);
    for (const userid of ['zs', 'ls', 'ww']) expect((await call('POST', '/users', { userid, name: userid.toUpperCase(), department: [2] })).status).toBe(201);
    expect((await call('POST', '/users/ls', { position: 'Architect', department: [3] })).status).toBe(200);
    expect((await call('DELETE', '/users/ww')).status).toBe(200);
    delivered = [];
    await a.flushCallbacks(); // delivered: they must not come back after the restart
    expect(delivered).toHaveLength(10);
    delivered = [];
    expect((await call('POST', '/users/zs', { mobile: '+8613800138000' })).status).toBe(200);
    expect((await call('POST', '/users', { userid: 'mm', name: 'MM' })).status).toBe(201);
    // API (contacts secret): create, update in place, delete, tag members added in place.
    const token = (await call('GET', `/cgi-bin/gettoken?corpid=${CORP.corpId}&corpsecret=${CORP.contactsSecret}`)).json.access_token as string;
    const cgi = async (api: string, body: unknown) => (await call('POST', `/cgi-bin/${api}?access_token=${token}`, body)).json.errcode;
    expect(await cgi('user/create', { userid: 'api1', name: 'Api One', department: [3], mobile: '13800000113' })).toBe(0);
    expect(await cgi('user/create', { userid: 'api2', name: 'Api Two', email: 'api2@example.com' })).toBe(0);
    expect(await cgi('user/update', { userid: 'zs', enable: 0, position: 'Lead' })).toBe(0);
    expect((await call('GET', `/cgi-bin/user/delete?access_token=${token}&userid=api2`)).json.errcode).toBe(0);
    expect(await cgi('tag/addtagusers', { tagid: 7, userlist: ['zs', 'ls'] })).toBe(0);
    expect(await cgi('tag/addtagusers', { tagid: 7, userlist: ['api1'] })).toBe(0);
    // Direct Map calls, as tests and tools make them.
    a.users.set('direct', { userid: 'direct', name: 'Direct', department: [1], enable: 1 });
    a.tags.get(7)!.delete('ls');
    a.departments.set(9, { id: 9, name: '直设', parentid: 3 });
    // The product's client reads once: it now holds an app token of simulator a.
    const client = new WecomApiClient({ apiBase: hostUrl, ...CORP, sleep: async () => undefined });
    expect((await client.getUser('zs'))?.position).toBe('Lead');

    const before = wecomState(a);
    expect(before.pending).toBe(2);
    expect(before.users.map(([id]) => id)).toEqual(['zs', 'ls', 'mm', 'api1', 'direct']);

    const b = createWecomSim(opts); // the restart
    plug(b);
    expect(wecomState(b)).toEqual(before);
    expect(b.users.get('zs')).toMatchObject({ enable: 0, position: 'Lead', mobile: '+8613800138000' });
    expect(b.users.get('ls')).toMatchObject({ position: 'Architect', department: [3], main_department: 3 });
    expect(b.departments.get(2)!.name).toBe('研发部');
    expect(b.departments.has(4)).toBe(false);
    expect([...b.tags.get(7)!]).toEqual(['zs', 'api1']);

    // Tokens are not kept: the client's cached one gets 40014, it refetches once and goes on.
    expect((await client.getUser('ls'))?.position).toBe('Architect');
    expect(b.calls.gettoken).toBe(1);
    expect(b.calls['user/get']).toBe(2);

    // The two callbacks pending at the restart are delivered now, in order, once.
    await b.flushCallbacks();
    expect(delivered.map((d) => [d.ChangeType, d.UserID])).toEqual([
      ['update_user', 'zs'],
      ['create_user', 'mm'],
    ]);
    expect(b.pendingCallbacks()).toBe(0);

    // b journals on the compacted file: a third start sees b's changes too.
    expect((await call('POST', '/users', { userid: 'after', name: 'After' })).status).toBe(201);
    const c = createWecomSim(opts);
    expect(wecomState(c)).toEqual(wecomState(b));
    expect(c.users.has('after')).toBe(true);

    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'wecom.jsonl')).mode & 0o777).toBe(0o600);
  });

  it('a torn last line is ignored; the journal is compacted at load; a damaged line elsewhere is refused without echoing it', async () => {
    const dir = join(tmp, 'sims');
    const a = createWecomSim({ ...CORP, persistDir: dir });
    plug(a);
    for (const userid of ['u1', 'u2', 'u3']) await call('POST', '/users', { userid, name: userid });
    for (let i = 0; i < 20; i++) await call('POST', '/users/u1', { position: `P${i}` });
    const file = join(dir, 'wecom.jsonl');
    const journaled = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(journaled.length).toBeGreaterThanOrEqual(24); // root + 3 creates + 20 updates
    // A kill in the middle of a write leaves half a line.
    appendFileSync(file, '{"op":"set","c":"users","k":"torn","v":{"userid":"to');

    const b = createWecomSim({ ...CORP, persistDir: dir });
    expect(wecomState(b)).toEqual(wecomState(a));
    expect(b.users.has('torn')).toBe(false);
    const compacted = readFileSync(file, 'utf8');
    expect(compacted.endsWith('\n')).toBe(true);
    const lines = compacted.trimEnd().split('\n');
    expect(lines).toHaveLength(4); // the state (root department + 3 members), not the history
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(b.users.get('u1')!.position).toBe('P19');

    writeFileSync(file, `${lines[0]}\n{"op":"set","c":"users","k":"x","v":{"mobile":"+861380013\n${lines[1]}\n`);
    let err: unknown;
    try {
      createWecomSim({ ...CORP, persistDir: dir });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(/line 2 is not JSON/);
    expect((err as Error).message).not.toContain('861380013');
  });

  it('without persistDir the collections are plain Maps (the benchmarks pay nothing) and nothing is written', () => {
    const sim = createWecomSim({ ...CORP });
    for (const m of [sim.users, sim.departments, sim.tags]) expect(m.constructor).toBe(Map);
    const g = createGraphSim();
    for (const m of [g.groups, g.subscriptions]) expect(m.constructor).toBe(Map);
    // Users are indexed (by employeeId, UPN, mail …) over a plain Map: the lookups stay O(1), nothing is journaled.
    for (const m of [g.users, g.deletedItems]) expect((m as UserTable).inner.constructor).toBe(Map);
  });
});

// ---------------------------------------------------------------- Graph

const graphState = (sim: GraphSim) => ({
  users: [...sim.users],
  deletedItems: [...sim.deletedItems],
  groups: [...sim.groups].map(([id, g]) => [id, { ...g, members: [...g.members] }]),
  subscriptions: [...sim.subscriptions],
});
/** The notification endpoint: answers the validation handshake, accepts notifications. */
const echo = async (url: string) => ({ status: 200, body: new URL(url).searchParams.get('validationToken') ?? '' });

describe('Graph simulator with persistDir', () => {
  it('users, deleted items, groups and subscriptions come back identical; a delta link from before the restart works after it', async () => {
    const dir = join(tmp, 'sims');
    const opts = { tenantId: 'tp', clientId: 'cp', clientSecret: 'sp', pageSize: 3, persistDir: dir };
    const a = createGraphSim(opts);
    a.setNotify(echo);
    plug(a);
    const g = new GraphDirectory({ apiBase: hostUrl, tokenUrl: `${hostUrl}/tp/oauth2/v2.0/token`, tenantId: 'tp', clientId: 'cp', clientSecret: 'sp', domain: 'example.com', sleep: async () => undefined });
    const ids: Record<string, string> = {};
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) {
      ids[name] = (await g.create({ employeeId: name, email: `${name}@example.com`, displayName: name, mobile: '+8613800138000' })).id;
    }
    const stale = (await g.delta()).deltaLink;
    a.expireDeltaTokens(); // `stale` is dead from now on, restart or not
    const { deltaLink } = await g.delta();

    await g.update(ids.alice!, { jobTitle: 'Lead' }); // PATCH: in place
    await g.disable(ids.bob!);
    const dev = await g.ensureGroup('技术部/研发组');
    const ops = await g.ensureGroup('技术部/运维组');
    await g.setGroupMembership(ids.alice!, [], [dev]);
    await g.setGroupMembership(ids.bob!, [], [dev, ops]);
    await g.setGroupMembership(ids.bob!, [ops], []);
    await g.setGroupMembership(ids.carol!, [], [ops]);
    await g.delete(ids.carol!); // soft: leaves its groups
    await g.delete(ids.dave!);
    a.hardDelete(ids.dave!);
    await g.delete(ids.erin!);
    await g.restore(ids.erin!);
    const sub = await g.createSubscription({ notificationUrl: 'https://hooks.example.com/graph', clientState: 'cs', expirationDateTime: new Date(Date.now() + DAY) });
    await g.renewSubscription(sub.id, new Date(Date.now() + 2 * DAY)); // PATCH: in place
    const expected = await g.delta(deltaLink);
    expect(expected.accounts.map((x) => x.id).sort()).toEqual([ids.alice, ids.bob, ids.erin].sort());
    expect([...expected.removed].sort()).toEqual([ids.carol, ids.dave].sort());
    expect(expected.permanentlyDeleted).toEqual([ids.dave]);
    const before = graphState(a);
    await a.flushNotifications();

    const b = createGraphSim(opts); // the restart
    b.setNotify(echo);
    plug(b);
    expect(graphState(b)).toEqual(before);
    expect(b.users.get(ids.alice!)).toMatchObject({ jobTitle: 'Lead', employeeId: 'alice', mobilePhone: '+8613800138000' });
    expect(b.deletedItems.get(ids.carol!)?.deletedDateTime).toBeTruthy();
    expect([...b.groups.get(dev)!.members]).toEqual([ids.alice, ids.bob]);
    expect(b.groups.get(ops)!.members.size).toBe(0);
    expect(b.subscriptions.get(sub.id)!.expirationDateTime).toBe(before.subscriptions[0]![1].expirationDateTime);

    // The same delta link gives the same answer (the adapter's old token got a 401 and was refetched).
    expect(await g.delta(deltaLink)).toEqual(expected);
    expect(b.calls['POST /token']).toBe(1);
    await expect(g.delta(stale)).rejects.toBeInstanceOf(DeltaExpired);
    // The change log goes on from where it was: a change made now is in the next delta.
    await g.update(ids.alice!, { jobTitle: 'CTO' });
    const next = await g.delta(expected.deltaLink);
    expect(next.accounts.map((x) => [x.id, x.jobTitle])).toEqual([[ids.alice, 'CTO']]);
    // Restored memberships are not Graph's job: erin is in no group.
    expect([...b.groups.values()].some((x) => x.members.has(ids.erin!))).toBe(false);
  });

  it('one mutation appends one short line, whatever the size of the Set it changes', async () => {
    const dir = join(tmp, 'sims');
    const sim = createGraphSim({ persistDir: dir });
    const file = join(dir, 'graph.jsonl');
    const members = new Set(Array.from({ length: 5_000 }, (_, i) => `member-${i}`));
    sim.groups.set('big', { id: 'big', displayName: 'Big', mailNickname: 'big', mailEnabled: false, securityEnabled: true, description: null, members });
    const grew = (fn: () => void) => {
      const size = statSync(file).size;
      fn();
      return statSync(file).size - size;
    };
    expect(grew(() => sim.groups.get('big')!.members.add('one-more'))).toBeLessThan(100);
    expect(grew(() => sim.groups.get('big')!.members.delete('member-7'))).toBeLessThan(100);
    expect(grew(() => sim.groups.get('big')!.members.add('member-8'))).toBe(0); // already there: nothing to write
    const reloaded = createGraphSim({ persistDir: dir }).groups.get('big')!.members;
    expect(reloaded.size).toBe(5_000);
    expect(reloaded.has('one-more')).toBe(true);
    expect(reloaded.has('member-7')).toBe(false);

    const wecom = createWecomSim({ ...CORP, persistDir: dir });
    wecom.tags.set(3, new Set(Array.from({ length: 5_000 }, (_, i) => `u${i}`)));
    const wfile = join(dir, 'wecom.jsonl');
    const size = statSync(wfile).size;
    wecom.tags.get(3)!.add('u-new');
    expect(statSync(wfile).size - size).toBeLessThan(100);
  });
});

// ---------------------------------------------------------------- kill -9

describe('kill -9', () => {
  it.each(['wecom', 'graph'] as const)('%s: a simulator killed in the middle of creates loses none it acknowledged', async (kind) => {
    const dir = join(tmp, kind);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sim-writer.ts', kind, dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: string[] = [];
    let partial = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      const lines = (partial + c).split('\n');
      partial = lines.pop()!;
      acked.push(...lines);
      if (acked.length >= 300 && !child.killed) child.kill('SIGKILL'); // mid-stream: a create is in flight
    });
    const ended = await new Promise<string | number | null>((ok) => child.on('close', (code, signal) => ok(signal ?? code)));
    expect(ended, stderr).toBe('SIGKILL');

    const sim = kind === 'wecom' ? createWecomSim({ ...CORP, persistDir: dir }) : createGraphSim({ persistDir: dir });
    const stored = new Set(sim.users.keys());
    expect(acked.length).toBeGreaterThanOrEqual(300);
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    // At most the one create in flight got written without being acknowledged.
    expect(stored.size - acked.length).toBeGreaterThanOrEqual(0);
    expect(stored.size - acked.length).toBeLessThanOrEqual(1);
  });
});
