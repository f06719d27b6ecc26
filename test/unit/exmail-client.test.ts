/**
 * Exmail's transport (mailbox/exmail/client.ts on core/tencent.ts): one token per app secret,
 * cached and shared, refreshed once when refused; busy and frequency limits retried and then
 * given up retryable with the block time; errors name the API and the errcode, never the
 * secret, the token or a value we sent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createExmailSim } from '../../bin/local/sim/exmail';
import { ExmailClient } from '../../functions/mailbox/exmail/client';
import { MailboxError } from '../../functions/mailbox/directory';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function onSim(o: Parameters<typeof createExmailSim>[0] = {}, app: 'contacts' | 'log' = 'contacts', secret?: string) {
  const sim = createExmailSim({ corpId: 'wm-c', contactsSecret: 'contacts-SECRET-1', logSecret: 'log-SECRET-2', ...o });
  const server = await sim.start();
  close = server.close;
  const client = new ExmailClient({ apiBase: server.baseUrl, corpId: 'wm-c', secret: secret ?? (app === 'contacts' ? 'contacts-SECRET-1' : 'log-SECRET-2'), app, sleep: async () => undefined, maxRetries: 2 });
  return { sim, client, baseUrl: server.baseUrl };
}

const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as MailboxError);

describe('Exmail client', () => {
  it('one token for concurrent calls, reused until it lapses', async () => {
    const { sim, client } = await onSim();
    sim.seedUser({ userid: 'a@example.com', name: 'A' });
    await Promise.all([1, 2, 3].map(() => client.call('user/get', { query: { userid: 'a@example.com' } })));
    await client.call('user/get', { query: { userid: 'a@example.com' } });
    expect(sim.calls.gettoken).toBe(1);
  });

  it('a refused token (40014 / 42001) is fetched again once, not counted as a retry', async () => {
    const { sim, client } = await onSim();
    sim.seedUser({ userid: 'a@example.com', name: 'A' });
    await client.call('user/get', { query: { userid: 'a@example.com' } });
    sim.revokeTokens();
    expect(await client.call('user/get', { query: { userid: 'a@example.com' } })).toMatchObject({ errcode: 0, userid: 'a@example.com' });
    expect(sim.calls.gettoken).toBe(2);
  });

  it('a token of the wrong app is refused by the API (48002): auth, not retried', async () => {
    const { client } = await onSim({}, 'contacts');
    const e = await err(client.call('log/operation', { body: { type: 0, begin_date: '2026-12-01', end_date: '2026-12-01' } }));
    expect(e).toMatchObject({ kind: 'auth', retryable: false, code: '48002' });
  });

  it('a wrong secret: gettoken 40001 is auth, not retryable, and the message holds neither secret nor URL', async () => {
    const { client, baseUrl } = await onSim({}, 'contacts', 'WRONG-secret-value');
    const e = await err(client.call('user/get', { query: { userid: 'a@example.com' } }));
    expect(e).toBeInstanceOf(MailboxError);
    expect(e).toMatchObject({ kind: 'auth', retryable: false, code: '40001' });
    expect(e!.message).toMatch(/gettoken \(contacts secret\)/);
    expect(`${e!.message} ${JSON.stringify(e)}`).not.toMatch(/WRONG-secret-value|contacts-SECRET-1|access_token=|127\.0\.0\.1/);
    expect(baseUrl).toMatch(/127\.0\.0\.1/);
  });

  it('busy (-1) is retried; a frequency limit outlasting the retries is throttled, retryable, with a minute to wait', async () => {
    const { sim, client } = await onSim({ rateLimit: { calls: 2 } });
    sim.seedUser({ userid: 'a@example.com', name: 'A' });
    await client.call('user/get', { query: { userid: 'a@example.com' } });
    await client.call('user/get', { query: { userid: 'a@example.com' } });
    const e = await err(client.call('user/get', { query: { userid: 'a@example.com' } }));
    expect(e).toMatchObject({ kind: 'throttled', retryable: true, code: '45009', retryAfterMs: 60_000 });
    expect(e!.message).toMatch(/user\/get failed after 3 attempts: errcode 45009/);
  });

  it('busy (-1) outlasting the retries is unavailable and retryable; the next call after the storm goes through', async () => {
    const { sim, client } = await onSim();
    sim.setFailRate(1, [-1]);
    expect(await err(client.call('user/simplelist', { query: { department_id: '1' } }))).toMatchObject({ kind: 'unavailable', retryable: true, code: '-1' });
    sim.setFailRate(0);
    expect(await client.call('user/simplelist', { query: { department_id: '1' } })).toMatchObject({ errcode: 0 });
  });

  it('a network failure is unavailable and retryable; an unknown errcode is unexpected and not retried', async () => {
    let n = 0;
    const fetchStub: typeof fetch = async (url) => {
      n++;
      if (String(url).includes('gettoken')) return Response.json({ access_token: 't', expires_in: 7200 });
      if (n < 4) throw new TypeError('fetch failed');
      return Response.json({ errcode: 612345, errmsg: 'whatever zhangsan@example.com' });
    };
    const client = new ExmailClient({ apiBase: 'https://api.exmail.invalid', corpId: 'c', secret: 's', app: 'contacts', fetch: fetchStub, sleep: async () => undefined, maxRetries: 1 });
    expect(await err(client.call('user/get', { query: { userid: 'zhangsan@example.com' } }))).toMatchObject({ kind: 'unavailable', retryable: true });
    const e = await err(client.call('user/get', { query: { userid: 'zhangsan@example.com' } }));
    expect(e).toMatchObject({ kind: 'unexpected', retryable: false, code: '612345' });
    expect(e!.message).not.toMatch(/zhangsan/);
  });

  it('an errcode the caller passes comes back as an answer (60111 on a delete)', async () => {
    const { client } = await onSim();
    expect(await client.call('user/delete', { query: { userid: 'ghost@example.com' }, pass: [60111] })).toMatchObject({ errcode: 60111 });
    expect(await err(client.call('user/delete', { query: { userid: 'ghost@example.com' } }))).toMatchObject({ kind: 'not-found', retryable: false });
  });

  it('requestToken bypasses the cache (the health probe)', async () => {
    const { sim, client } = await onSim();
    await client.requestToken();
    await client.requestToken();
    expect(sim.calls.gettoken).toBe(2);
  });
});

describe('Exmail simulator', () => {
  it('refuses what the docs refuse: a foreign domain, a duplicate address, a missing department, enable on create', async () => {
    const { client } = await onSim();
    const base = { userid: 'a@example.com', name: 'A', department: [1], password: 'Passw0rd!x' };
    expect(await client.call('user/create', { body: base })).toMatchObject({ errcode: 0 });
    for (const [body, code] of [
      [{ ...base, userid: 'b@other.org' }, '40003'],
      [base, '60102'],
      [{ ...base, userid: 'c@example.com', department: [99] }, '60003'],
      [{ ...base, userid: 'd@example.com', enable: 0 }, '40058'],
      [{ ...base, userid: 'e@example.com', password: 'short' }, '40058'],
    ] as const) {
      expect(await err(client.call('user/create', { body }))).toMatchObject({ code });
    }
  });
});
