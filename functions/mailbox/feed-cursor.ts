/**
 * Where a delta feed keeps its cursor between scheduled runs: one record in the state table
 * under `mailbox:<provider>:feed-cursor` (kind 'mailbox', like the other provider-level
 * items), written with the state store's optimistic version check so two overlapping runs
 * cannot both move it. The cursor is the provider's opaque link (Graph: a deltaLink): no
 * personal data, and useless without the app's token.
 */
import type { Subject } from '../core/model';
import type { StateStore } from '../store/ports';
import type { FeedCursorStore } from './provider';

export function stateFeedCursor(state: StateStore, provider: string, now: () => Date = () => new Date()): FeedCursorStore {
  const subject: Subject = `mailbox:${provider}:feed-cursor`;
  return {
    async get() {
      const cursor = (await state.get(subject))?.fields.cursor;
      return typeof cursor === 'string' ? cursor : undefined;
    },
    async put(cursor) {
      const current = await state.get(subject);
      await state.put({
        subject,
        wecomId: '',
        provider,
        status: 'active',
        fields: { cursor },
        sensitive: {},
        lastSyncedAt: now().toISOString(),
        version: current?.version ?? 0,
      });
    },
  };
}

/**
 * The ids of `provider`'s accounts the product believes exist: the targetIds of the state
 * table's people not marked deleted. A polling feed that has no deletion events (LDAP)
 * compares these with the directory and reports the ones gone. Paged, so memory stays flat.
 */
export function stateKnownIds(state: StateStore, provider: string): () => AsyncIterable<string> {
  return async function* () {
    let cursor: string | undefined;
    do {
      const page = await state.listPage('user', cursor);
      for (const r of page.records) if (r.provider === provider && r.targetId && r.status !== 'deleted') yield r.targetId;
      cursor = page.next;
    } while (cursor);
  };
}
