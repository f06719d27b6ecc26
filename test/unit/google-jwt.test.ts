/**
 * The service-account grant (mailbox/google/client.ts) against the simulator's token endpoint,
 * which verifies the JWT with the service account's PUBLIC key: a good assertion gets a token;
 * a wrong key, a stale clock, an undelegated scope, an unknown admin are refused with Google's
 * OAuth codes and read as `auth` (or `invalid`), naming no value; a token without `sub` is the
 * service account's own and the Directory API refuses it. Plus the transport's throttling:
 * 403 userRateLimitExceeded and 429 are retried with Google's backoff, Retry-After honoured.
 */
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createGoogleSim, type GoogleSim } from '../../bin/local/sim/google';
import { MailboxError } from '../../functions/mailbox/directory';
import { GoogleClient, signServiceAccountJwt } from '../../functions/mailbox/google/client';
import { GOOGLE_SCOPES, GOOGLE_TOKEN_AUDIENCE } from '../../functions/mailbox/google/config';
import { SERVICE_ACCOUNT_KEYS as KEYS } from '../mailbox/subjects/google-sim';

const OTHER = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const ADMIN = 'admin@example.com';
let closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.map((c) => c()));
  closers = [];
});

async function setup(o: Parameters<typeof createGoogleSim>[0] = {}) {
  const sim = createGoogleSim({ publicKey: KEYS.publicKey, adminEmail: ADMIN, ...o });
  const server = await sim.start();
  closers.push(server.close);
  const client = (over: Partial<ConstructorParameters<typeof GoogleClient>[0]> = {}) =>
    new GoogleClient({ clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, adminEmail: ADMIN, apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/token`, ...over });
  return { sim, server, client };
}

const listUsers = (c: GoogleClient) => c.call('GET', '/admin/directory/v1/users', { route: 'GET /users', query: { customer: 'my_customer' } });

describe('the JWT bearer grant', () => {
  it('signs RS256 over header.claims with Google’s audience, an hour at most, the admin as sub', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    const jwt = signServiceAccountJwt({ clientEmail: 'sa@p.iam.gserviceaccount.com', privateKey: KEYS.privateKey, subject: ADMIN, scopes: GOOGLE_SCOPES, now, lifetimeSeconds: 7200 });
    const [h, c, sig] = jwt.split('.');
    expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toEqual({ alg: 'RS256', typ: 'JWT' });
    expect(JSON.parse(Buffer.from(c!, 'base64url').toString())).toEqual({
      iss: 'sa@p.iam.gserviceaccount.com',
      sub: ADMIN,
      scope: 'https://www.googleapis.com/auth/admin.directory.user',
      aud: GOOGLE_TOKEN_AUDIENCE,
      iat: now.getTime() / 1000,
      exp: now.getTime() / 1000 + 3600,
    });
    expect(verify('sha256', Buffer.from(`${h}.${c}`), createPublicKey(KEYS.publicKey), Buffer.from(sig!, 'base64url'))).toBe(true);
  });

  it('a good assertion gets a token, cached and shared by concurrent callers; the API answers with it', async () => {
    const { sim, client } = await setup();
    const c = client();
    await Promise.all([listUsers(c), listUsers(c), listUsers(c)]);
    expect(sim.calls['POST /token']).toBe(1);
    expect(sim.calls['GET /users']).toBe(3);
  });

  it('the audience stays Google’s token endpoint when the transport goes elsewhere (the transport’s URL as aud is refused)', async () => {
    const { sim, server, client } = await setup();
    expect((await listUsers(client())).status).toBe(200); // tokenUrl = the simulator, aud = Google's
    const wrongAud = signServiceAccountJwt({ clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, subject: ADMIN, scopes: GOOGLE_SCOPES, audience: `${server.baseUrl}/token`, now: new Date() });
    const res = await fetch(`${server.baseUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: wrongAud }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refusals: wrong key, stale clock, undelegated scope, unknown admin — auth/invalid, not retryable, naming no value', async () => {
    const { client } = await setup();
    const cases: Array<[GoogleClient, string, string]> = [
      [client({ privateKey: OTHER.privateKey }), 'invalid_grant', 'auth'],
      [client({ now: () => new Date(Date.now() - 2 * 3600_000) }), 'invalid_grant', 'auth'],
      [client({ scopes: ['https://www.googleapis.com/auth/admin.directory.group'] }), 'unauthorized_client', 'auth'],
      [client({ adminEmail: 'nobody-special@example.com' }), 'invalid_grant', 'auth'],
    ];
    for (const [c, code, kind] of cases) {
      const err = await c.requestToken().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailboxError);
      expect(err).toMatchObject({ code, kind, retryable: false });
      expect((err as Error).message).not.toMatch(/nobody-special|admin@|iam\.gserviceaccount/);
    }
  });

  it('a key that is not PEM is refused without echoing it', async () => {
    const { client } = await setup();
    const err = await client({ privateKey: 'not-a-key-SECRETVALUE' }).requestToken().catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'auth', code: 'InvalidPrivateKey' });
    expect((err as Error).message).not.toMatch(/SECRETVALUE/);
  });

  it('without sub the token is the service account’s own: the Directory API refuses it (403 forbidden → auth)', async () => {
    const { server, sim } = await setup();
    const assertion = signServiceAccountJwt({ clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, subject: ADMIN, scopes: GOOGLE_SCOPES, now: new Date() });
    // Same claims without sub, signed with the right key.
    const [h, c] = assertion.split('.');
    const claims = JSON.parse(Buffer.from(c!, 'base64url').toString());
    delete claims.sub;
    const unsigned = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const { sign, createPrivateKey } = await import('node:crypto');
    const jwt = `${unsigned}.${sign('sha256', Buffer.from(unsigned), createPrivateKey(KEYS.privateKey)).toString('base64url')}`;
    const tok = await fetch(`${server.baseUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jwt }) });
    const { access_token } = (await tok.json()) as { access_token: string };
    const res = await fetch(`${server.baseUrl}/admin/directory/v1/users?customer=my_customer`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(res.status).toBe(403);
  });

  it('a revoked token is fetched again once (401), then the call succeeds', async () => {
    const { sim, client } = await setup();
    const c = client();
    await listUsers(c);
    sim.revokeTokens();
    expect((await listUsers(c)).status).toBe(200);
    expect(sim.calls['POST /token']).toBe(2);
  });
});

describe('throttling', () => {
  it('403 userRateLimitExceeded and 429 are retried with backoff from about a second; Retry-After wins when given', async () => {
    const { sim, client } = await setup({ retryAfterSeconds: 7 });
    const waits: number[] = [];
    const c = client({ sleep: async (ms) => void waits.push(ms), maxRetries: 4 });
    sim.setFailRate(1, [403]);
    const err = await listUsers(c).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'throttled', retryable: true, code: 'userRateLimitExceeded' });
    expect(waits).toHaveLength(4);
    expect(waits[0]).toBeGreaterThanOrEqual(500);
    expect(waits[0]).toBeLessThanOrEqual(1000);
    expect(waits[3]).toBeGreaterThanOrEqual(4000);
    // A call starting now first waits out the shared pause the refusals set (one base backoff).
    waits.length = 0;
    sim.setFailRate(0);
    expect((await listUsers(c)).status).toBe(200);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeLessThanOrEqual(1000);
    const c2 = client({ sleep: async (ms) => void waits.push(ms), maxRetries: 4 });
    waits.length = 0;
    sim.setFailRate(1, [429]);
    await listUsers(c2).catch(() => undefined);
    expect(waits).toEqual([7000, 7000, 7000, 7000]);
  });

  it('the quota (queries per minute per user) refuses the excess as 403 userRateLimitExceeded', async () => {
    const { client } = await setup({ quota: { queriesPerMinute: 120 } }); // 2 per second, burst of 2
    const c = client({ maxRetries: 0 });
    const results = await Promise.all(Array.from({ length: 5 }, () => listUsers(c).then(() => 'ok', (e: MailboxError) => e.code)));
    expect(results.filter((r) => r === 'ok')).toHaveLength(2);
    expect(results.filter((r) => r === 'userRateLimitExceeded')).toHaveLength(3);
  });
});
