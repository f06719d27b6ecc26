/**
 * `/users`: list (with `$filter` eq, `$count` under ConsistencyLevel: eventual, `$top`
 * paging, `$select`), create with Graph's validation (required properties, password
 * complexity, UPN uniqueness across live AND soft-deleted users), get, PATCH, and DELETE as
 * the soft delete into deletedItems (group memberships dropped, `updated` notified).
 */
import { randomUUID } from 'node:crypto';
import type { Route, SimContext, SimRequest } from './context';
import { b64, gErr, notFound, parseFilter, unb64, type Res } from './odata';
import { ALL_USER_PROPS, selectUser, type GraphUser, type UserTable } from './state';

const USER_PROPS = new Set([
  'accountEnabled',
  'displayName',
  'mailNickname',
  'userPrincipalName',
  'mail',
  'mobilePhone',
  'businessPhones',
  'jobTitle',
  'department',
  'employeeId',
  'usageLocation',
  'userType',
  'passwordProfile',
]);

export function conflict(prop: string): Res {
  return gErr(400, 'Request_BadRequest', `Another object with the same value for property ${prop} already exists.`, {
    details: [{ code: 'ObjectConflict', message: `Another object with the same value for property ${prop} already exists.`, target: prop }],
  });
}

/**
 * A listing of `source` as Graph pages one: `$filter` (eq on one of `filterable`, answered from
 * the table's index), `$count` (only with ConsistencyLevel: eventual), `$top` + nextLink,
 * `$select` through `project`.
 */
export function listUsers(
  ctx: SimContext,
  source: UserTable,
  filterable: readonly string[],
  req: SimRequest,
  o: { link: string; context: string; project: (u: GraphUser, select?: string) => Record<string, unknown> },
): Res {
  const { query, headers } = req;
  const select = query.get('$select') ?? undefined;
  const wantCount = query.get('$count') === 'true';
  if (wantCount && (headers['consistencylevel'] ?? '').toLowerCase() !== 'eventual') {
    return gErr(400, 'Request_UnsupportedQuery', "$count requires the 'ConsistencyLevel: eventual' header.");
  }
  let matched: GraphUser[] | undefined;
  const filter = query.get('$filter');
  if (filter) {
    const f = parseFilter(filter);
    if (f === 'unsupported' || !filterable.includes(f.prop)) return gErr(400, 'Request_UnsupportedQuery', 'Unsupported or invalid query filter clause specified.');
    // The index knows the ids; keep the table's (insertion) order among them.
    matched = source.find(f.prop, f.value);
  }
  const top = Math.min(ctx.opts.maxTop, Number(query.get('$top') ?? ctx.opts.pageSize) || ctx.opts.pageSize);
  const token = query.get('$skiptoken') ? unb64<{ o: number; c?: string }>(query.get('$skiptoken')!) : undefined;
  const page = ctx.pager.page<GraphUser>(() => (matched ?? source.values())[Symbol.iterator](), token, top);
  const out: Record<string, unknown> = { '@odata.context': o.context, value: page.items.map((u) => o.project(u, select)) };
  if (wantCount) out['@odata.count'] = matched ? matched.length : source.size;
  if (page.next) {
    const q = new URLSearchParams(query);
    q.set('$skiptoken', b64(page.next));
    out['@odata.nextLink'] = `${o.link}?${q.toString()}`;
  }
  return { status: 200, body: out };
}

export function validateUserPatch(body: Record<string, unknown>, forCreate: boolean): Res | undefined {
  for (const k of Object.keys(body)) {
    if (!USER_PROPS.has(k)) return gErr(400, 'Request_BadRequest', `Property '${k}' does not exist on type 'microsoft.graph.user'.`);
  }
  if ('businessPhones' in body) {
    const p = body.businessPhones;
    if (!Array.isArray(p) || p.length > 1) return gErr(400, 'Request_BadRequest', 'Only one number can be set for businessPhones.');
  }
  if ('userType' in body && body.userType !== 'Member' && body.userType !== 'Guest') {
    return gErr(400, 'Request_BadRequest', "Invalid value specified for property 'userType' of resource 'User'.");
  }
  if ('mailNickname' in body && (typeof body.mailNickname !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(body.mailNickname))) {
    return gErr(400, 'Request_BadRequest', 'Invalid value specified for property mailNickname of resource User.');
  }
  if ('displayName' in body && (typeof body.displayName !== 'string' || !body.displayName)) {
    return gErr(400, 'Request_BadRequest', 'Invalid value specified for property displayName of resource User.');
  }
  if ('userPrincipalName' in body) {
    const upn = body.userPrincipalName;
    if (typeof upn !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(upn)) {
      return gErr(400, 'Request_BadRequest', 'Invalid value specified for property userPrincipalName of resource User.');
    }
  }
  if (forCreate) {
    for (const k of ['accountEnabled', 'displayName', 'mailNickname', 'userPrincipalName', 'passwordProfile']) {
      if (!(k in body)) return gErr(400, 'Request_BadRequest', `A value is required for property '${k}' of resource 'User'.`);
    }
    const pwd = (body.passwordProfile as { password?: unknown } | undefined)?.password;
    if (typeof pwd !== 'string' || !complexEnough(pwd)) {
      return gErr(400, 'Request_BadRequest', 'The specified password does not comply with password complexity requirements.');
    }
  }
  return undefined;
}

function applyPatch(u: GraphUser, body: Record<string, unknown>) {
  for (const [k, v] of Object.entries(body)) {
    if (k === 'passwordProfile') u.passwordSet = true;
    else (u as unknown as Record<string, unknown>)[k] = v === undefined ? null : v;
  }
}

function complexEnough(pwd: string): boolean {
  if (pwd.length < 8 || pwd.length > 256) return false;
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((re) => re.test(pwd)).length;
  return classes >= 3;
}

export function usersRoute(ctx: SimContext): Route {
  const { state } = ctx;
  return (req) => {
    const { method, seg: s, body: b, base } = req;
    if (s[0] !== 'users' || s[1] === 'delta') return undefined;
    if (s.length === 1 && method === 'GET') {
      return listUsers(ctx, state.users, ['employeeId', 'mail', 'userPrincipalName', 'mailNickname', 'displayName'], req, {
        link: `${base}/v1.0/users`,
        context: `${base}/v1.0/$metadata#users`,
        project: selectUser,
      });
    }
    if (s.length === 1 && method === 'POST') {
      const bad = validateUserPatch(b, true);
      if (bad) return bad;
      if (state.upnTaken(String(b.userPrincipalName))) return conflict('userPrincipalName');
      const u: GraphUser = {
        id: randomUUID(),
        accountEnabled: Boolean(b.accountEnabled),
        displayName: String(b.displayName),
        mailNickname: String(b.mailNickname),
        userPrincipalName: String(b.userPrincipalName),
        mail: null,
        mobilePhone: null,
        businessPhones: [],
        jobTitle: null,
        department: null,
        employeeId: null,
        usageLocation: null,
        userType: 'Member',
        passwordSet: false,
      };
      applyPatch(u, b);
      state.users.set(u.id, u);
      ctx.changed(u.id, 'updated');
      return { status: 201, body: selectUser(u, ALL_USER_PROPS) };
    }
    if (s[2] === 'memberOf' && method === 'GET' && (s.length === 3 || (s.length === 4 && s[3] === 'microsoft.graph.group'))) {
      // Direct memberships (groups only in this simulator), one page: nobody here is in 100+ groups.
      if (!state.users.get(s[1]!)) return notFound(s[1]!);
      const groups = [...state.groups.values()].filter((g) => g.members.has(s[1]!));
      return {
        status: 200,
        body: {
          '@odata.context': `${base}/v1.0/$metadata#directoryObjects`,
          value: groups.map((g) => ({ '@odata.type': '#microsoft.graph.group', id: g.id, displayName: g.displayName })),
        },
      };
    }
    if (s.length !== 2) return undefined;
    const id = s[1]!;
    const u = state.users.get(id);
    if (!u) return notFound(id);
    if (method === 'GET') return { status: 200, body: selectUser(u, req.query.get('$select') ?? undefined) };
    if (method === 'PATCH') {
      const bad = validateUserPatch(b, false);
      if (bad) return bad;
      if ('userPrincipalName' in b && state.upnTaken(String(b.userPrincipalName), id)) return conflict('userPrincipalName');
      applyPatch(u, b);
      state.users.set(id, u); // stored again: journals the in-place change and re-indexes it
      ctx.changed(id, 'updated');
      return { status: 204 };
    }
    if (method === 'DELETE') {
      state.users.delete(id);
      u.deletedDateTime = ctx.now().toISOString();
      state.deletedItems.set(id, u);
      for (const g of state.groups.values()) g.members.delete(id);
      ctx.changed(id, 'updated'); // soft delete fires 'updated' for users
      return { status: 204 };
    }
    return undefined;
  };
}
