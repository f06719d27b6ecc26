/**
 * `/groups`: list with `$filter` on displayName or mailNickname, create (a mail-enabled
 * security group or distribution list is refused, as Graph refuses it), and membership
 * references: `POST /groups/{id}/members/$ref` with `@odata.id` naming a directory object on
 * the tenant's cloud host (another cloud's host is not a reference to this tenant), 400
 * "already exist" for a member; `DELETE /groups/{id}/members/{userId}/$ref`, 404 for a
 * non-member.
 */
import { randomUUID } from 'node:crypto';
import type { Route, SimContext } from './context';
import { gErr, notFound, parseFilter } from './odata';
import type { GraphGroup } from './state';
import { CLOUD_GRAPH_HOST } from './token';

export function groupsRoute(ctx: SimContext): Route {
  const { groups, users } = ctx.state;
  const refPrefix = `${CLOUD_GRAPH_HOST[ctx.opts.cloud]}/v1.0/directoryObjects/`;
  return ({ method, seg: s, query, body: b }) => {
    if (s[0] !== 'groups') return undefined;
    if (s.length === 1 && method === 'GET') {
      let list = [...groups.values()];
      const filter = query.get('$filter');
      if (filter) {
        const f = parseFilter(filter);
        if (f === 'unsupported' || !['displayName', 'mailNickname'].includes(f.prop)) return gErr(400, 'Request_UnsupportedQuery', 'Unsupported query.');
        list = list.filter((g) => String((g as unknown as Record<string, unknown>)[f.prop]).toLowerCase() === f.value.toLowerCase());
      }
      return { status: 200, body: { value: list.map(({ members: _m, ...g }) => g) } };
    }
    if (s.length === 1 && method === 'POST') {
      for (const k of ['displayName', 'mailEnabled', 'mailNickname', 'securityEnabled']) {
        if (!(k in b)) return gErr(400, 'Request_BadRequest', `A value is required for property '${k}' of resource 'Group'.`);
      }
      const unified = Array.isArray(b.groupTypes) && b.groupTypes.includes('Unified');
      if (b.mailEnabled === true && !unified) {
        // Graph cannot create mail-enabled security groups or distribution lists.
        return gErr(400, 'Request_BadRequest', 'Creating mail-enabled security groups or distribution groups is not supported.');
      }
      const g: GraphGroup = {
        id: randomUUID(),
        displayName: String(b.displayName),
        mailNickname: String(b.mailNickname),
        mailEnabled: Boolean(b.mailEnabled),
        securityEnabled: Boolean(b.securityEnabled),
        description: typeof b.description === 'string' ? b.description : null,
        members: new Set(),
      };
      groups.set(g.id, g);
      const { members: _m, ...wire } = g;
      return { status: 201, body: wire };
    }
    if (s[2] !== 'members') return undefined;
    const g = groups.get(s[1]!);
    if (!g) return notFound(s[1]!);
    if (s.length === 4 && s[3] === '$ref' && method === 'POST') {
      const ref = String(b['@odata.id'] ?? '');
      if (!ref.startsWith(refPrefix)) return gErr(400, 'Request_BadRequest', "Invalid URL format specified in @odata.id for the 'members' reference.");
      const uid = ref.slice(refPrefix.length);
      if (!users.has(uid)) return notFound(uid);
      if (g.members.has(uid)) return gErr(400, 'Request_BadRequest', "One or more added object references already exist for the following modified properties: 'members'.");
      g.members.add(uid);
      return { status: 204 };
    }
    if (s.length === 5 && s[4] === '$ref' && method === 'DELETE') {
      if (!g.members.delete(s[3]!)) return notFound(s[3]!);
      return { status: 204 };
    }
    return undefined;
  };
}
