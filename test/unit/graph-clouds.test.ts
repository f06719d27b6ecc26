/**
 * Microsoft 365 global vs operated by 21Vianet: one table (mailbox/graph/config.ts) decides the
 * token service, the Graph root, the token scope and the `@odata.id` host, and the capabilities
 * say which change feed a cloud gets. Checked on the wire (a recording fetch) and against the
 * simulator, which answers a scope of the wrong cloud with invalid_scope as Entra does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createGraphSim } from '../../bin/local/sim/graph';
import { ConfigError, parseRuntimeConfig } from '../../functions/config/runtime';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { graph } from '../../functions/mailbox/graph/index';
import { GRAPH_CLOUDS, graphScope } from '../../functions/mailbox/graph/config';

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function simOf(cloud: 'global' | 'china') {
  const sim = createGraphSim({ tenantId: 't-1', clientId: 'app', clientSecret: 'sec', cloud });
  const server = await sim.start();
  servers.push(server);
  return { sim, base: server.baseUrl };
}

const adapter = (base: string, cloud: 'global' | 'china') =>
  new GraphDirectory({ tenantId: 't-1', clientId: 'app', clientSecret: 'sec', cloud, apiBase: base, tokenUrl: `${base}/t-1/oauth2/v2.0/token`, domain: 'example.com', sleep: async () => undefined });

describe('Graph cloud profiles', () => {
  it('china: token from login.chinacloudapi.cn with the 21Vianet Graph scope, requests to microsoftgraph.chinacloudapi.cn', async () => {
    const seen: Array<{ url: string; body?: string }> = [];
    const fetchStub: typeof fetch = async (input, init) => {
      const url = String(input);
      seen.push({ url, ...(typeof init?.body === 'string' ? { body: init.body } : {}) });
      if (url.includes('/oauth2/')) return new Response(JSON.stringify({ access_token: 'tok', expires_in: 3600 }), { status: 200 });
      return new Response(JSON.stringify({ value: [] }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const g = new GraphDirectory({ tenantId: 'contoso-cn', clientId: 'app', clientSecret: 'sec', cloud: 'china', domain: 'example.cn', fetch: fetchStub });
    await g.findByEmployeeId('zhangsan');
    expect(seen[0]!.url).toBe('https://login.chinacloudapi.cn/contoso-cn/oauth2/v2.0/token');
    expect(new URLSearchParams(seen[0]!.body).get('scope')).toBe('https://microsoftgraph.chinacloudapi.cn/.default');
    expect(seen[1]!.url.startsWith('https://microsoftgraph.chinacloudapi.cn/v1.0/users?')).toBe(true);
    expect(graphScope(GRAPH_CLOUDS.global)).toBe('https://graph.microsoft.com/.default');
  });

  it('a scope of the other cloud is refused (invalid_scope, not retryable) whatever the transport', async () => {
    const cn = await simOf('china');
    const err = await adapter(cn.base, 'global').get('x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invalid_scope', retryable: false, kind: 'invalid' });
    const gl = await simOf('global');
    await expect(adapter(gl.base, 'china').get('x')).rejects.toMatchObject({ code: 'invalid_scope' });
    expect(await adapter(cn.base, 'china').get('x')).toBeUndefined(); // the right scope works
  });

  it("group membership references name the cloud's Graph host, not the simulator's", async () => {
    const { sim, base } = await simOf('china');
    const g = adapter(base, 'china');
    const acc = await g.create({ employeeId: 'zhangsan', email: 'zhangsan@example.com', displayName: '张三' });
    const dev = await g.ensureGroup('技术部');
    await g.setGroupMembership(acc.id, [], [dev]);
    const ref = sim.requests.find((r) => r.route === 'POST /v1.0/groups/{id}/members/$ref')!;
    expect(ref.body).toEqual({ '@odata.id': `https://microsoftgraph.chinacloudapi.cn/v1.0/directoryObjects/${acc.id}` });
    expect([...sim.groups.get(dev)!.members]).toEqual([acc.id]);
    // A global reference is not one of this tenant's objects.
    const wrong = await fetch(`${base}/v1.0/groups/${dev}/members/$ref`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await g.client.token()}` },
      body: JSON.stringify({ '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${acc.id}` }),
    });
    expect(wrong.status).toBe(400);
  });
});

describe('Graph configuration and capabilities', () => {
  const config = (graphBlock: Record<string, unknown>) => parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', graph: graphBlock });

  it('global pushes; china reads changes by the scheduled delta read unless the operator turns notifications on', () => {
    expect(graph.capabilities(config({}))).toEqual({ groups: true, restore: true, changes: 'push', delta: true });
    expect(graph.capabilities(config({ cloud: 'china' }))).toEqual({ groups: true, restore: true, changes: 'delta', delta: true });
    expect(graph.capabilities(config({ cloud: 'china', changeNotifications: true })).changes).toBe('push');
    expect(graph.capabilities(config({ changeNotifications: false })).changes).toBe('delta');
  });

  it('an unknown cloud stops the function naming the key', () => {
    expect(() => config({ cloud: 'mars' })).toThrow(ConfigError);
    expect(() => config({ cloud: 'mars' })).toThrow(/graph\.cloud/);
  });

  it('china health checks the token only (no subscription to watch); global checks both', () => {
    const secret = { tenantId: 't', clientId: 'c', clientSecret: 's', webhookSecret: 'w' };
    expect(graph.create(config({ cloud: 'china' }), secret).health().map((p) => p.name)).toEqual(['graph-token']);
    expect(graph.create(config({}), secret).health().map((p) => p.name)).toEqual(['graph-token', 'graph-subscription']);
  });

  it('a secret without the Graph keys is refused naming them, never a value', () => {
    expect(() => graph.create(config({}), { tenantId: 't', webhookSecret: 'w' })).toThrow(/lacks clientId, clientSecret/);
  });
});
