/**
 * lifecycle.source 'mailbox' over the real wires: the WeCom and Graph simulators on loopback,
 * the real API clients, DynamoDB (dynalite) for state and audit, the engine as the worker runs
 * it. Each rule of docs/architecture.md's mailbox-source section, end to end: born in the
 * mailbox, created disabled then enabled, userid collisions refused, a missing department
 * held, mailbox-owned fields flowing to WeCom (and a WeCom edit put back), the echo of our
 * own writes bounded, the delta feed (410 included) and reconcile as the safety net.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { stateFeedCursor } from '../../functions/mailbox/feed-cursor';
import { graph } from '../../functions/mailbox/graph/index';
import type { SyncMessage } from '../../functions/queue/messages';
import { syncSubject } from '../../functions/sync/engine';
import { reconcileAll } from '../../functions/sync/reconcile';
import { GRAPH, startSyncEnv, type SyncEnv } from '../support/reconcile-env';

let env: SyncEnv;
let n = 0;

// A fresh world per test (its own dynalite, key and simulators): claims and links do not leak.
beforeEach(async () => {
  await env?.close();
  env = await startSyncEnv({ config: { lifecycle: { source: 'mailbox' } } });
  // WeCom's tree: 技术部 (2) under the root, 研发组 (3) under it.
  env.wecomSim.departments.set(2, { id: 2, name: '技术部', parentid: 1, order: 1 });
  env.wecomSim.departments.set(3, { id: 3, name: '研发组', parentid: 2, order: 1 });
  env.deps.departments.invalidate();
});
afterAll(async () => env?.close());

/** What the worker does with a message on the account's subject (a notification, the delta read). */
const fromMailbox = (id: string) =>
  syncSubject({ v: 1, subject: `mailbox:graph:${id.toLowerCase()}`, source: 'mailbox', eventId: `m-${++n}`, hint: 'graph.updated', operator: 'graph-notification', receivedAt: new Date().toISOString() }, env.deps);

/** A WeCom callback for the member (our own write's echo, or a console edit). */
const fromWecom = (userid: string) => env.sync(userid, 'update_user');

const seed = (local: string, extra: Record<string, unknown> = {}) =>
  env.graphSim.seedUser({
    userPrincipalName: `${local}@example.com`,
    mail: `${local}@example.com`,
    displayName: `${local.toUpperCase()} 测试`,
    mailNickname: local,
    mobilePhone: `138-0013-${String(8000 + ++n).slice(-4)}`, // WeCom refuses a mobile two members share (60104)
    jobTitle: '工程师',
    department: '技术部/研发组',
    ...extra,
  });

/** Write calls made so far on each side (reads are free to repeat). */
const writes = () => ({
  wecom: ['user/create', 'user/update', 'user/delete', 'department/create'].reduce((s, k) => s + (env.wecomSim.calls[k] ?? 0), 0),
  graph: env.graphSim.requests.filter((r) => r.method !== 'GET' && r.route !== 'POST /token').length,
});

describe('born in the mailbox, over the simulators', () => {
  it('a new account: linked, the WeCom member created disabled with E.164 mobile and the address, then enabled', async () => {
    const u = seed('wang.wu');
    const out = await fromMailbox(u.id);
    expect(out.resolved).toBe('user:wang.wu');
    expect(env.graphSim.users.get(u.id)!.employeeId).toBe('wang.wu');
    const member = env.wecomSim.users.get('wang.wu')!;
    expect(member).toMatchObject({ name: 'WANG.WU 测试', position: '工程师', mobile: expect.stringMatching(/^\+86 1380013\d{4}$/), email: 'wang.wu@example.com', department: [3], enable: 1 });
    expect(env.wecomSim.calls['user/create']).toBe(1);
    const actions = (await env.deps.audit.bySubject('user:wang.wu')).map((r) => `${r.action}:${r.target}:${r.outcome}`);
    expect(actions).toEqual(['update:mailbox:ok', 'create:wecom:ok', 'enable:wecom:ok']);
  });

  it('the echo is bounded: the WeCom callbacks of our own writes and a repeated notification write nothing more on either side', async () => {
    const u = seed('zhao.liu');
    await fromMailbox(u.id);
    const after = writes();
    await fromWecom('zhao.liu'); // create_user callback
    await fromWecom('zhao.liu'); // update_user (the enable)
    await fromMailbox(u.id); // Graph's notification of our employeeId PATCH
    expect(writes()).toEqual(after);
  });

  it('a later jobTitle change in the mailbox reaches WeCom position, one update; a WeCom console edit of it is put back and audited revert', async () => {
    const u = seed('sun.qi');
    await fromMailbox(u.id);
    const before = env.wecomSim.calls['user/update'] ?? 0;
    u.jobTitle = '高级工程师';
    env.graphSim.users.set(u.id, u);
    await fromMailbox(u.id);
    expect(env.wecomSim.users.get('sun.qi')!.position).toBe('高级工程师');
    expect(env.wecomSim.calls['user/update']).toBe(before + 1);

    // An admin edits the position in the WeCom console: AD is the record, so it is put back.
    const edit = await fetch(`${env.wecomBase}/users/sun.qi`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ position: '经理' }) });
    expect(edit.status).toBe(200);
    await fromWecom('sun.qi');
    expect(env.wecomSim.users.get('sun.qi')!.position).toBe('高级工程师');
    const last = (await env.deps.audit.bySubject('user:sun.qi')).at(-1)!;
    expect(last).toMatchObject({ action: 'revert', target: 'wecom', outcome: 'ok' });
    expect(last.changes?.map((c) => c.field)).toEqual(['position']);
  });

  it('userid collisions are refused, never suffixed: a WeCom member with the userid, and two accounts deriving one userid', async () => {
    env.wecomSim.users.set('li.si', { userid: 'li.si', name: '李四（老员工）', department: [1], main_department: 1, enable: 1, status: 1 });
    const taken = seed('li.si');
    await fromMailbox(taken.id);
    expect(env.graphSim.users.get(taken.id)!.employeeId).toBeNull();
    expect(env.wecomSim.calls['user/create'] ?? 0).toBe(0);
    const refused = (await env.deps.audit.bySubject(`mailbox:graph:${taken.id}`)).at(-1)!;
    expect(refused).toMatchObject({ outcome: 'refused' });
    expect(refused.reason).toMatch(/userid 'li\.si' collides: WeCom already has a member/);

    // Two accounts whose local parts give one userid (two domains): reconcile names both.
    const a = seed('chen', { userPrincipalName: 'chen@example.com', mail: 'chen@example.com' });
    const b = seed('chen2', { userPrincipalName: 'chen@sub.example.com', mail: 'chen@sub.example.com' });
    const report = await reconcileAll(env.deps);
    const collisions = report.findings.filter((f) => f.class === 'userid-collision').map((f) => f.accountId).sort();
    expect(collisions).toEqual([a.id, b.id, taken.id].sort());
    expect(report.findings.filter((f) => f.class === 'not-yet-linked')).toEqual([]);
    // The engine, one after the other: the first links, the second is refused (its userid is carried).
    await fromMailbox(a.id);
    await fromMailbox(b.id);
    expect([env.graphSim.users.get(a.id)!.employeeId, env.graphSim.users.get(b.id)!.employeeId]).toEqual(['chen', null]);
    expect(env.wecomSim.users.has('chen')).toBe(true);
  });

  it('a department WeCom lacks: created in the root, held disabled, reported incomplete with the reason; complete once WeCom has it', async () => {
    const u = seed('zhou.ba', { department: '市场部' });
    await fromMailbox(u.id);
    expect(env.wecomSim.users.get('zhou.ba')).toMatchObject({ enable: 0, department: [1] });
    const report = await reconcileAll(env.deps);
    const mine = report.findings.filter((f) => f.userid === 'zhou.ba');
    expect(mine.map((f) => f.class).sort()).toEqual(['incomplete', 'mailbox-department-unknown']);
    expect(mine.find((f) => f.class === 'incomplete')!.detail).toMatch(/created disabled, waiting for a complete record: .*市场部/);

    env.wecomSim.departments.set(7, { id: 7, name: '市场部', parentid: 1, order: 2 });
    env.deps.departments.invalidate();
    await fromMailbox(u.id);
    expect(env.wecomSim.users.get('zhou.ba')).toMatchObject({ enable: 1, department: [7] });
  });

  it('reconcile repairs what the feed missed: an unlinked account in scope is born, a guest never', async () => {
    const u = seed('wu.jiu');
    const guest = seed('partner', { userType: 'Guest' });
    const report = await reconcileAll(env.deps, { repair: true, apply: true });
    expect(report.findings.find((f) => f.accountId === u.id)).toMatchObject({ class: 'not-yet-linked', repair: 'applied' });
    expect(report.findings.find((f) => f.accountId === guest.id)).toMatchObject({ class: 'unmanaged' });
    expect(env.wecomSim.users.get('wu.jiu')).toMatchObject({ enable: 1 });
    expect(env.wecomSim.users.has('partner')).toBe(false);
    const again = await reconcileAll(env.deps);
    expect(again.findings.filter((f) => f.class !== 'unmanaged')).toEqual([]);
  });
});

describe('the delta feed as the source of new people', () => {
  it('a new account found by the scheduled delta read is born; after 410 the read starts from now and reconcile finds the gap', async () => {
    const config = parseRuntimeConfig({
      provider: 'graph',
      mailDomain: 'example.com',
      lifecycle: { source: 'mailbox' },
      // The delta read as the only feed (as for a 21Vianet tenant), on the global simulator.
      graph: { changeNotifications: false, apiBase: env.graphBase, tokenUrl: `${env.graphBase}/${GRAPH.tenantId}/oauth2/v2.0/token` },
    });
    const queued: SyncMessage[] = [];
    const conn = graph.create(config, { ...GRAPH, webhookSecret: 'w' }, { sleep: async () => undefined, feed: { cursor: stateFeedCursor(env.deps.state, 'graph'), enqueue: async (m) => void queued.push(...m) } });
    expect(conn.feed.kind).toBe('delta');
    expect((await conn.feed.upkeep()).caughtUp).toEqual({ changed: 0, full: true }); // first run: a cursor from now on

    const u = seed('new.hire');
    // seedUser does not journal a change for delta: the simulator's console-side create does.
    await fetch(`${env.graphBase}/v1.0/users/${u.id}`, { method: 'PATCH', headers: { authorization: `Bearer ${await token()}`, 'content-type': 'application/json' }, body: '{"jobTitle":"工程师"}' });
    const r = await conn.feed.upkeep();
    expect(r.caughtUp).toEqual({ changed: 1, full: false });
    expect(queued.map((m) => m.subject)).toEqual([`mailbox:graph:${u.id}`]);
    await syncSubject(queued[0]!, env.deps);
    expect(env.wecomSim.users.get('new.hire')).toMatchObject({ enable: 1 });

    // The cursor expires (~7 days for directory objects): the read starts from now …
    env.graphSim.expireDeltaTokens();
    const lost = seed('gap.person');
    await fetch(`${env.graphBase}/v1.0/users/${lost.id}`, { method: 'PATCH', headers: { authorization: `Bearer ${await token()}`, 'content-type': 'application/json' }, body: '{"jobTitle":"工程师"}' });
    queued.length = 0;
    expect((await conn.feed.upkeep()).caughtUp).toEqual({ changed: 0, full: true });
    expect(queued).toEqual([]);
    // … and the change made in the gap is reconcile's to find.
    const report = await reconcileAll(env.deps, { repair: true, apply: true });
    expect(report.findings.find((f) => f.accountId === lost.id)).toMatchObject({ class: 'not-yet-linked', repair: 'applied' });
    expect(env.wecomSim.users.get('gap.person')).toMatchObject({ enable: 1 });
  });
});

async function token(): Promise<string> {
  const res = await fetch(`${env.graphBase}/${GRAPH.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: GRAPH.clientId, client_secret: GRAPH.clientSecret, scope: 'https://graph.microsoft.com/.default' }).toString(),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}
