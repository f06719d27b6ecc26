/**
 * Google Workspace under the conformance suite: the adapter as the product builds it (the
 * provider descriptor from a runtime config: mailbox/google/index.ts) against a fresh
 * simulator, the wire observed through the simulator's recorded requests. The adapter retries
 * twice and does not sleep, so a storm also reaches the caller's retry.
 *
 * One service account key pair for the whole file (RSA generation costs ~50 ms): the
 * simulator gets the public half, the adapter's secret the private half.
 *
 * What "went on the wire" for a write: scalar keys map to their port field; the arrays
 * (phones, organizations, externalIds) must be written whole on Google, so a field counts only
 * when its entry differs from the user before the write (wire.ts writtenPortFields) — an
 * unchanged work phone carried along with a new mobile is not a write of `telephone`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createGoogleSim } from '../../../bin/local/sim/google';
import { parseRuntimeConfig } from '../../../functions/config/runtime';
import { google } from '../../../functions/mailbox/google/index';
import { linkOf, writtenPortFields, type GoogleUserWire } from '../../../functions/mailbox/google/wire';
import type { MailboxUnderTest } from '../conformance';

export const GOOGLE_PAGE_SIZE = 3;

export const SERVICE_ACCOUNT_KEYS = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

const LINK = { type: 'organization' as const };
const WRITE_ROUTES = new Set(['POST /users', 'PUT /users/{key}', 'PATCH /users/{key}']);

export function googleOnSim(): () => Promise<MailboxUnderTest> {
  return async () => {
    const sim = createGoogleSim({ publicKey: SERVICE_ACCOUNT_KEYS.publicKey, maxResults: GOOGLE_PAGE_SIZE, domains: ['example.com'] });
    const server = await sim.start();
    const config = parseRuntimeConfig({ provider: 'google', mailDomain: 'example.com', google: { apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/token` } });
    const sa = sim.serviceAccount;
    const secret = { clientEmail: sa.clientEmail, privateKey: SERVICE_ACCOUNT_KEYS.privateKey, adminEmail: sa.adminEmail, webhookSecret: 'unused' };
    const { directory } = google.create(config, secret, { sleep: async () => undefined, maxRetries: 2 });
    let seen = 0;
    return {
      directory,
      probe: {
        writes() {
          const fresh = sim.requests.slice(seen);
          seen = sim.requests.length;
          return fresh
            .filter((r) => WRITE_ROUTES.has(r.route) && r.status < 300)
            .map((r) => ({
              op: r.method === 'POST' ? ('create' as const) : ('update' as const),
              fields: writtenPortFields(r.body as Record<string, unknown>, r.before as GoogleUserWire | undefined, LINK),
            }));
        },
        async adminSetMobile(id, mobile) {
          sim.adminUpdate(id, (u) => {
            u.phones = [...(u.phones ?? []).filter((p) => p.type !== 'mobile'), { type: 'mobile', value: mobile }];
          });
        },
        async adminCreate(email) {
          sim.seedUser({ primaryEmail: email, name: { givenName: 'Someone', familyName: 'Else', fullName: 'Someone Else' } });
        },
        async stored() {
          return [...sim.users.values()].map((u) => ({
            id: u.id,
            employeeId: linkOf(u, LINK) ?? null,
            enabled: !u.suspended,
            jobTitle: ((u.organizations?.find((o) => o.primary) ?? u.organizations?.[0])?.title as string | undefined) ?? null,
          }));
        },
        async members() {
          return [];
        },
        storm(rate) {
          sim.setFailRate(rate, [403, 429, 503]);
        },
      },
      close: () => server.close(),
    };
  };
}
