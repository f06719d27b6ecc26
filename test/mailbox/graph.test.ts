/** Microsoft Graph, in both clouds, on its simulator: the adapter contract. */
import { describe, expect, it } from 'vitest';
import { createGraphSim } from '../../bin/local/sim/graph';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { graph } from '../../functions/mailbox/graph/index';
import { mailboxConformance } from './conformance';
import { GRAPH_PAGE_SIZE, graphOnSim } from './subjects/graph-sim';

const caps = { groups: true, restore: true, pageSize: GRAPH_PAGE_SIZE };

mailboxConformance('graph (global)', graphOnSim('global'), caps);
mailboxConformance('graph (china, 21Vianet)', graphOnSim('china'), caps);

describe('graph: what kind of account (the mailbox-source rules create WeCom members for members only)', () => {
  it('userType Member reads as member, Guest as guest, on get and in listings', async () => {
    const sim = createGraphSim({ tenantId: 't', clientId: 'app', clientSecret: 's' });
    const server = await sim.start();
    try {
      const config = parseRuntimeConfig({ provider: 'graph', mailDomain: 'example.com', graph: { apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/t/oauth2/v2.0/token` } });
      const { directory } = graph.create(config, { tenantId: 't', clientId: 'app', clientSecret: 's', webhookSecret: 'w' });
      const member = sim.seedUser({ userPrincipalName: 'lisi@example.com', displayName: '李四' });
      const guest = sim.seedUser({ userPrincipalName: 'partner_contoso.com#EXT#@example.com', displayName: 'Partner', userType: 'Guest' });
      expect((await directory.get(member.id))?.kind).toBe('member');
      expect((await directory.get(guest.id))?.kind).toBe('guest');
      const kinds: Record<string, string | undefined> = {};
      let cursor: string | undefined;
      do {
        const page = await directory.listPage(cursor);
        for (const a of page.accounts) kinds[a.id] = a.kind;
        cursor = page.next;
      } while (cursor);
      expect(kinds).toEqual({ [member.id]: 'member', [guest.id]: 'guest' });
    } finally {
      await server.close();
    }
  });
});
