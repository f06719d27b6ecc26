/**
 * checkHealth against real HTTP on loopback: the Graph simulator (token endpoint,
 * subscriptions) and a WeCom gettoken endpoint that knows one good secret per app. The
 * handler's failure path: ERROR log line + HealthCheckFailed metric, no secret anywhere.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGraphSim, type GraphSim } from '../../bin/local/sim/graph';
import { GraphDirectory } from '../../functions/mailbox/graph/directory';
import { graphSubscriptionProbe } from '../../functions/mailbox/graph/health';
import { tokenProbe } from '../../functions/mailbox/token-probe';
import { createHealthHandler, powertoolsFailureMetrics } from '../../functions/handlers/health';
import { checkHealth, wecomTokenProbe, type HealthDeps } from '../../functions/sync/health';

const TENANT = 'tenant-h';
const NOW = new Date('2026-11-01T00:00:00Z');
let sim: GraphSim;
let graphSrv: { baseUrl: string; close(): Promise<void> };
let wecomSrv: Server;
let wecomBase = '';
const GOOD = new Set(['contacts-secret-1', 'app-secret-1']);

beforeAll(async () => {
  sim = createGraphSim({ tenantId: TENANT, clientId: 'app', clientSecret: 'graph-secret', now: () => NOW });
  graphSrv = await sim.start();
  wecomSrv = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (url.pathname !== '/cgi-bin/gettoken') return void res.writeHead(404).end('{}');
    const ok = url.searchParams.get('corpid') === 'wwcorp' && GOOD.has(url.searchParams.get('corpsecret') ?? '');
    res.end(JSON.stringify(ok ? { errcode: 0, errmsg: 'ok', access_token: 'tok-' + 'x'.repeat(40), expires_in: 7200 } : { errcode: 40001, errmsg: 'invalid credential, hint: [abc], from ip: 10.0.0.1' }));
  });
  await new Promise<void>((r) => wecomSrv.listen(0, '127.0.0.1', r));
  wecomBase = `http://127.0.0.1:${(wecomSrv.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await graphSrv.close();
  await new Promise<void>((r) => wecomSrv.close(() => r()));
});

function deps(over: { appSecret?: string; graphSecret?: string } = {}): HealthDeps {
  const tokenUrl = `${graphSrv.baseUrl}/${TENANT}/oauth2/v2.0/token`;
  const graph = new GraphDirectory({
    apiBase: graphSrv.baseUrl,
    tokenUrl,
    tenantId: TENANT,
    clientId: 'app',
    clientSecret: over.graphSecret ?? 'graph-secret',
    domain: 'example.com',
    maxRetries: 0,
    now: () => NOW,
    sleep: async () => undefined,
  });
  return {
    wecomTokens: {
      contacts: wecomTokenProbe(wecomBase, 'wwcorp', 'contacts-secret-1'),
      app: wecomTokenProbe(wecomBase, 'wwcorp', over.appSecret ?? 'app-secret-1'),
    },
    // The Graph provider's checks (mailbox/graph/health.ts), as connection.health() gives them.
    mailbox: [tokenProbe('graph-token', graph.client), graphSubscriptionProbe({ listSubscriptions: () => graph.listSubscriptions() })],
    queueDepth: async () => ({ queue: 3, deadLetters: 0 }),
    now: () => NOW,
  };
}

function addSubscription(hoursLeft: number) {
  sim.subscriptions.clear();
  sim.subscriptions.set('sub-1', {
    id: 'sub-1',
    resource: 'users',
    changeType: 'updated',
    notificationUrl: 'https://example.com/mailbox/events/graph',
    lifecycleNotificationUrl: null,
    clientState: 'cs',
    expirationDateTime: new Date(NOW.getTime() + hoursLeft * 3_600_000).toISOString(),
    applicationId: 'app',
  });
}

describe('checkHealth', () => {
  it('is healthy when both WeCom secrets, the Graph token and a long-lived subscription work', async () => {
    addSubscription(72);
    const r = await checkHealth(deps());
    expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
      ['dead-letters', true],
      ['graph-subscription', true],
      ['graph-token', true],
      ['wecom-token:app', true],
      ['wecom-token:contacts', true],
    ]);
    expect(r.ok).toBe(true);
    expect(r.subscription).toEqual({ id: 'sub-1', expiresAt: expect.any(String), hoursLeft: 72 });
    expect(r.queue).toEqual({ depth: 3, deadLetters: 0 });
  });

  it('fails on one bad WeCom secret, names which, and never prints the secret', async () => {
    addSubscription(72);
    const r = await checkHealth(deps({ appSecret: 'wrong-app-secret-zzz' }));
    expect(r.ok).toBe(false);
    const app = r.checks.find((c) => c.name === 'wecom-token:app')!;
    expect(app.ok).toBe(false);
    expect(app.detail).toContain('40001');
    expect(JSON.stringify(r)).not.toContain('wrong-app-secret-zzz');
    expect(r.checks.find((c) => c.name === 'wecom-token:contacts')!.ok).toBe(true);
  });

  it('fails when the subscription expires within 24 h, or is missing', async () => {
    addSubscription(5);
    let r = await checkHealth(deps());
    expect(r.ok).toBe(false);
    expect(r.checks.find((c) => c.name === 'graph-subscription')).toMatchObject({ ok: false, detail: expect.stringContaining('< 24 h') });
    sim.subscriptions.clear();
    r = await checkHealth(deps());
    expect(r.subscription).toBeNull();
    expect(r.checks.find((c) => c.name === 'graph-subscription')).toMatchObject({ ok: false, detail: expect.stringContaining('no subscription') });
  });

  it('fails on a bad Graph secret (token and subscription listing both)', async () => {
    addSubscription(72);
    const r = await checkHealth(deps({ graphSecret: 'nope-nope' }));
    expect(r.checks.find((c) => c.name === 'graph-token')!.ok).toBe(false);
    expect(r.checks.find((c) => c.name === 'graph-subscription')!.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('nope-nope');
  });

  it('parked messages are a warning, not a failure', async () => {
    addSubscription(72);
    const r = await checkHealth({ ...deps(), queueDepth: async () => ({ queue: 0, deadLetters: 2 }) });
    expect(r.ok).toBe(true);
    expect(r.checks.find((c) => c.name === 'dead-letters')).toMatchObject({ ok: false, severity: 'warn' });
  });

  it('a hanging probe times out instead of hanging the function', async () => {
    const r = await checkHealth({ wecomTokens: { contacts: () => new Promise(() => undefined) }, now: () => NOW, timeoutMs: 50 });
    expect(r.checks[0]).toMatchObject({ name: 'wecom-token:contacts', ok: false, detail: expect.stringContaining('timed out') });
  });
});

describe('health handler', () => {
  it('turns each failed check into a metric and returns the structured result', async () => {
    addSubscription(5);
    const failed: string[] = [];
    let flushed = 0;
    const handler = createHealthHandler({
      healthDeps: async () => deps({ appSecret: 'bad' }),
      metrics: async () => ({ failed: (c) => void failed.push(c), flush: () => void flushed++ }),
    });
    const r = await handler(undefined as never, {} as never);
    expect(r.ok).toBe(false);
    expect(failed.sort()).toEqual(['graph-subscription', 'wecom-token:app']);
    expect(flushed).toBe(1);
  });

  it('publishes HealthCheckFailed as EMF with the check as dimension', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const logSpy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
    try {
      const m = await powertoolsFailureMetrics();
      m.failed('wecom-token:app');
      m.flush();
    } finally {
      spy.mockRestore();
      logSpy.mockRestore();
    }
    const emf = lines.map((l) => l.trim()).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const single = emf.find((e) => e.check === 'wecom-token:app');
    expect(single).toBeDefined();
    expect(single!.HealthCheckFailed).toBe(1);
    expect(JSON.stringify((single!._aws as { CloudWatchMetrics: unknown[] }).CloudWatchMetrics)).toContain('HealthCheckFailed');
  });
});
