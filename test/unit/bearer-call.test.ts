/**
 * The request loop Graph and Google share (functions/mailbox/bearer-call.ts), against a real
 * HTTP server on loopback that misbehaves on cue: connections cut before an answer, a token
 * refused, throttling. The provider's judge is a small stand-in; the clients' own readings of
 * a refusal are tested with their simulators (test/mailbox).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenCache } from '../../functions/core/retry';
import { bearerCall, fetchTokenWithRetry, type BearerTransport, type Judge } from '../../functions/mailbox/bearer-call';
import { MailboxError } from '../../functions/mailbox/directory';

type Script = Array<'cut' | 401 | 429 | 400 | 200>;
let script: Script = [];
const seen: Array<{ auth: string | undefined; body: string }> = [];
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, body });
      const step = script.shift() ?? 200;
      if (step === 'cut') return void req.socket.destroy();
      if (step === 200) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
      res.writeHead(step, step === 429 ? { 'retry-after': '2' } : {}).end(JSON.stringify({ error: { code: `code${step}` } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/users`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const judge: Judge = (status, json, headers) => {
  const retryable = status === 429 || status >= 500;
  const asked = headers.get('retry-after');
  const code = (json as { error?: { code?: string } } | undefined)?.error?.code ?? `http_${status}`;
  return { error: new MailboxError(`Test route failed: ${status} ${code}`, retryable, code, asked ? Number(asked) * 1000 : undefined, status === 401 ? 'auth' : retryable ? 'throttled' : 'invalid') };
};

function transport(maxRetries = 3) {
  let tokens = 0;
  const waits: number[] = [];
  const t: BearerTransport = {
    vendor: 'Test',
    fetchFn: fetch,
    tokens: new TokenCache(async () => ({ value: `token-${++tokens}`, lifetimeMs: 3_600_000 })),
    sleep: async (ms) => void waits.push(ms),
    maxRetries,
    backoff: { baseMs: 100, capMs: 1_000 },
  };
  return { t, waits, tokens: () => tokens };
}

const run = (t: BearerTransport) => bearerCall(t, { method: 'PATCH', url, route: 'PATCH /users/{id}', body: { jobTitle: '工程师' } }, judge);

describe('bearerCall', () => {
  it('a connection cut before the answer is retried after a backoff; the body is sent again each time', async () => {
    script = ['cut', 'cut', 200];
    seen.length = 0;
    const { t, waits } = transport();
    await expect(run(t)).resolves.toEqual({ status: 200, json: { ok: true } });
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((s) => s.body))).toEqual(new Set([JSON.stringify({ jobTitle: '工程师' })]));
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeGreaterThanOrEqual(50);
    expect(waits[1]).toBeGreaterThanOrEqual(100); // doubled
  });

  it('cut more often than the retries allow: a retryable, unavailable error naming the route only', async () => {
    script = ['cut', 'cut', 'cut'];
    const { t } = transport(2);
    const err = (await run(t).catch((e) => e)) as MailboxError;
    expect(err).toBeInstanceOf(MailboxError);
    expect(err).toMatchObject({ retryable: true, kind: 'unavailable', code: 'NetworkError', message: 'Test PATCH /users/{id}: network error' });
  });

  it('a 401 drops the token and fetches a new one, once; a second 401 is the judged auth error', async () => {
    script = [401, 200];
    seen.length = 0;
    const once = transport();
    await expect(run(once.t)).resolves.toMatchObject({ status: 200 });
    expect(seen.map((s) => s.auth)).toEqual(['Bearer token-1', 'Bearer token-2']);

    script = [401, 401, 200];
    const twice = transport();
    const err = (await run(twice.t).catch((e) => e)) as MailboxError;
    expect(err).toMatchObject({ retryable: false, kind: 'auth', code: 'code401' });
    expect(twice.tokens()).toBe(2);
  });

  it('a retryable refusal waits what the server asked; one counter spans cuts and refusals; spent, it stays retryable with the wait', async () => {
    script = ['cut', 429, 429, 429];
    const { t, waits } = transport(2);
    const err = (await run(t).catch((e) => e)) as MailboxError;
    expect(err).toMatchObject({ retryable: true, kind: 'throttled', code: 'code429', retryAfterMs: 2000, message: 'Test route failed: 429 code429 (after 2 retries)' });
    expect(waits.slice(1)).toEqual([2000]); // the cut's backoff, then Retry-After
    expect(script).toEqual([429]); // three requests: the cut, two 429s
  });

  it('a refusal the judge calls permanent is thrown at once; an accepted status is answered', async () => {
    script = [400];
    const { t, waits } = transport();
    await expect(run(t)).rejects.toMatchObject({ retryable: false, kind: 'invalid', message: 'Test route failed: 400 code400' });
    expect(waits).toEqual([]);
    script = [400];
    await expect(bearerCall(t, { method: 'GET', url, route: 'GET /users/{id}', accept: [400] }, judge)).resolves.toMatchObject({ status: 400, json: { error: { code: 'code400' } } });
  });
});

describe('fetchTokenWithRetry', () => {
  it('retries a retryable token failure with its Retry-After, and throws a permanent one at once', async () => {
    const waits: number[] = [];
    const opts = { sleep: async (ms: number) => void waits.push(ms), maxRetries: 3, backoff: { baseMs: 100, capMs: 1_000 } };
    let calls = 0;
    const flaky = async () => {
      if (++calls < 3) throw new MailboxError('token: 503', true, 'http_503', calls === 1 ? 1500 : undefined, 'unavailable');
      return { value: 't', lifetimeMs: 60_000 };
    };
    await expect(fetchTokenWithRetry(flaky, opts)).resolves.toEqual({ value: 't', lifetimeMs: 60_000 });
    expect(waits[0]).toBe(1500);
    expect(waits).toHaveLength(2);
    let denied = 0;
    const refused = async () => {
      denied++;
      throw new MailboxError('token: invalid_client', false, 'invalid_client', undefined, 'auth');
    };
    await expect(fetchTokenWithRetry(refused, opts)).rejects.toMatchObject({ code: 'invalid_client' });
    expect(denied).toBe(1);
  });
});
