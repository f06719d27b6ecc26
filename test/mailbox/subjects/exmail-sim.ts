/**
 * Tencent Exmail under the conformance suite: the adapter as the product builds it (the
 * provider descriptor from a runtime config: mailbox/exmail/index.ts) against a fresh
 * simulator, the wire observed through the simulator's recorded requests. The adapter
 * retries twice and does not sleep, so a storm also reaches the caller's retry.
 */
import { createExmailSim, type ExmailSim } from '../../../bin/local/sim/exmail';
import { parseRuntimeConfig } from '../../../functions/config/runtime';
import { exmail } from '../../../functions/mailbox/exmail/index';
import { WIRE_FIELD } from '../../../functions/mailbox/exmail/wire';
import type { MailboxConnectOptions } from '../../../functions/mailbox/provider';
import type { MailboxUnderTest } from '../conformance';

export const EXMAIL_PAGE_SIZE = 3;
export const EXMAIL_SECRET = { corpId: 'wm-test', contactsSecret: 'contacts-s3cret', logSecret: 'log-s3cret', webhookSecret: 'unused' };

/** A simulator and the provider's connection on it (for tests beyond the suite). */
export async function exmailOnSim(o: { sim?: Parameters<typeof createExmailSim>[0]; settings?: Record<string, unknown>; connect?: MailboxConnectOptions } = {}) {
  const sim = createExmailSim({ corpId: EXMAIL_SECRET.corpId, contactsSecret: EXMAIL_SECRET.contactsSecret, logSecret: EXMAIL_SECRET.logSecret, ...o.sim });
  const server = await sim.start();
  const config = parseRuntimeConfig({ provider: 'exmail', mailDomain: 'example.com', exmail: { apiBase: server.baseUrl, pageSize: EXMAIL_PAGE_SIZE, ...o.settings } });
  const connection = exmail.create(config, EXMAIL_SECRET, { sleep: async () => undefined, maxRetries: 2, ...o.connect });
  return { sim, server, config, connection };
}

export function exmailSubject(): () => Promise<MailboxUnderTest> {
  return async () => {
    const { sim, server, connection } = await exmailOnSim();
    return { directory: connection.directory, probe: probeOf(sim), close: () => server.close() };
  };
}

function probeOf(sim: ExmailSim): MailboxUnderTest['probe'] {
  let seen = 0;
  return {
    writes() {
      const fresh = sim.requests.slice(seen);
      seen = sim.requests.length;
      return fresh
        .filter((r) => (r.api === 'user/create' || r.api === 'user/update') && r.errcode === 0)
        .map((r) => ({
          op: r.api === 'user/create' ? ('create' as const) : ('update' as const),
          fields: [...new Set(Object.keys(r.body as object).flatMap((k) => (WIRE_FIELD[k] ? [WIRE_FIELD[k]!] : [])))],
        }));
    },
    async adminSetMobile(id, mobile) {
      const u = sim.users.get(id)!;
      sim.users.set(id, { ...u, mobile });
    },
    async adminCreate(email) {
      sim.seedUser({ userid: email, name: 'Someone else' });
    },
    async stored() {
      return [...sim.users.values()].map((u) => ({ id: u.userid, employeeId: u.extid || null, enabled: u.enable === 1, jobTitle: u.position || null }));
    },
    async members() {
      return [];
    },
    storm(rate) {
      sim.setFailRate(rate, [-1, 45009]);
    },
  };
}
