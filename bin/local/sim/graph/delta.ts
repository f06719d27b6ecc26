/**
 * `GET /users/delta`: the first round returns every user, later rounds each user changed since
 * the round's deltaLink (in the order of their first change), a removed one as
 * `{ id, '@removed': { reason } }` — `changed` while it sits in deletedItems, `deleted` once
 * purged. `$deltatoken=latest` returns a deltaLink and nothing else ("sync from now").
 * Tokens carry the change-log position and the token epoch; expireDeltaTokens bumps the
 * epoch so every earlier token gets 410 syncStateNotFound. With persistDir the log survives
 * a restart, so a deltaLink issued before it still works.
 *
 * A round's ids are worked out once and paged from memory (a small cache of rounds), and the
 * first round pages over the live table: no page copies the tenant.
 */
import type { Route, SimContext } from './context';
import { b64, gErr, unb64 } from './odata';
import { selectUser, type GraphUser } from './state';

/** A page token: the round (from, to], the position, the live cursor, whether it is the first round. */
type Skip = { from: number; to: number; o: number; c?: string; sel?: string; e: number; i?: 1 };
type Tok = { seq: number; sel?: string; e: number };

const ROUNDS_KEPT = 64;

export function deltaRoute(ctx: SimContext): Route {
  const { state } = ctx;
  const rounds = new Map<string, string[]>(); // `${from}-${to}` → ids changed in (from, to]

  function changedIds(from: number, to: number): string[] {
    const key = `${from}-${to}`;
    let ids = rounds.get(key);
    if (!ids) {
      // Keys run 1…seq without gaps: look the range up instead of scanning the whole log.
      const changed = new Set<string>();
      for (let n = Math.max(from, 0) + 1; n <= Math.min(to, state.seq()); n++) {
        const id = state.changeLog.get(n);
        if (id !== undefined) changed.add(id);
      }
      ids = [...changed];
      rounds.set(key, ids);
      if (rounds.size > ROUNDS_KEPT) rounds.delete(rounds.keys().next().value!);
    }
    return ids;
  }

  return ({ method, seg: s, query, base }) => {
    if (s[0] !== 'users' || s[1] !== 'delta' || s.length !== 2 || method !== 'GET') return undefined;
    const gone = () => gErr(410, 'syncStateNotFound', 'The sync state is no longer available. Resync is required.');
    let from = 0;
    let to = state.seq();
    let page: { o: number; c?: string } | undefined;
    let select = query.get('$select') ?? undefined;
    const skiptoken = query.get('$skiptoken');
    const deltatoken = query.get('$deltatoken');
    let initial = !skiptoken && !deltatoken;
    const link = (t: unknown, kind: 'skiptoken' | 'deltatoken') => `${base}/v1.0/users/delta?$${kind}=${b64(t)}`;
    if (deltatoken === 'latest') {
      return { status: 200, body: { '@odata.context': `${base}/v1.0/$metadata#users(${select ?? ''})`, value: [], '@odata.deltaLink': link({ seq: to, sel: select, e: state.deltaEpoch() }, 'deltatoken') } };
    }
    if (skiptoken) {
      const st = unb64<Skip>(skiptoken);
      if (!st || st.e !== state.deltaEpoch()) return gone();
      ({ from, to } = st);
      initial = st.i === 1;
      page = { o: st.o, ...(st.c ? { c: st.c } : {}) };
      select = st.sel;
    } else if (deltatoken) {
      const dt = unb64<Tok>(deltatoken);
      if (!dt || dt.e !== state.deltaEpoch()) return gone();
      from = dt.seq;
      select = dt.sel;
    }
    const got = ctx.pager.page<GraphUser | string>(() => (initial ? state.users.values() : changedIds(from, to)[Symbol.iterator]()), page, ctx.opts.pageSize);
    const value = got.items.map((item) => {
      if (typeof item !== 'string') return selectUser(item, select);
      const u = state.users.get(item);
      if (u) return selectUser(u, select);
      return { id: item, '@removed': { reason: state.hardDeleted.has(item) ? 'deleted' : 'changed' } };
    });
    const out: Record<string, unknown> = { '@odata.context': `${base}/v1.0/$metadata#users(${select ?? ''})`, value };
    if (got.next) out['@odata.nextLink'] = link({ from, to, o: got.next.o, c: got.next.c, sel: select, e: state.deltaEpoch(), ...(initial ? { i: 1 } : {}) }, 'skiptoken');
    else out['@odata.deltaLink'] = link({ seq: to, sel: select, e: state.deltaEpoch() }, 'deltatoken');
    return { status: 200, body: out };
  };
}
