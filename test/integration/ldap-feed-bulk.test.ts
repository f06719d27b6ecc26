/**
 * The LDAP polling feed after a bulk change larger than its cursor keeps (SEEN_MAX change keys
 * in the overlap window): 6,000 entries loaded in one go carry one modifyTimestamp. The polls
 * after it must queue nothing that did not change — before FeedState.floor every poll queued
 * the entries whose keys the cursor had dropped, again and again until the mark moved — and a
 * real change after it must still be queued, once, even in the same second as the bulk load
 * (the test runs fast enough for that to happen). Real slapd, seeded offline with slapadd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRuntimeConfig } from '../../functions/config/runtime';
import { SEEN_MAX } from '../../functions/mailbox/ldap/feed';
import { ldap } from '../../functions/mailbox/ldap/index';
import type { LdapDirectory } from '../../functions/mailbox/ldap/directory';
import type { FeedCursorStore } from '../../functions/mailbox/provider';
import type { SyncMessage } from '../../functions/queue/messages';
import { Attribute, Change } from 'ldapts';
import { PEOPLE, SKIP_REASON, slapdBinary, startSlapd, SYNC_DN, SYNC_PW, type Slapd } from '../support/slapd';

const available = slapdBinary() !== undefined;
const N = SEEN_MAX + 1_000;

function ldif(): string {
  const out: string[] = [];
  for (let i = 0; i < N; i++) {
    const uid = `b${String(i).padStart(5, '0')}`;
    out.push([`dn: uid=${uid},${PEOPLE}`, 'objectClass: inetOrgPerson', `uid: ${uid}`, `cn: B ${i}`, `sn: ${i}`, `mail: ${uid}@example.com`, `employeeNumber: ${uid}`, ''].join('\n'));
  }
  return out.join('\n');
}

let slapd: Slapd;
beforeAll(async () => {
  if (available) slapd = await startSlapd({ seedLdif: ldif(), auditlog: false, indexes: ['modifyTimestamp eq', 'entryCSN eq'] });
}, 120_000);
afterAll(async () => slapd?.stop());

describe.skipIf(!available)(available ? 'ldap feed after a bulk change beyond the cursor bound' : `ldap feed bulk — skipped: ${SKIP_REASON}`, () => {
  it('queues nothing unchanged on the polls after it, and each later change once', async () => {
    const cursor: FeedCursorStore & { value?: string } = { get: async () => cursor.value, put: async (v) => void (cursor.value = v) };
    const queued: SyncMessage[] = [];
    const conn = ldap.create(
      parseRuntimeConfig({ provider: 'ldap', mailDomain: 'example.com', ldap: { urls: [slapd.url], baseDn: PEOPLE, allowPlaintext: true, pageSize: 500, feed: { deletionSweepMinutes: 0 } } }),
      { bindDn: SYNC_DN, bindPassword: SYNC_PW, webhookSecret: 'w' },
      { feed: { cursor, enqueue: async (m) => void queued.push(...m) } },
    );
    try {
      await conn.feed.upkeep(); // first run: the mark, nothing queued
      expect(queued).toHaveLength(0);
      // OpenLDAP's entryCSN tells what was read from what changed since, even within one second.
      expect(JSON.parse(cursor.value!)).toMatchObject({ changeFloor: expect.stringMatching(/^\d{14}\.\d{6}Z#/) });
      expect(JSON.parse(cursor.value!).floor).toBeUndefined();
      await conn.feed.upkeep();
      await conn.feed.upkeep();
      expect(queued).toHaveLength(0);

      const admin = await slapd.admin();
      for (const uid of ['b00007', 'b05999']) {
        await admin.modify(`uid=${uid},${PEOPLE}`, new Change({ operation: 'replace', modification: new Attribute({ type: 'title', values: ['Changed'] }) }));
      }
      await conn.feed.upkeep();
      expect(queued.map((m) => m.hint)).toEqual(['ldap.changed', 'ldap.changed']);
      expect(new Set(queued.map((m) => m.subject)).size).toBe(2);
      await conn.feed.upkeep();
      expect(queued).toHaveLength(2);
      await admin.unbind();
    } finally {
      await (conn.directory as LdapDirectory).close();
    }
  }, 120_000);
});
