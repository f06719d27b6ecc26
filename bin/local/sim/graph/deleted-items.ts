/**
 * `/directory/deletedItems`: Graph keeps a soft-deleted user 30 days. Listing needs the type
 * cast (`/directory/deletedItems/microsoft.graph.user`; without it 400), with the same
 * advanced-query rules as /users; get; restore (same id and properties, refused with
 * ObjectConflict while a live user holds the UPN; group memberships are not restored); and
 * DELETE, the permanent delete (notified as `deleted`).
 */
import type { Route, SimContext } from './context';
import { gErr, notFound, type Res } from './odata';
import { ALL_USER_PROPS, deletedView, selectUser } from './state';
import { conflict, listUsers } from './users';

export interface DeletedItems {
  route: Route;
  /** Permanently delete (the sim's `hardDelete`). */
  purge(id: string): void;
}

export function deletedItems(ctx: SimContext): DeletedItems {
  const { state } = ctx;

  function restore(id: string): Res {
    const u = state.deletedItems.get(id);
    if (!u) return gErr(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
    if (state.users.find('userPrincipalName', u.userPrincipalName).length) return conflict('userPrincipalName');
    state.deletedItems.delete(id);
    delete u.deletedDateTime;
    state.users.set(id, u);
    ctx.changed(id, 'updated');
    return { status: 200, body: { '@odata.type': '#microsoft.graph.user', ...selectUser(u, ALL_USER_PROPS) } };
  }

  function purge(id: string): void {
    state.deletedItems.delete(id);
    state.hardDeleted.add(id);
    ctx.changed(id, 'deleted');
  }

  const route: Route = (req) => {
    const { method, seg: s, base } = req;
    if (s[0] !== 'directory' || s[1] !== 'deletedItems') return undefined;
    if (s.length === 2 && method === 'GET') {
      return gErr(400, 'Request_BadRequest', 'The type of deleted items must be given as a cast segment, e.g. /directory/deletedItems/microsoft.graph.user.');
    }
    if (s.length === 3 && s[2] === 'microsoft.graph.user' && method === 'GET') {
      return listUsers(ctx, state.deletedItems, ['employeeId', 'userPrincipalName', 'mail'], req, {
        link: `${base}/v1.0/directory/deletedItems/microsoft.graph.user`,
        context: `${base}/v1.0/$metadata#directoryObjects/microsoft.graph.user`,
        project: deletedView,
      });
    }
    if (s.length === 4 && s[3] === 'restore' && method === 'POST') return restore(s[2]!);
    if (s.length === 3) {
      const u = state.deletedItems.get(s[2]!);
      if (!u) return notFound(s[2]!);
      if (method === 'GET') return { status: 200, body: deletedView(u, req.query.get('$select') ?? undefined) };
      if (method === 'DELETE') {
        purge(u.id);
        return { status: 204 };
      }
    }
    return undefined;
  };
  return { route, purge };
}
