/**
 * The ids a polling feed compares with the directory to find deletions (LDAP): the state
 * table's people of this provider that are not marked deleted, read page by page from a real
 * (embedded) DynamoDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { stateFeedCursor, stateKnownIds } from '../../functions/mailbox/feed-cursor';
import { DynamoStateStore } from '../../functions/store/state';
import type { StateRecord } from '../../functions/store/ports';

let dyn: LocalDynamo;
beforeAll(async () => {
  dyn = await startDynalite();
}, 30_000);
afterAll(() => dyn?.close());

const rec = (userid: string, o: Partial<StateRecord>): StateRecord => ({
  subject: `user:${userid}`,
  wecomId: userid,
  status: 'active',
  fields: {},
  sensitive: {},
  lastSyncedAt: '2026-12-01T00:00:00.000Z',
  version: 0,
  ...o,
});

describe('stateKnownIds', () => {
  it("yields the targetIds of this provider's live people only, across pages", async () => {
    const state = new DynamoStateStore(dyn.client, dyn.tables.state);
    const ids: string[] = [];
    // Enough records for several scan pages of the state table.
    for (let i = 0; i < 240; i++) {
      const id = `uuid-${String(i).padStart(3, '0')}`;
      await state.put(rec(`p${i}`, { provider: 'ldap', targetId: id, status: i % 3 === 0 ? 'disabled' : 'active' }));
      ids.push(id);
    }
    await state.put(rec('gone', { provider: 'ldap', targetId: 'uuid-gone', status: 'deleted' }));
    await state.put(rec('other', { provider: 'graph', targetId: 'graph-id' }));
    await state.put(rec('unlinked', { provider: 'ldap' }));
    // Provider-level items (the feed's own cursor) are not people.
    await stateFeedCursor(state, 'ldap').put('usn:42');

    const seen: string[] = [];
    for await (const id of stateKnownIds(state, 'ldap')()) seen.push(id);
    expect(seen.sort()).toEqual(ids.sort());
  });
});
