/**
 * Mailbox event receiver: Graph handshake, clientState, dedupe, lifecycle, signed webhook.
 * In-memory Inbox/WorkQueue with the contract's semantics (the DynamoDB inbox is exercised
 * in test/integration/graph.test.ts).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { addressKey, createMailboxReceiver, signWebhook, type LifecycleNotification } from '../../functions/mailbox/receive';
import type { HttpRequest } from '../../functions/core/http';
import type { SyncMessage, WorkQueue } from '../../functions/queue/messages';
import type { Inbox, InboxEntry } from '../../functions/store/ports';

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
  async listPending(before: Date, limit = 100) {
    return [...this.items.values()]
      .filter((i) => !i.enqueued && i.receivedAt < before.toISOString())
      .sort((a, b) => a.receivedAt.localeCompare(b.receivedAt))
      .slice(0, limit)
      .map(({ enqueued: _, ...e }) => e);
  }
}
class MemQueue implements WorkQueue {
  sent: SyncMessage[] = [];
  fail = false;
  async enqueue(m: SyncMessage[]) {
    if (this.fail) throw new Error('queue down');
    this.sent.push(...m);
  }
}

const CLIENT_STATE = 'cs-' + 'x'.repeat(60);
const SECRET = 'webhook-secret-0123456789';
const NOW = new Date('2026-11-24T10:00:00Z');
let inbox: MemInbox;
let queue: MemQueue;
let lifecycle: LifecycleNotification[];
let t: number;
let receive: ReturnType<typeof createMailboxReceiver>;

beforeEach(() => {
  inbox = new MemInbox();
  queue = new MemQueue();
  lifecycle = [];
  t = NOW.getTime();
  receive = createMailboxReceiver({
    inbox,
    queue,
    provider: 'graph',
    clientState: CLIENT_STATE,
    webhookSecret: SECRET,
    now: () => new Date(t),
    onLifecycle: async (n) => {
      lifecycle.push(n);
    },
  });
});

function req(path: string, body: string, extra: Partial<HttpRequest> = {}): HttpRequest {
  return { method: 'POST', path, query: {}, headers: { 'content-type': 'application/json' }, body, ...extra };
}

function change(userId: string, changeType = 'updated', clientState: string = CLIENT_STATE) {
  return {
    subscriptionId: 'sub-1',
    clientState,
    changeType,
    resource: `Users/${userId}`,
    resourceData: { '@odata.type': '#Microsoft.Graph.User', '@odata.id': `Users/${userId}`, id: userId, organizationId: 'org' },
    subscriptionExpirationDateTime: '2026-12-20T00:00:00Z',
    tenantId: 'tenant-1',
  };
}
const graphPost = (items: unknown[]) => req('/mailbox/events/graph', JSON.stringify({ value: items }));

describe('Graph notifications', () => {
  it('answers the validation handshake with the decoded token verbatim, as text/plain', async () => {
    const token = 'Validation: Testing client application reachability for subscription Request-Id: 9b3f+/&= ü';
    const res = await receive({ ...req('/mailbox/events/graph', ''), query: { validationToken: token }, headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers!['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toBe(token);
    expect(inbox.items.size).toBe(0);
  });

  it('a valid notification → one inbox item and one queue message per user, 202', async () => {
    const res = await receive(graphPost([change('11111111-aaaa'), change('22222222-bbbb', 'deleted')]));
    expect(res.statusCode).toBe(202);
    expect(queue.sent.map((m) => [m.subject, m.hint, m.source, m.operator])).toEqual([
      ['mailbox:graph:11111111-aaaa', 'graph.updated', 'mailbox', 'graph-notification'],
      ['mailbox:graph:22222222-bbbb', 'graph.deleted', 'mailbox', 'graph-notification'],
    ]);
    expect([...inbox.items.values()].map((i) => [i.kind, i.subjects, i.enqueued])).toEqual([
      ['graph/updated', ['mailbox:graph:11111111-aaaa'], true],
      ['graph/deleted', ['mailbox:graph:22222222-bbbb'], true],
    ]);
    expect(queue.sent[0]!.eventId).toBe([...inbox.items.keys()][0]);
  });

  it("Graph's redelivery of a notification (same id) is deduped whenever it comes; a new notification is not", async () => {
    await receive(graphPost([{ ...change('11111111-aaaa'), id: 'n-1' }]));
    t += 3_600_000;
    await receive(graphPost([{ ...change('11111111-aaaa'), id: 'n-1' }]));
    expect(queue.sent).toHaveLength(1);
    await receive(graphPost([{ ...change('11111111-aaaa'), id: 'n-2' }]));
    expect(queue.sent).toHaveLength(2);
  });

  it('without ids, identical items dedupe only within the short window', async () => {
    await receive(graphPost([change('11111111-aaaa')]));
    t += 3_000;
    await receive(graphPost([change('11111111-aaaa')]));
    expect(queue.sent).toHaveLength(1);
    t += 15_000;
    await receive(graphPost([change('11111111-aaaa')]));
    expect(queue.sent).toHaveLength(2);
  });

  it('re-enqueues an event whose earlier attempt died before enqueueing (pending)', async () => {
    queue.fail = true;
    expect((await receive(graphPost([change('11111111-aaaa')]))).statusCode).toBe(503);
    queue.fail = false;
    expect((await receive(graphPost([change('11111111-aaaa')]))).statusCode).toBe(202);
    expect(queue.sent).toHaveLength(1);
  });

  it('stores in each inbox entry what rebuilds its message (hint, operator), for the inbox sweep', async () => {
    await receive(graphPost([change('11111111-aaaa', 'deleted')]));
    const [entry] = [...inbox.items.values()];
    expect(entry).toMatchObject({ hint: 'graph.deleted', operator: 'graph-notification', subjects: ['mailbox:graph:11111111-aaaa'] });
  });

  it('two changes to one user in one request: one message, the delete wins, both entries marked', async () => {
    await receive(graphPost([{ ...change('11111111-aaaa'), id: 'a' }, { ...change('11111111-aaaa', 'deleted'), id: 'b' }]));
    expect(queue.sent.map((m) => [m.subject, m.hint])).toEqual([['mailbox:graph:11111111-aaaa', 'graph.deleted']]);
    expect([...inbox.items.values()].map((i) => i.enqueued)).toEqual([true, true]);
  });

  it('a failed record of one item → 503; the others are enqueued and marked; the retry finishes the rest once', async () => {
    const items = ['11111111-aaaa', '22222222-bbbb', '33333333-cccc'].map((u, i) => ({ ...change(u), id: `n${i}` }));
    const record = inbox.record.bind(inbox);
    let fail = true;
    inbox.record = async (e) => {
      if (fail && e.subjects[0] === 'mailbox:graph:22222222-bbbb') throw new Error('throttled');
      return record(e);
    };
    expect((await receive(graphPost(items))).statusCode).toBe(503);
    expect(queue.sent.map((m) => m.subject).sort()).toEqual(['mailbox:graph:11111111-aaaa', 'mailbox:graph:33333333-cccc']);
    expect([...inbox.items.values()].every((i) => i.enqueued)).toBe(true);
    fail = false;
    expect((await receive(graphPost(items))).statusCode).toBe(202);
    expect(queue.sent.map((m) => m.subject).sort()).toEqual(['mailbox:graph:11111111-aaaa', 'mailbox:graph:22222222-bbbb', 'mailbox:graph:33333333-cccc']);
  });

  it('sends the messages of a large request in batches of at most 10, several at once, each subject once', async () => {
    const calls: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const slow: WorkQueue = {
      enqueue: async (m) => {
        calls.push(m.length);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        queue.sent.push(...m);
      },
    };
    const r = createMailboxReceiver({ inbox, queue: slow, provider: 'graph', clientState: CLIENT_STATE, webhookSecret: SECRET, now: () => new Date(t) });
    const users = Array.from({ length: 95 }, (_, i) => `${String(i).padStart(8, '0')}-aaaa`);
    expect((await r(graphPost(users.map((u) => change(u))))).statusCode).toBe(202);
    expect(calls).toHaveLength(10);
    expect(Math.max(...calls)).toBe(10);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(new Set(queue.sent.map((m) => m.subject)).size).toBe(95);
    expect(queue.sent).toHaveLength(95);
    // writeConcurrency 1: the one-at-a-time path, same outcome.
    const seq = createMailboxReceiver({ inbox, queue: slow, provider: 'graph', clientState: CLIENT_STATE, webhookSecret: SECRET, now: () => new Date(t), writeConcurrency: 1 });
    inFlight = maxInFlight = 0;
    t += 60_000;
    expect((await seq(graphPost(users.map((u) => change(u))))).statusCode).toBe(202);
    expect(maxInFlight).toBe(1);
  });

  it('one forged clientState rejects the whole request with 403 and records nothing', async () => {
    const res = await receive(graphPost([change('11111111-aaaa'), change('22222222-bbbb', 'updated', 'guess')]));
    expect(res.statusCode).toBe(403);
    expect(inbox.items.size).toBe(0);
    expect(queue.sent).toHaveLength(0);
    const missing = { ...change('11111111-aaaa') } as Record<string, unknown>;
    delete missing.clientState;
    expect((await receive(graphPost([missing]))).statusCode).toBe(403);
    expect((await receive(graphPost([change('11111111-aaaa', 'updated', CLIENT_STATE + 'x')]))).statusCode).toBe(403);
    expect(inbox.items.size).toBe(0);
  });

  it('malformed bodies are 400 with nothing recorded', async () => {
    for (const body of ['not json', '{}', '{"value":[]}', JSON.stringify({ value: [{ ...change('a'), changeType: 'exploded' }] })]) {
      expect((await receive(req('/mailbox/events/graph', body))).statusCode).toBe(400);
    }
    const mismatch = { ...change('11111111-aaaa'), resourceData: { id: '99999999-ffff' } };
    expect((await receive(graphPost([mismatch]))).statusCode).toBe(400);
    expect(inbox.items.size).toBe(0);
    expect(queue.sent).toHaveLength(0);
  });

  it('a notification for a resource we do not handle is recorded as ignored, not enqueued', async () => {
    const res = await receive(graphPost([{ ...change('x'), resource: 'Groups/abc', resourceData: undefined }]));
    expect(res.statusCode).toBe(202);
    expect([...inbox.items.values()][0]!.disposition).toBe('ignored');
    expect(queue.sent).toHaveLength(0);
  });

  it('lifecycle notifications are enqueued on the subscription subject and passed to the hook', async () => {
    const items = (['reauthorizationRequired', 'subscriptionRemoved', 'missed'] as const).map((e) => ({
      subscriptionId: 'sub-1',
      subscriptionExpirationDateTime: '2026-12-20T00:00:00Z',
      tenantId: 'tenant-1',
      clientState: CLIENT_STATE,
      lifecycleEvent: e,
    }));
    const res = await receive(graphPost(items));
    expect(res.statusCode).toBe(202);
    // One message per subject per request; all three inbox entries recorded.
    expect(queue.sent.map((m) => m.subject)).toEqual(['mailbox:graph:subscription']);
    expect(inbox.items.size).toBe(3);
    expect(lifecycle.map((n) => n.lifecycleEvent)).toEqual(['reauthorizationRequired', 'subscriptionRemoved', 'missed']);
    const forged = await receive(graphPost([{ ...items[0], clientState: 'nope' }]));
    expect(forged.statusCode).toBe(403);
  });

  it('rejects oversize bodies and other paths', async () => {
    const small = createMailboxReceiver({ inbox, queue, provider: 'graph', clientState: CLIENT_STATE, webhookSecret: SECRET, maxBodyBytes: 100 });
    expect((await small(graphPost([change('11111111-aaaa')]))).statusCode).toBe(413);
    expect((await receive(req('/mailbox/events/other', '{}'))).statusCode).toBe(404);
    expect((await receive({ ...req('/mailbox/events/graph', ''), method: 'GET' })).statusCode).toBe(405);
  });
});

describe('signed webhook', () => {
  const ts = () => String(Math.floor(t / 1000));
  function signed(body: unknown, opts: { secret?: string; timestamp?: string } = {}) {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    const timestamp = opts.timestamp ?? ts();
    return req('/mailbox/events/webhook', raw, {
      headers: { 'content-type': 'application/json', 'x-timestamp': timestamp, 'x-signature': signWebhook(opts.secret ?? SECRET, timestamp, raw) },
    });
  }
  const event = { type: 'mailbox.disabled', userid: 'zhangsan', occurredAt: '2026-11-24T09:59:00Z' };

  it('a good signature → inbox item + message on user:<userid>; a resend is a duplicate', async () => {
    expect((await receive(signed(event))).statusCode).toBe(202);
    expect(queue.sent.map((m) => [m.subject, m.hint, m.operator])).toEqual([['user:zhangsan', 'mailbox.disabled', 'webhook']]);
    expect([...inbox.items.values()][0]!.kind).toBe('webhook/mailbox.disabled');
    t += 10_000; // the sender retries later: new timestamp, same body
    expect((await receive(signed(event))).statusCode).toBe(202);
    expect(queue.sent).toHaveLength(1);
  });

  it('an email-only event carries a keyed hash, never the address', async () => {
    const res = await receive(signed({ type: 'mailbox.deleted', email: 'Li.Si@Example.com', occurredAt: '2026-11-24T09:59:00+08:00' }));
    expect(res.statusCode).toBe(202);
    const m = queue.sent[0]!;
    expect(m.subject).toBe(`mailbox:address:${addressKey(SECRET, 'li.si@example.com')}`);
    const stored = JSON.stringify([...inbox.items.values()]) + JSON.stringify(queue.sent);
    expect(stored.toLowerCase()).not.toContain('li.si');
  });

  it('mailbox.created is found by its address (even with a userid), mailbox.updated by userid; created without an email is refused with the reason', async () => {
    expect((await receive(signed({ type: 'mailbox.created', email: 'new.hire@example.com', userid: 'newhire', occurredAt: '2026-11-24T09:59:00Z' }))).statusCode).toBe(202);
    expect((await receive(signed({ type: 'mailbox.updated', userid: 'zhangsan', occurredAt: '2026-11-24T09:59:00Z' }))).statusCode).toBe(202);
    expect(queue.sent.map((m) => [m.subject, m.hint])).toEqual([
      [`mailbox:address:${addressKey(SECRET, 'new.hire@example.com')}`, 'mailbox.created'],
      ['user:zhangsan', 'mailbox.updated'],
    ]);
    const refused = await receive(signed({ type: 'mailbox.created', userid: 'newhire', occurredAt: '2026-11-24T09:59:00Z' }));
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toMatch(/mailbox\.created needs the email/);
    expect(queue.sent).toHaveLength(2);
  });

  it('bad signature, wrong secret, stale or future timestamp, missing headers → 401, nothing recorded', async () => {
    const good = signed(event);
    const tampered = { ...good, body: good.body.replace('disabled', 'enabled') };
    expect((await receive(tampered)).statusCode).toBe(401);
    expect((await receive(signed(event, { secret: 'other' }))).statusCode).toBe(401);
    expect((await receive(signed(event, { timestamp: String(Math.floor(t / 1000) - 301) }))).statusCode).toBe(401);
    expect((await receive(signed(event, { timestamp: String(Math.floor(t / 1000) + 301) }))).statusCode).toBe(401);
    expect((await receive({ ...good, headers: { 'x-timestamp': ts() } })).statusCode).toBe(401);
    expect((await receive({ ...good, headers: { ...good.headers, 'x-signature': 'sha256=zz' } })).statusCode).toBe(401);
    expect(inbox.items.size).toBe(0);
    expect(queue.sent).toHaveLength(0);
  });

  it('signed but malformed events → 400, nothing recorded', async () => {
    for (const body of [
      'not json',
      { type: 'mailbox.exploded', userid: 'a', occurredAt: '2026-11-24T09:59:00Z' },
      { type: 'mailbox.disabled', occurredAt: '2026-11-24T09:59:00Z' },
      { type: 'mailbox.disabled', userid: 'a', occurredAt: 'yesterday' },
      { type: 'mailbox.disabled', userid: 'bad id!', occurredAt: '2026-11-24T09:59:00Z' },
      { type: 'mailbox.disabled', email: 'not-an-email', occurredAt: '2026-11-24T09:59:00Z' },
    ]) {
      const res = await receive(signed(body));
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect(inbox.items.size).toBe(0);
    expect(queue.sent).toHaveLength(0);
  });
});

describe('provider routing', () => {
  it('notifications go to the configured provider only; without a clientState none is accepted, the webhook still is', async () => {
    const other = createMailboxReceiver({ inbox, queue, provider: 'google', clientState: CLIENT_STATE, webhookSecret: SECRET, now: () => new Date(t) });
    expect((await other(graphPost([change('11111111-aaaa')]))).statusCode).toBe(404);
    const noState = createMailboxReceiver({ inbox, queue, provider: 'graph', clientState: '', webhookSecret: SECRET, now: () => new Date(t) });
    expect((await noState(graphPost([change('11111111-aaaa')]))).statusCode).toBe(403);
    const ts = String(Math.floor(t / 1000));
    const body = JSON.stringify({ type: 'mailbox.disabled', userid: 'zhangsan', occurredAt: '2026-11-24T09:59:00Z' });
    const hook = await noState(req('/mailbox/events/webhook', body, { headers: { 'content-type': 'application/json', 'x-timestamp': ts, 'x-signature': signWebhook(SECRET, ts, body) } }));
    expect(hook.statusCode).toBe(202);
    expect(queue.sent.map((m) => m.subject)).toEqual(['user:zhangsan']);
  });
});
