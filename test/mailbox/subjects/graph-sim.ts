/**
 * Microsoft Graph under the conformance suite: the adapter as the product builds it (the
 * provider descriptor from a runtime config: mailbox/graph/index.ts) against a fresh
 * simulator of the chosen cloud, the wire observed through the simulator's recorded
 * requests. The adapter retries twice and does not sleep, so a storm also reaches the
 * caller's retry.
 */
import { createGraphSim } from '../../../bin/local/sim/graph';
import { parseRuntimeConfig } from '../../../functions/config/runtime';
import { graph } from '../../../functions/mailbox/graph/index';
import { WIRE_FIELD } from '../../../functions/mailbox/graph/wire';
import type { MailboxUnderTest } from '../conformance';

export const GRAPH_PAGE_SIZE = 3;

export function graphOnSim(cloud: 'global' | 'china'): () => Promise<MailboxUnderTest> {
  return async () => {
    const tenantId = `tenant-${cloud}`;
    const sim = createGraphSim({ tenantId, clientId: 'app', clientSecret: 'app-secret', cloud, pageSize: GRAPH_PAGE_SIZE, maxTop: GRAPH_PAGE_SIZE });
    const server = await sim.start();
    const config = parseRuntimeConfig({
      provider: 'graph',
      mailDomain: 'example.com',
      graph: { cloud, apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/${tenantId}/oauth2/v2.0/token` },
    });
    const { directory } = graph.create(config, { tenantId, clientId: 'app', clientSecret: 'app-secret', webhookSecret: 'unused' }, { sleep: async () => undefined, maxRetries: 2 });
    let seen = 0;
    return {
      directory,
      probe: {
        writes() {
          const fresh = sim.requests.slice(seen);
          seen = sim.requests.length;
          return fresh
            .filter((r) => (r.route === 'POST /v1.0/users' || r.route === 'PATCH /v1.0/users/{id}') && r.status < 300)
            .map((r) => ({
              op: r.method === 'POST' ? ('create' as const) : ('update' as const),
              fields: [...new Set(Object.keys(r.body as object).flatMap((k) => (WIRE_FIELD[k] ? [WIRE_FIELD[k]!] : [])))],
            }));
        },
        async adminSetMobile(id, mobile) {
          const u = sim.users.get(id)!;
          u.mobilePhone = mobile;
          sim.users.set(id, u);
        },
        async adminCreate(email) {
          sim.seedUser({ userPrincipalName: email, mail: email, displayName: 'Someone else' });
        },
        async stored() {
          return [...sim.users.values()].map((u) => ({ id: u.id, employeeId: u.employeeId, enabled: u.accountEnabled, jobTitle: u.jobTitle }));
        },
        async members(groupId) {
          return [...(sim.groups.get(groupId)?.members ?? [])];
        },
        storm(rate) {
          sim.setFailRate(rate, [429, 503]);
        },
      },
      close: () => server.close(),
    };
  };
}
