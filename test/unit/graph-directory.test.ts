/**
 * The Graph adapter against the loopback Graph simulator over real HTTP.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import { DeltaExpired } from '../../functions/mailbox/graph/delta';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { escapeODataString } from '../../functions/mailbox/graph/wire';
import { initialPassword as strongPassword } from '../../functions/mailbox/password';
import { MailboxError } from '../../functions/mailbox/directory';

const TENANT = 'contoso-tenant';
let sim: GraphSim;
let server: { baseUrl: string; close(): Promise<void> };
let waits: number[];

function directory(overrides: Partial<ConstructorParameters<typeof GraphDirectory>[0]> = {}) {
  return new GraphDirectory({
    apiBase: server.baseUrl,
    tokenUrl: `${server.baseUrl}/${TENANT}/oauth2/v2.0/token`,
    tenantId: TENANT,
    clientId: 'app-1',
    clientSecret: 's3cret-value',
    domain: 'Example.com',
    usageLocation: 'CN',
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...overrides,
  });
}

beforeAll(async () => {
  sim = createGraphSim({ tenantId: TENANT, clientId: 'app-1', clientSecret: 's3cret-value', pageSize: 3, maxTop: 3 });
  server = await sim.start();
});
afterAll(async () => server.close());

beforeEach(() => {
  waits = [];
  sim.users.clear();
  sim.deletedItems.clear();
  sim.groups.clear();
  sim.requests.length = 0;
  for (const k of Object.keys(sim.calls)) delete sim.calls[k];
  sim.setFailRate(0);
});
afterEach(() => sim.setFailRate(0));

const alice = { employeeId: 'alice', email: 'Alice@Example.com', displayName: 'Alice Liu', mobile: '+8613800138000', telephone: '+861088886666', jobTitle: 'Engineer', department: '技术部/研发组' };

describe('GraphDirectory users', () => {
  it('creates an account with a strong one-time password, UPN on the tenant domain and usageLocation', async () => {
    const g = directory();
    const acc = await g.create(alice);
    expect(acc).toMatchObject({ employeeId: 'alice', enabled: true, email: 'alice@example.com', mobile: '+8613800138000', telephone: '+861088886666', department: '技术部/研发组' });
    const stored = sim.users.get(acc.id)!;
    expect(stored.userPrincipalName).toBe('alice@example.com');
    expect(stored.usageLocation).toBe('CN');
    expect(stored.passwordSet).toBe(true);
    const post = sim.requests.find((r) => r.route === 'POST /v1.0/users')!;
    const body = post.body as { passwordProfile: { password: string; forceChangePasswordNextSignIn: boolean } };
    expect(body.passwordProfile.forceChangePasswordNextSignIn).toBe(true);
    // The password never comes back in the account.
    expect(JSON.stringify(acc)).not.toContain(body.passwordProfile.password);
  });

  it('finds by employeeId with the advanced-query headers, escaping quotes', async () => {
    const g = directory();
    sim.seedUser({ userPrincipalName: 'o@example.com', displayName: "O'Brien", employeeId: "o'brien" });
    sim.seedUser({ userPrincipalName: 'x@example.com', displayName: 'Unlinked' });
    const found = await g.findByEmployeeId("o'brien");
    expect(found?.displayName).toBe("O'Brien");
    const req = sim.requests.find((r) => r.route === 'GET /v1.0/users')!;
    expect(req.query.$filter).toBe("employeeId eq 'o''brien'");
    expect(req.query.$count).toBe('true');
    expect(req.headers.consistencylevel).toBe('eventual');
    expect(await g.findByEmployeeId('nobody')).toBeUndefined();
    expect(escapeODataString("a'b''c")).toBe("a''b''''c");
  });

  it('refuses to pick when two accounts share an employeeId', async () => {
    sim.seedUser({ userPrincipalName: 'a1@example.com', displayName: 'A', employeeId: 'dup' });
    sim.seedUser({ userPrincipalName: 'a2@example.com', displayName: 'A', employeeId: 'dup' });
    await expect(directory().findByEmployeeId('dup')).rejects.toMatchObject({ code: 'AmbiguousEmployeeId', retryable: false });
  });

  it('partial update sends only the keys present; null clears', async () => {
    const g = directory();
    const acc = await g.create(alice);
    sim.requests.length = 0;
    await g.update(acc.id, { jobTitle: 'Lead' });
    expect(sim.requests.filter((r) => r.method === 'PATCH').map((r) => r.body)).toEqual([{ jobTitle: 'Lead' }]);
    await g.update(acc.id, { mobile: null, telephone: null });
    expect(sim.requests.filter((r) => r.method === 'PATCH')[1]!.body).toEqual({ mobilePhone: null, businessPhones: [] });
    const got = await g.get(acc.id);
    expect(got).toMatchObject({ jobTitle: 'Lead', mobile: null, telephone: null, displayName: 'Alice Liu' });
    await g.update(acc.id, {});
    expect(sim.requests.filter((r) => r.method === 'PATCH')).toHaveLength(2);
  });

  it('disables, enables, soft-deletes (get reports deleted), delete is idempotent', async () => {
    const g = directory();
    const acc = await g.create(alice);
    await g.disable(acc.id);
    expect(sim.users.get(acc.id)!.accountEnabled).toBe(false);
    expect((await g.get(acc.id))!.enabled).toBe(false);
    await g.enable(acc.id);
    expect((await g.get(acc.id))!.enabled).toBe(true);
    await g.delete(acc.id);
    expect(sim.users.has(acc.id)).toBe(false);
    expect(await g.get(acc.id)).toMatchObject({ id: acc.id, deleted: true, enabled: false });
    await g.delete(acc.id); // already gone
    sim.hardDelete(acc.id);
    expect(await g.get(acc.id)).toBeUndefined();
  });

  it('reads admin-typed phones back as E.164', async () => {
    const u = sim.seedUser({ userPrincipalName: 'p@example.com', displayName: 'P', mobilePhone: '+86 138 0013 8000', businessPhones: ['010-8888 6666'] });
    const got = await directory().get(u.id);
    expect(got!.mobile).toBe('+8613800138000');
    expect(got!.telephone).toBe('010-8888 6666'); // not parseable without a country: kept as stored
  });

  it('lists every account across pages following nextLink', async () => {
    for (let i = 0; i < 7; i++) sim.seedUser({ userPrincipalName: `u${i}@example.com`, displayName: `U${i}` });
    const g = directory();
    // $top=999 is asked for; the sim caps pages at 3 to exercise paging.
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await g.listPage(cursor);
      seen.push(...page.accounts.map((a) => a.email!));
      cursor = page.next;
      pages++;
    } while (cursor);
    expect(new Set(seen).size).toBe(7);
    expect(pages).toBe(3);
    expect(sim.requests.find((r) => r.route === 'GET /v1.0/users')!.query.$top).toBe('999');
  });

  it('maps a duplicate UPN to a non-retryable MailboxError with Graph\'s code and no personal data', async () => {
    const g = directory();
    await g.create(alice);
    const err = await g.create({ ...alice, employeeId: 'alice2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailboxError);
    expect(err).toMatchObject({ retryable: false, code: 'Request_BadRequest' });
    const msg = (err as Error).message;
    expect(msg).toContain('ObjectConflict');
    expect(msg).not.toMatch(/alice|13800138000|s3cret|Bearer/i);
  });

  it('404 on a write is non-retryable and names only the route', async () => {
    const err = await directory().update('00000000-dead', { jobTitle: 'x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ retryable: false, code: 'Request_ResourceNotFound' });
    expect((err as Error).message).toBe('Graph PATCH /users/{id} failed: 404 Request_ResourceNotFound');
  });

  it('never sends the token to a link outside the API base', async () => {
    await expect(directory().listPage('https://evil.example.net/v1.0/users')).rejects.toMatchObject({ code: 'UnexpectedLink' });
  });

  it('generates passwords that meet complexity', () => {
    for (let i = 0; i < 50; i++) {
      const p = strongPassword();
      expect(p).toHaveLength(20);
      expect(p).toMatch(/[a-z]/);
      expect(p).toMatch(/[A-Z]/);
      expect(p).toMatch(/\d/);
      expect(p).toMatch(/[^A-Za-z0-9]/);
    }
  });
});

describe('GraphDirectory deleted items (restore before create)', () => {
  /** A soft-deleted account of `employeeId`, deleted at `at` (the sim's clock is real time). */
  function deleted(employeeId: string, upn: string, at: string) {
    const u = sim.seedUser({ userPrincipalName: upn, displayName: employeeId, employeeId });
    sim.users.delete(u.id);
    sim.deletedItems.set(u.id, { ...u, deletedDateTime: at });
    return u.id;
  }

  it('findDeleted: the most recently deleted of several (any page), exact employeeId only, undefined when none', async () => {
    // Five of alice's (pages of 3: the newest is on page 2, neither first nor last), a
    // same-letters-other-case id deleted later still, and bob's.
    deleted('alice', 'a1@example.com', '2026-01-01T00:00:00Z');
    deleted('alice', 'a2@example.com', '2026-01-02T00:00:00Z');
    deleted('alice', 'a3@example.com', '2026-01-03T00:00:00Z');
    const newest = deleted('alice', 'a4@example.com', '2026-03-01T00:00:00Z');
    deleted('alice', 'a5@example.com', '2026-01-04T00:00:00Z');
    deleted('Alice', 'a6@example.com', '2026-04-01T00:00:00Z');
    deleted('bob', 'b1@example.com', '2026-05-01T00:00:00Z');
    const g = directory();
    const found = await g.findDeleted('alice');
    expect(found).toMatchObject({ id: newest, employeeId: 'alice', email: 'a4@example.com', deleted: true });
    const reqs = sim.requests.filter((r) => r.route === 'GET /v1.0/directory/deletedItems/microsoft.graph.user');
    expect(reqs).toHaveLength(2); // followed the nextLink
    expect(reqs[0]!.query.$filter).toBe("employeeId eq 'alice'");
    expect(reqs[0]!.query.$count).toBe('true');
    expect(reqs[0]!.query.$select!.split(',')).toEqual(expect.arrayContaining(['employeeId', 'accountEnabled', 'deletedDateTime']));
    expect(reqs.every((r) => r.headers.consistencylevel === 'eventual')).toBe(true);
    expect(await g.findDeleted('nobody')).toBeUndefined();
    expect(await g.findDeleted("o'brien")).toBeUndefined(); // a quote is escaped, not a 400
  });

  it('restore: same id and properties, live again; create with that UPN had failed before it; delta and one notification', async () => {
    const g = directory();
    const acc = await g.create(alice);
    const dev = await g.ensureGroup('技术部/研发组');
    await g.setGroupMembership(acc.id, [], [dev]);
    await g.delete(acc.id);
    const { deltaLink } = await g.delta(); // taken after the delete: only the restore can bring the account back
    // The soft-deleted account still holds the UPN: this is why the sync restores.
    await expect(g.create(alice)).rejects.toMatchObject({ code: 'Request_BadRequest', message: expect.stringContaining('ObjectConflict') });
    const found = await g.findDeleted('alice');
    expect(found).toMatchObject({ id: acc.id, deleted: true });

    sim.subscriptions.set('sub-r', {
      id: 'sub-r',
      resource: 'users',
      changeType: 'updated,deleted',
      notificationUrl: 'https://hooks.example.com/graph',
      lifecycleNotificationUrl: null,
      clientState: 'cs',
      expirationDateTime: new Date(Date.now() + 3_600_000).toISOString(),
      applicationId: 'app-1',
    });
    const notified: Array<{ changeType: string; resource: string }> = [];
    sim.setNotify(async (_url, body) => {
      notified.push(...(JSON.parse(body) as { value: Array<{ changeType: string; resource: string }> }).value);
      return { status: 202, body: '' };
    });
    try {
      const restored = await g.restore(acc.id);
      await sim.flushNotifications();
      expect(restored).toMatchObject({ id: acc.id, employeeId: 'alice', enabled: true, email: 'alice@example.com', mobile: '+8613800138000', department: '技术部/研发组' });
      expect(restored.deleted).toBeUndefined();
      expect(notified).toEqual([expect.objectContaining({ changeType: 'updated', resource: `Users/${acc.id}` })]);
    } finally {
      sim.setNotify(undefined);
      sim.subscriptions.clear();
    }
    const live = await g.get(acc.id);
    expect(live).toMatchObject({ id: acc.id, employeeId: 'alice', enabled: true, jobTitle: 'Engineer' });
    expect(live!.deleted).toBeUndefined();
    expect(sim.deletedItems.has(acc.id)).toBe(false);
    expect(await g.findDeleted('alice')).toBeUndefined();
    // Memberships are not part of the restore: the sync sets them again.
    expect(sim.groups.get(dev)!.members.has(acc.id)).toBe(false);
    const changes = await g.delta(deltaLink);
    expect(changes.accounts.map((a) => [a.id, a.employeeId])).toEqual([[acc.id, 'alice']]);
    expect(sim.calls['POST /v1.0/directory/deletedItems/{id}/restore']).toBe(1);
    const post = sim.requests.find((r) => r.route === 'POST /v1.0/directory/deletedItems/{id}/restore')!;
    expect(post.body).toBe(''); // no body
  });

  it('restore again (a retry whose first answer was lost) returns the live account', async () => {
    const g = directory();
    const acc = await g.create(alice);
    await g.delete(acc.id);
    await g.restore(acc.id);
    expect(await g.restore(acc.id)).toMatchObject({ id: acc.id, employeeId: 'alice', enabled: true });
  });

  it('restore of an unknown id: non-retryable Request_ResourceNotFound naming only the route', async () => {
    const err = await directory().restore('00000000-dead').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailboxError);
    expect(err).toMatchObject({ retryable: false, code: 'Request_ResourceNotFound' });
    expect((err as Error).message).toBe('Graph POST /directory/deletedItems/{id}/restore failed: 404 Request_ResourceNotFound');
  });

  it('restore while a live user holds the UPN: Request_BadRequest/ObjectConflict without personal data; nothing moves', async () => {
    const g = directory();
    const acc = await g.create(alice);
    await g.delete(acc.id);
    sim.seedUser({ userPrincipalName: 'alice@example.com', displayName: 'Another Alice', mobilePhone: '+8613900139000' });
    const err = await g.restore(acc.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailboxError);
    expect(err).toMatchObject({ retryable: false, code: 'Request_BadRequest' });
    expect((err as Error).message).toContain('ObjectConflict');
    expect((err as Error).message).not.toMatch(/alice|example\.com|1390013|13800138000|s3cret|Bearer/i);
    expect(sim.deletedItems.has(acc.id)).toBe(true);
    expect(sim.users.has(acc.id)).toBe(false);
  });
});

describe('GraphDirectory tokens', () => {
  it('fetches one token for many requests', async () => {
    const g = directory();
    const u = sim.seedUser({ userPrincipalName: 't@example.com', displayName: 'T' });
    await Promise.all(Array.from({ length: 10 }, () => g.get(u.id)));
    await g.get(u.id);
    expect(sim.calls['POST /token']).toBe(1);
    const tokenReq = sim.requests.find((r) => r.route === 'POST /token')!;
    expect(String(tokenReq.body)).toContain('scope=https%3A%2F%2Fgraph.microsoft.com%2F.default');
    expect(String(tokenReq.body)).toContain('grant_type=client_credentials');
  });

  it('refetches the token once on 401', async () => {
    const g = directory();
    const u = sim.seedUser({ userPrincipalName: 't@example.com', displayName: 'T' });
    await g.get(u.id);
    sim.revokeTokens();
    expect((await g.get(u.id))!.id).toBe(u.id);
    expect(sim.calls['POST /token']).toBe(2);
  });

  it('refreshes a token shortly before it expires', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z');
    const g = directory({ now: () => new Date(t) });
    const u = sim.seedUser({ userPrincipalName: 't@example.com', displayName: 'T' });
    await g.get(u.id);
    t += 50 * 60_000; // 50 min: still fresh (token lives ~60 min, refreshed 5 min early)
    await g.get(u.id);
    expect(sim.calls['POST /token']).toBe(1);
    t += 6 * 60_000; // 56 min
    await g.get(u.id);
    expect(sim.calls['POST /token']).toBe(2);
  });

  it('a wrong secret fails without leaking it', async () => {
    const err = await directory({ clientSecret: 'wrong-secret-value' }).get('x').catch((e: unknown) => e);
    expect(err).toMatchObject({ retryable: false, code: 'invalid_client' });
    expect((err as Error).message).not.toContain('wrong-secret-value');
  });
});

describe('GraphDirectory throttling', () => {
  it('with 30% of calls throttled every operation eventually succeeds, honouring Retry-After', async () => {
    let seed = 7;
    const s2 = createGraphSim({
      tenantId: TENANT,
      clientId: 'app-1',
      clientSecret: 's3cret-value',
      failRate: 0.3,
      retryAfterSeconds: 2,
      random: () => ((seed = (seed * 16807) % 2147483647) / 2147483647),
    });
    const srv = await s2.start();
    try {
      const g = new GraphDirectory({
        apiBase: srv.baseUrl,
        tokenUrl: `${srv.baseUrl}/${TENANT}/oauth2/v2.0/token`,
        tenantId: TENANT,
        clientId: 'app-1',
        clientSecret: 's3cret-value',
        domain: 'example.com',
        maxRetries: 8,
        sleep: async (ms) => {
          waits.push(ms);
        },
      });
      const ids: string[] = [];
      for (let i = 0; i < 15; i++) ids.push((await g.create({ employeeId: `e${i}`, email: `e${i}@example.com`, displayName: `E${i}` })).id);
      for (const id of ids) await g.update(id, { jobTitle: 'T' });
      const many = await g.getMany(ids);
      expect(many.size).toBe(15);
      expect([...s2.users.values()].every((u) => u.jobTitle === 'T')).toBe(true);
      expect(s2.users.size).toBe(15);
      expect(waits.length).toBeGreaterThan(3);
      // Retry-After honoured, spread over up to one more second so throttled callers do not return together.
      expect(waits.every((w) => w >= 2000 && w <= 3000)).toBe(true);
      expect(new Set(waits).size).toBeGreaterThan(1);
    } finally {
      await srv.close();
    }
  });

  it('gives up after maxRetries with a retryable error carrying retryAfterMs', async () => {
    sim.setFailRate(1);
    const err = await directory({ maxRetries: 2 }).get('x').catch((e: unknown) => e);
    expect(err).toMatchObject({ retryable: true, code: 'TooManyRequests', retryAfterMs: 1000 }); // what Graph asked, for the queue
    expect(waits).toHaveLength(2);
    expect(waits.every((w) => w >= 1000 && w <= 2000)).toBe(true);
  });
});

describe('GraphDirectory batch and delta', () => {
  it('getMany batches ≤ 20 per request and omits unknown ids', async () => {
    const ids = Array.from({ length: 45 }, (_, i) => sim.seedUser({ userPrincipalName: `b${i}@example.com`, displayName: `B${i}` }).id);
    const got = await directory().getMany([...ids, 'missing-id']);
    expect(got.size).toBe(45);
    expect(got.get(ids[44]!)!.email).toBe('b44@example.com');
    expect(sim.calls['POST /v1.0/$batch']).toBe(3);
    for (const r of sim.requests.filter((x) => x.route === 'POST /v1.0/$batch')) {
      expect((r.body as { requests: unknown[] }).requests.length).toBeLessThanOrEqual(20);
    }
  });

  it('delta: initial full read, then only changes and removals; 410 → DeltaExpired', async () => {
    const g = directory();
    const a = await g.create(alice);
    const b = await g.create({ employeeId: 'bob', email: 'bob@example.com', displayName: 'Bob' });
    for (let i = 0; i < 4; i++) sim.seedUser({ userPrincipalName: `d${i}@example.com`, displayName: `D${i}` });
    const first = await g.delta();
    expect(first.accounts).toHaveLength(6); // spans pages of 3
    expect(first.removed).toEqual([]);
    const again = await g.delta(first.deltaLink);
    expect(again.accounts).toEqual([]);
    await g.update(a.id, { jobTitle: 'CTO' });
    await g.delete(b.id);
    const changes = await g.delta(again.deltaLink);
    expect(changes.accounts.map((x) => [x.id, x.jobTitle])).toEqual([[a.id, 'CTO']]);
    expect(changes.removed).toEqual([b.id]);
    expect(changes.permanentlyDeleted).toEqual([]);
    sim.hardDelete(b.id);
    const hard = await g.delta(changes.deltaLink);
    expect(hard.permanentlyDeleted).toEqual([b.id]);
    sim.expireDeltaTokens();
    await expect(g.delta(hard.deltaLink)).rejects.toBeInstanceOf(DeltaExpired);
  });
});

describe('GraphDirectory groups', () => {
  it('ensureGroup creates one security group per path and finds it again', async () => {
    const g = directory();
    const id1 = await g.ensureGroup('技术部/研发组');
    const id2 = await directory().ensureGroup('技术部/研发组'); // fresh instance: found via mailNickname
    expect(id2).toBe(id1);
    expect(sim.groups.size).toBe(1);
    const grp = sim.groups.get(id1)!;
    expect(grp).toMatchObject({ displayName: '技术部/研发组', securityEnabled: true, mailEnabled: false });
    expect(grp.mailNickname).toMatch(/^wms-[0-9a-f]{24}$/);
    // An admin's same-named group is not adopted.
    sim.groups.set('admin-g', { id: 'admin-g', displayName: '市场部', mailNickname: 'market', mailEnabled: false, securityEnabled: true, description: null, members: new Set() });
    expect(await g.ensureGroup('市场部')).not.toBe('admin-g');
  });

  it('moves membership; re-adding an existing member and removing a non-member are successes', async () => {
    const g = directory();
    const acc = await g.create(alice);
    const dev = await g.ensureGroup('技术部/研发组');
    const ops = await g.ensureGroup('技术部/运维组');
    await g.setGroupMembership(acc.id, [], [dev]);
    await g.setGroupMembership(acc.id, [], [dev]); // already a member: 400 from Graph, success for us
    expect([...sim.groups.get(dev)!.members]).toEqual([acc.id]);
    await g.setGroupMembership(acc.id, [dev], [ops]);
    expect(sim.groups.get(dev)!.members.size).toBe(0);
    expect([...sim.groups.get(ops)!.members]).toEqual([acc.id]);
    await g.setGroupMembership(acc.id, [dev], [ops]);
    const refPost = sim.requests.find((r) => r.route === 'POST /v1.0/groups/{id}/members/$ref')!;
    expect(refPost.body).toEqual({ '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${acc.id}` });
  });

  it('adding a user that does not exist fails non-retryably', async () => {
    const g = directory();
    const dev = await g.ensureGroup('技术部');
    await expect(g.setGroupMembership('ghost', [], [dev])).rejects.toMatchObject({ retryable: false });
  });
});

describe('Graph simulator wire details', () => {
  it('rate limit: bursts above perSecond get 429 + Retry-After; the adapter waits and completes', async () => {
    let clock = Date.parse('2026-11-24T00:00:00Z');
    const s2 = createGraphSim({ tenantId: TENANT, clientId: 'app-1', clientSecret: 's3cret-value', rateLimit: { perSecond: 5 }, now: () => new Date(clock) });
    const srv = await s2.start();
    try {
      const slept: number[] = [];
      const g = new GraphDirectory({
        apiBase: srv.baseUrl,
        tokenUrl: `${srv.baseUrl}/${TENANT}/oauth2/v2.0/token`,
        tenantId: TENANT,
        clientId: 'app-1',
        clientSecret: 's3cret-value',
        domain: 'example.com',
        now: () => new Date(clock),
        // Sleeping advances the shared clock instead of real time.
        sleep: async (ms) => {
          slept.push(ms);
          clock += ms;
        },
      });
      const u = s2.seedUser({ userPrincipalName: 'r@example.com', displayName: 'R' });
      for (let i = 0; i < 20; i++) expect((await g.get(u.id))!.id).toBe(u.id);
      expect(slept.length).toBeGreaterThanOrEqual(3);
      expect(slept.every((ms) => ms >= 1000 && ms <= 2000)).toBe(true);
      const throttled = s2.requests.filter((r) => r.route === 'GET /v1.0/users/{id}').length - 20;
      expect(throttled).toBe(slept.length);
    } finally {
      await srv.close();
    }
  });

  it('deletedItems: the type cast is mandatory; $filter, $count (with ConsistencyLevel), $select, $top paging; items typed and dated', async () => {
    const token = ((await (await fetch(`${server.baseUrl}/${TENANT}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'app-1', client_secret: 's3cret-value', scope: 'https://graph.microsoft.com/.default' }),
    })).json()) as { access_token: string }).access_token;
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(path.startsWith('http') ? path : `${server.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
      return { status: res.status, json: (await res.json()) as { value?: Array<Record<string, unknown>>; error?: { code: string }; '@odata.nextLink'?: string; '@odata.count'?: number } };
    };
    for (let i = 0; i < 4; i++) {
      const u = sim.seedUser({ userPrincipalName: `g${i}@example.com`, displayName: `G${i}`, employeeId: i === 3 ? 'other' : 'gone' });
      sim.users.delete(u.id);
      sim.deletedItems.set(u.id, { ...u, deletedDateTime: `2026-01-0${i + 1}T00:00:00Z` });
    }
    expect(await get('/v1.0/directory/deletedItems')).toMatchObject({ status: 400, json: { error: { code: 'Request_BadRequest' } } });
    const q = `$filter=${encodeURIComponent("employeeId eq 'gone'")}&$count=true&$select=id,employeeId`;
    expect(await get(`/v1.0/directory/deletedItems/microsoft.graph.user?${q}`)).toMatchObject({ status: 400, json: { error: { code: 'Request_UnsupportedQuery' } } });
    const page = await get(`/v1.0/directory/deletedItems/microsoft.graph.user?${q}&$top=2`, { ConsistencyLevel: 'eventual' });
    expect(page.status).toBe(200);
    expect(page.json['@odata.count']).toBe(3);
    expect(page.json.value).toEqual([
      { '@odata.type': '#microsoft.graph.user', id: expect.any(String), employeeId: 'gone', deletedDateTime: '2026-01-01T00:00:00Z' },
      { '@odata.type': '#microsoft.graph.user', id: expect.any(String), employeeId: 'gone', deletedDateTime: '2026-01-02T00:00:00Z' },
    ]);
    const next = await get(page.json['@odata.nextLink']!, { ConsistencyLevel: 'eventual' });
    expect(next.json.value!.map((u) => u.deletedDateTime)).toEqual(['2026-01-03T00:00:00Z']);
    expect(next.json['@odata.nextLink']).toBeUndefined();
    const byUpn = await get(`/v1.0/directory/deletedItems/microsoft.graph.user?$filter=${encodeURIComponent("userPrincipalName eq 'G3@example.com'")}`);
    expect(byUpn.json.value).toEqual([expect.objectContaining({ '@odata.type': '#microsoft.graph.user', userPrincipalName: 'g3@example.com' })]);
    expect((await get(`/v1.0/directory/deletedItems/microsoft.graph.user?$filter=${encodeURIComponent("jobTitle eq 'x'")}`)).status).toBe(400);
    // Counters stay templated.
    expect(Object.keys(sim.calls).filter((k) => k.includes('deletedItems')).sort()).toEqual([
      'GET /v1.0/directory/deletedItems',
      'GET /v1.0/directory/deletedItems/microsoft.graph.user',
    ]);
  });

  it('mounted under a prefix, links carry the prefix and Bearer is required', async () => {
    const { createServer } = await import('node:http');
    const mounted = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url.startsWith('/_sim/graph/')) sim.handle(req, res, url.slice('/_sim/graph'.length));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => mounted.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(mounted.address() as import('node:net').AddressInfo).port}/_sim/graph`;
    try {
      for (let i = 0; i < 5; i++) sim.seedUser({ userPrincipalName: `m${i}@example.com`, displayName: `M${i}` });
      const g = directory({ apiBase: base, tokenUrl: `${base}/${TENANT}/oauth2/v2.0/token` });
      const first = await g.listPage();
      expect(first.next!.startsWith(`${base}/v1.0/users?`)).toBe(true);
      const second = await g.listPage(first.next);
      expect(first.accounts.length + second.accounts.length).toBe(5);
      const anon = await fetch(`${base}/v1.0/users`);
      expect(anon.status).toBe(401);
      expect(((await anon.json()) as { error: { code: string } }).error.code).toBe('InvalidAuthenticationToken');
    } finally {
      await new Promise<void>((r) => mounted.close(() => r()));
    }
  });
});
