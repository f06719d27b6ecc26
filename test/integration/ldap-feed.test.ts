/**
 * The LDAP polling feed against a real OpenLDAP server (a throwaway slapd): each change becomes
 * exactly one `mailbox:ldap:<id>` message, across restarts (a new feed instance over the same
 * cursor store), within one second (modifyTimestamp's resolution; entryCSN tells the changes
 * apart), across a gap (the stack down for an hour), and through a crash between queuing and
 * storing the cursor (the same event ids again, nothing lost). Deletions are found by comparing
 * the directory with the ids the state knows, once each. What the cursor holds: no personal data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Attribute, Change, type Client } from 'ldapts';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import type { LdapDirectory } from '../../functions/mailbox/ldap/directory';
import { ldap } from '../../functions/mailbox/ldap/index';
import type { FeedCursorStore, MailboxConnection } from '../../functions/mailbox/provider';
import type { SyncMessage } from '../../functions/queue/messages';
import { PEOPLE, SKIP_REASON, slapdBinary, startSlapd, SYNC_DN, SYNC_PW, type Slapd } from '../support/slapd';

const available = slapdBinary() !== undefined;

let slapd: Slapd;
let admin: Client;
let n = 0;

beforeAll(async () => {
  if (!available) return;
  slapd = await startSlapd();
  admin = await slapd.admin();
});
afterAll(async () => slapd?.stop());

function memoryCursor(): FeedCursorStore & { value?: string; failNextPut?: boolean } {
  const store: FeedCursorStore & { value?: string; failNextPut?: boolean } = {
    async get() {
      return store.value;
    },
    async put(cursor) {
      if (store.failNextPut) {
        store.failNextPut = false;
        throw new Error('state table unavailable');
      }
      store.value = cursor;
    },
  };
  return store;
}

interface Harness {
  base: string;
  cursor: ReturnType<typeof memoryCursor>;
  queued: SyncMessage[];
  known: Set<string>;
  clock: { now: Date };
  /** A new feed instance (a new process) over the same cursor store and queue. */
  feed(): MailboxConnection;
  close(): Promise<void>;
}

async function harness(feedSettings: Record<string, unknown> = {}): Promise<Harness> {
  const base = `ou=feed${++n},${PEOPLE}`;
  await admin.add(base, { objectClass: ['organizationalUnit'], ou: `feed${n}` });
  const cursor = memoryCursor();
  const queued: SyncMessage[] = [];
  const known = new Set<string>();
  const clock = { now: new Date() };
  const opened: MailboxConnection[] = [];
  const config = parseRuntimeConfig({
    provider: 'ldap',
    mailDomain: 'example.com',
    ldap: { urls: [slapd.url], baseDn: base, writes: true, allowPlaintext: true, pageSize: 7, feed: { deletionSweepMinutes: 0, ...feedSettings } },
  });
  return {
    base,
    cursor,
    queued,
    known,
    clock,
    feed() {
      const c = ldap.create(
        config,
        { bindDn: SYNC_DN, bindPassword: SYNC_PW, webhookSecret: 'w' },
        {
          now: () => clock.now,
          feed: {
            cursor,
            enqueue: async (m) => void queued.push(...m),
            known: async function* () {
              yield* known;
            },
          },
        },
      );
      opened.push(c);
      return c;
    },
    async close() {
      for (const c of opened) await (c.directory as LdapDirectory).close();
    },
  };
}

const person = (i: number, prefix: string) => ({ employeeId: `${prefix}${i}`, email: `${prefix}${i}@example.com`, displayName: `人${i}`, jobTitle: `职位${i}` });
const subjects = (ms: SyncMessage[]) => ms.map((m) => m.subject).sort();
const take = (h: Harness) => h.queued.splice(0);

async function adminModify(dnOf: string, title: string): Promise<void> {
  await admin.modify(dnOf, new Change({ operation: 'replace', modification: new Attribute({ type: 'title', values: [title] }) }));
}

async function dnOf(base: string, id: string): Promise<string> {
  return (await admin.search(base, { filter: `(entryUUID=${id})`, attributes: ['1.1'] })).searchEntries[0]!.dn;
}

describe.skipIf(!available)(available ? 'ldap polling feed on slapd' : `ldap polling feed on slapd — skipped: ${SKIP_REASON}`, () => {
  it('the first run starts from now; then each change is queued once, also by a new feed instance over the same cursor', async () => {
    const h = await harness();
    try {
      const feed1 = h.feed();
      const a = await feed1.directory.create(person(1, 'a'));
      const b = await feed1.directory.create(person(2, 'a'));
      expect(await feed1.feed.upkeep()).toMatchObject({ kind: 'poll', caughtUp: { changed: 0, full: true } });
      expect(take(h)).toEqual([]);

      await feed1.directory.update(a.id, { jobTitle: '新职位' }); // very likely the same second as the baseline: entryCSN tells it apart
      expect(await feed1.feed.upkeep()).toMatchObject({ caughtUp: { changed: 1, full: false } });
      const [m] = take(h);
      expect(m).toMatchObject({ v: 1, subject: `mailbox:ldap:${a.id}`, source: 'mailbox', hint: 'ldap.changed', operator: 'ldap-poll' });

      // A restart: a new instance, the same cursor store. Nothing again.
      const feed2 = h.feed();
      expect(await feed2.feed.upkeep()).toMatchObject({ caughtUp: { changed: 0 } });
      expect(take(h)).toEqual([]);

      // Two changes of one account and one of another between polls: one message per account.
      await adminModify(await dnOf(h.base, a.id), 'x1');
      await adminModify(await dnOf(h.base, a.id), 'x2');
      await adminModify(await dnOf(h.base, b.id), 'y1');
      await feed2.feed.upkeep();
      const round = take(h);
      expect(subjects(round)).toEqual([`mailbox:ldap:${a.id}`, `mailbox:ldap:${b.id}`].sort());
      expect(new Set(round.map((x) => x.eventId)).size).toBe(2);

      // Polled again at once (same second, overlap re-read): nothing new.
      await h.feed().feed.upkeep();
      expect(take(h)).toEqual([]);

      // A change after that: queued again, with a new event id.
      await adminModify(await dnOf(h.base, a.id), 'x3');
      await feed2.feed.upkeep();
      const again = take(h);
      expect(subjects(again)).toEqual([`mailbox:ldap:${a.id}`]);
      expect(again[0]!.eventId).not.toBe(m!.eventId);
    } finally {
      await h.close();
    }
  });

  it('the cursor is persisted as a high-water mark with the boundary keys, no personal data', async () => {
    const h = await harness();
    try {
      const f = h.feed();
      const a = await f.directory.create(person(1, 'c'));
      await f.feed.upkeep();
      await f.directory.update(a.id, { mobile: '+8613800138000' });
      await f.feed.upkeep();
      const stored = JSON.parse(h.cursor.value!) as { v: number; kind: string; mark: string; seen: Array<[string, string]>; gone: string[]; sweptAt?: string };
      expect(stored).toMatchObject({ v: 1, kind: 'time', gone: [] });
      expect(Number(stored.mark)).toBeGreaterThan(Date.UTC(2020, 0) / 1000);
      expect(Math.abs(Number(stored.mark) - Date.now() / 1000)).toBeLessThan(600); // the server's clock, this machine's
      expect(stored.seen.length).toBeGreaterThan(0);
      // Keys are short hashes (which may contain any hex pair, e.g. "c1"), never a name, address, phone or DN.
      expect(stored.seen.every(([m, k]) => /^\d+$/.test(m) && /^[0-9a-f]{12}$/.test(k))).toBe(true);
      expect(h.cursor.value).not.toMatch(/"c1"|c1@|人|example\.com|13800138000|dc=|uid=/);
      expect(h.cursor.value).not.toContain(a.id);
    } finally {
      await h.close();
    }
  });

  it('a gap (the stack down for an hour) is recovered: everything changed meanwhile is queued once, then nothing', async () => {
    const h = await harness();
    try {
      const f = h.feed();
      const early = [];
      for (let i = 0; i < 5; i++) early.push(await f.directory.create(person(i, 'g')));
      await f.feed.upkeep();
      take(h);
      // The stack goes down: no poll while the directory keeps changing.
      const touched = new Set<string>();
      for (const acc of early.slice(0, 3)) {
        await f.directory.update(acc.id, { jobTitle: '停机期间' });
        touched.add(acc.id);
      }
      await f.directory.disable(early[3]!.id);
      touched.add(early[3]!.id);
      for (let i = 10; i < 22; i++) touched.add((await f.directory.create(person(i, 'g'))).id); // more than one page (7)
      h.clock.now = new Date(h.clock.now.getTime() + 3_600_000);
      // Back up an hour later, a new process.
      const back = h.feed();
      const r = await back.feed.upkeep();
      expect(r.caughtUp).toEqual({ changed: touched.size, full: false });
      expect(subjects(take(h))).toEqual([...touched].map((id) => `mailbox:ldap:${id}`).sort());
      await back.feed.upkeep();
      expect(take(h)).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('an old cursor (its mark an hour back) re-reads the hour: what changed in it is queued, once', async () => {
    const h = await harness({ overlapSeconds: 0 });
    try {
      const f = h.feed();
      const a = await f.directory.create(person(1, 'o'));
      await f.feed.upkeep();
      take(h);
      const state = JSON.parse(h.cursor.value!) as { mark: string; seen: unknown[] };
      h.cursor.value = JSON.stringify({ ...state, mark: String(Number(state.mark) - 3600), seen: [] });
      await h.feed().feed.upkeep();
      expect(subjects(take(h))).toEqual([`mailbox:ldap:${a.id}`]);
      await h.feed().feed.upkeep();
      expect(take(h)).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('a crash after queuing and before storing the cursor queues the same event ids again: nothing lost, dedupable', async () => {
    const h = await harness();
    try {
      const f = h.feed();
      const a = await f.directory.create(person(1, 'k'));
      await f.feed.upkeep();
      await f.directory.update(a.id, { jobTitle: 'crash' });
      h.cursor.failNextPut = true;
      await expect(f.feed.upkeep()).rejects.toThrow(/state table unavailable/);
      const first = take(h);
      expect(subjects(first)).toEqual([`mailbox:ldap:${a.id}`]);
      await h.feed().feed.upkeep();
      const second = take(h);
      expect(second.map((m) => m.eventId)).toEqual(first.map((m) => m.eventId));
      await h.feed().feed.upkeep();
      expect(take(h)).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('deletions: a known id gone from the directory is queued once; it stays reported until the state forgets it', async () => {
    const h = await harness();
    try {
      const f = h.feed();
      const ids = [];
      for (let i = 0; i < 9; i++) ids.push((await f.directory.create(person(i, 'd'))).id);
      for (const id of ids) h.known.add(id);
      h.known.add('00000000-0000-4000-8000-00000000dead'); // known but never in the directory: gone
      await f.feed.upkeep();
      expect(subjects(take(h))).toEqual(['mailbox:ldap:00000000-0000-4000-8000-00000000dead']);

      await f.directory.delete(ids[4]!);
      await admin.del(await dnOf(h.base, ids[5]!)); // an administrator deletes one too
      const r = await h.feed().feed.upkeep();
      expect(r.caughtUp?.changed).toBe(2);
      const gone = take(h);
      expect(subjects(gone)).toEqual([`mailbox:ldap:${ids[4]}`, `mailbox:ldap:${ids[5]}`].sort());
      expect(gone.every((m) => m.hint === 'ldap.gone')).toBe(true);

      await h.feed().feed.upkeep();
      expect(take(h)).toEqual([]);
      const cursor = JSON.parse(h.cursor.value!) as { gone: string[] };
      expect(cursor.gone).toHaveLength(3);
      // The state forgets one (its record is deleted): the cursor forgets it too.
      h.known.delete(ids[4]!);
      await h.feed().feed.upkeep();
      expect((JSON.parse(h.cursor.value!) as { gone: string[] }).gone).toHaveLength(2);
      expect(take(h)).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('deletions are looked for every deletionSweepMinutes, not on every poll; without known ids the result says so', async () => {
    const h = await harness({ deletionSweepMinutes: 60 });
    try {
      const f = h.feed();
      const a = await f.directory.create(person(1, 's'));
      h.known.add(a.id);
      await f.feed.upkeep();
      await f.directory.delete(a.id);
      await f.feed.upkeep();
      expect(take(h)).toEqual([]); // not due yet
      h.clock.now = new Date(h.clock.now.getTime() + 61 * 60_000);
      await f.feed.upkeep();
      expect(subjects(take(h))).toEqual([`mailbox:ldap:${a.id}`]);

      const bare = ldap.create(parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap: { urls: [slapd.url], baseDn: h.base, allowPlaintext: true } }), {
        bindDn: SYNC_DN,
        bindPassword: SYNC_PW,
        webhookSecret: 'w',
      }, { feed: { cursor: memoryCursor(), enqueue: async () => undefined } });
      expect(await bare.feed.upkeep()).toMatchObject({ kind: 'poll', skipped: expect.stringMatching(/no known ids/) });
      await (bare.directory as LdapDirectory).close();
      const unwired = ldap.create(parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap: { urls: [slapd.url], baseDn: h.base, allowPlaintext: true } }), {
        bindDn: SYNC_DN,
        bindPassword: SYNC_PW,
        webhookSecret: 'w',
      });
      expect(await unwired.feed.upkeep()).toMatchObject({ kind: 'poll', skipped: expect.stringMatching(/not wired/) });
    } finally {
      await h.close();
    }
  });
});
