/**
 * users.watch notifications through the real receiver (mailbox/receive.ts + the google
 * parser), delivered by the simulator exactly as it posts them: the `sync` handshake records
 * nothing; a change becomes `mailbox:google:<id>` once (a redelivery is a duplicate); a forged
 * or missing channel token is refused 403 with nothing recorded; malformed requests are 400.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { createGoogleSim, type GoogleSim } from '../../bin/local/sim/google';
import type { HttpRequest } from '../../functions/core/http';
import { channelApi } from '../../functions/mailbox/google/channels';
import { GoogleClient } from '../../functions/mailbox/google/client';
import { createMailboxReceiver } from '../../functions/mailbox/receive';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';
import type { Inbox, InboxEntry } from '../../functions/store/ports';
import { SERVICE_ACCOUNT_KEYS as KEYS } from '../mailbox/subjects/google-sim';

class MemInbox implements Inbox {
  items = new Map<string, InboxEntry & { enqueued: boolean }>();
  async record(e: InboxEntry) {
    const got = this.items.get(e.id);
    if (!got) {
      this.items.set(e.id, { ...e, enqueued: false });
      return 'new' as const;
    }
    return got.enqueued ? ('duplicate' as const) : ('pending' as const);
  }
  async markEnqueued(id: string) {
    this.items.get(id)!.enqueued = true;
  }
  async listPending() {
    return [];
  }
}
class MemQueue implements WorkQueue {
  sent: SyncMessage[] = [];
  async enqueue(m: SyncMessage[]) {
    this.sent.push(...m);
  }
}

const TOKEN = 'chan-token-' + 'k'.repeat(40);
const ADDRESS = 'https://sync.example.com/mailbox/events/google';
let inbox: MemInbox;
let queue: MemQueue;
let sim: GoogleSim;
let receive: ReturnType<typeof createMailboxReceiver>;
let answers: Array<{ status: number; body: string }>;
let lastRequest: HttpRequest | undefined;

beforeEach(async () => {
  inbox = new MemInbox();
  queue = new MemQueue();
  answers = [];
  receive = createMailboxReceiver({ inbox, queue, provider: 'google', clientState: TOKEN, webhookSecret: 'webhook-secret-0123456789' });
  sim = createGoogleSim({ publicKey: KEYS.publicKey });
  // The simulator's POSTs go straight into the receiver (lower-case headers, as API Gateway gives them).
  sim.setNotify(async (_url, body, headers) => {
    lastRequest = { method: 'POST', path: '/mailbox/events/google', query: {}, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])), body };
    const r = await receive(lastRequest);
    answers.push({ status: r.statusCode, body: r.body });
    return { status: r.statusCode, body: r.body };
  });
  const server = await sim.start();
  const client = new GoogleClient({ clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, adminEmail: sim.serviceAccount.adminEmail, apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/token` });
  const api = channelApi(client, 'my_customer');
  for (const event of ['update', 'delete']) await api.watch({ id: `wms-${event}-test`, event, address: ADDRESS, token: TOKEN, ttlSeconds: 3600 });
  await sim.flushNotifications();
  return () => server.close();
});

describe('google push receiver', () => {
  it('the sync handshake of each new channel is answered 200 and records nothing', () => {
    expect(sim.deliveries.map((d) => [d.state, d.status])).toEqual([
      ['sync', 200],
      ['sync', 200],
    ]);
    expect(inbox.items.size).toBe(0);
  });

  it('a change is one message on mailbox:google:<id>, with its hint; a redelivery is a duplicate', async () => {
    const u = sim.seedUser({ primaryEmail: 'zhangsan@example.com' });
    sim.adminUpdate(u.id, (x) => void (x.suspended = true));
    await sim.flushNotifications();
    expect(answers.at(-1)!.status).toBe(202);
    expect(queue.sent).toEqual([expect.objectContaining({ subject: `mailbox:google:${u.id}`, source: 'mailbox', hint: 'google.update', operator: 'google-notification' })]);
    const entry = [...inbox.items.values()][0]!;
    expect(JSON.stringify(entry)).not.toMatch(/zhangsan/); // the address in the body is not kept
    // Google redelivers the same message (same channel, same message number).
    await receive(lastRequest!);
    expect(inbox.items.size).toBe(1);
    expect(queue.sent).toHaveLength(1);
  });

  it('a delete carries the delete hint (the receiver lets it win when one request names a subject twice)', async () => {
    const u = sim.seedUser({ primaryEmail: 'lisi@example.com' });
    const res = await fetchDelete(u.id);
    expect(res).toBe(true);
    await sim.flushNotifications();
    expect(queue.sent.map((m) => m.hint)).toEqual(['google.deleted']);
  });

  it('a forged or missing channel token: 403, nothing recorded, nothing queued', async () => {
    const u = sim.seedUser({ primaryEmail: 'wangwu@example.com' });
    sim.adminUpdate(u.id, (x) => void (x.suspended = true));
    await sim.flushNotifications();
    const genuine = lastRequest!;
    inbox.items.clear();
    queue.sent = [];
    const forged = { ...genuine, headers: { ...genuine.headers, 'x-goog-channel-token': 'guess' } };
    expect((await receive(forged)).statusCode).toBe(403);
    const { ['x-goog-channel-token']: _t, ...without } = genuine.headers;
    expect((await receive({ ...genuine, headers: without })).statusCode).toBe(403);
    // A forged sync is refused too: the token is checked before anything else is believed.
    expect((await receive({ ...forged, headers: { ...forged.headers, 'x-goog-resource-state': 'sync' } })).statusCode).toBe(403);
    expect(inbox.items.size).toBe(0);
    expect(queue.sent).toEqual([]);
  });

  it('malformed: not Google’s headers, a body without a user id, not JSON → 400; an unknown state is recorded as ignored', async () => {
    const base: HttpRequest = { method: 'POST', path: '/mailbox/events/google', query: {}, headers: { 'x-goog-channel-id': 'c1', 'x-goog-channel-token': TOKEN, 'x-goog-resource-state': 'update', 'x-goog-message-number': '7' }, body: '{"id":"1234"}' };
    expect((await receive({ ...base, headers: { 'x-goog-channel-token': TOKEN } })).statusCode).toBe(400);
    expect((await receive({ ...base, body: '{"kind":"admin#directory#user"}' })).statusCode).toBe(400);
    expect((await receive({ ...base, body: 'nope' })).statusCode).toBe(400);
    expect((await receive({ ...base, body: '{"id":"../etc"}' })).statusCode).toBe(400);
    expect((await receive({ ...base, headers: { ...base.headers, 'x-goog-resource-state': 'exists' } })).statusCode).toBe(202);
    expect([...inbox.items.values()].map((e) => [e.kind, e.disposition])).toEqual([['google/exists', 'ignored']]);
    expect(queue.sent).toEqual([]);
  });

  async function fetchDelete(id: string): Promise<boolean> {
    // Through the API, so the simulator fires `delete` as Google does.
    const server = await sim.start();
    try {
      const client = new GoogleClient({ clientEmail: sim.serviceAccount.clientEmail, privateKey: KEYS.privateKey, adminEmail: sim.serviceAccount.adminEmail, apiBase: server.baseUrl, tokenUrl: `${server.baseUrl}/token` });
      const r = await client.call('DELETE', `/admin/directory/v1/users/${id}`, { route: 'DELETE /users/{id}' });
      return r.status === 204;
    } finally {
      await server.close();
    }
  }
});
