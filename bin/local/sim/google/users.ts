/**
 * `/admin/directory/v1/users`: list (customer, `maxResults` ≤ 500 + `pageToken`, `query`
 * search on externalId / email / isSuspended, `showDeleted`, `fields=nextPageToken,users(…)`),
 * insert (Google's required fields and limits; a primary address held by a LIVE user is 409
 * `duplicate`, a recently deleted user's is free, as in Google), get by id or address, update
 * (PUT: patch semantics, `null` clears, arrays replaced whole) and patch (PATCH: the same, but
 * a `null` cannot clear an array, as documented), delete (into the recently deleted list for
 * `undeleteDays`), undelete (the immutable id only; 409 while a live user holds the address).
 * Every write fires its users.watch event.
 */
import { Pager } from '../graph/odata';
import { duplicate, gErr, invalid, notFound, type Res, type Route, type SimContext, type SimRequest } from './context';
import { newEtag, newUserId, view, type GoogleUser, type UserTable } from './state';

const USER_SCOPE = 'https://www.googleapis.com/auth/admin.directory.user';
export const READ_SCOPES = [USER_SCOPE, `${USER_SCOPE}.readonly`];
export const WRITE_SCOPES = [USER_SCOPE];

const WRITABLE = new Set(['primaryEmail', 'name', 'password', 'hashFunction', 'changePasswordAtNextLogin', 'suspended', 'externalIds', 'phones', 'organizations', 'orgUnitPath', 'includeInGlobalAddressList']);
const ARRAYS = new Set(['externalIds', 'phones', 'organizations']);
const EXTERNAL_ID_TYPES = new Set(['account', 'custom', 'customer', 'login_id', 'network', 'organization']);
const PHONE_TYPES = new Set(['assistant', 'callback', 'car', 'company_main', 'custom', 'grand_central', 'home', 'home_fax', 'isdn', 'main', 'mobile', 'other', 'other_fax', 'pager', 'radio', 'telex', 'tty_tdd', 'work', 'work_fax', 'work_mobile', 'work_pager']);
const EMAIL = /^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$/i;

/** `field:value`, `field='quoted \' value'`, clauses separated by spaces (implicit AND). */
export function parseQuery(q: string): Array<{ field: string; value: string }> | 'invalid' {
  const out: Array<{ field: string; value: string }> = [];
  const re = /\s*(\w+)\s*(?:=|:)\s*('(?:[^'\\]|\\.)*'|[^\s']+)\s*/y;
  let at = 0;
  while (at < q.length) {
    re.lastIndex = at;
    const m = re.exec(q);
    if (!m) return 'invalid';
    const raw = m[2]!;
    out.push({ field: m[1]!, value: raw.startsWith("'") ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw });
    at = re.lastIndex;
  }
  return out;
}

function validateArrays(b: Record<string, unknown>): Res | undefined {
  for (const key of ARRAYS) {
    const v = b[key];
    if (v === undefined || v === null) continue;
    if (!Array.isArray(v)) return invalid(`Invalid Input: ${key}`);
    for (const e of v as Array<Record<string, unknown>>) {
      if (!e || typeof e !== 'object') return invalid(`Invalid Input: ${key}`);
      if (key === 'externalIds' && (typeof e.value !== 'string' || !EXTERNAL_ID_TYPES.has(String(e.type)) || (e.type === 'custom' && !e.customType))) return invalid('Invalid Input: externalIds');
      if (key === 'phones' && (typeof e.value !== 'string' || !PHONE_TYPES.has(String(e.type)))) return invalid('Invalid Input: phones');
    }
  }
  return undefined;
}

function validateWrite(b: Record<string, unknown>, forInsert: boolean, domains: string[]): Res | undefined {
  for (const k of Object.keys(b)) if (!WRITABLE.has(k)) return invalid(`Invalid Input: field ${k} is not writable`);
  if ('primaryEmail' in b) {
    const e = b.primaryEmail;
    if (typeof e !== 'string' || !EMAIL.test(e)) return invalid('Invalid Input: primary_user_email');
    if (domains.length && !domains.includes(e.split('@')[1]!.toLowerCase())) return gErr(400, 'invalid', 'Invalid Input: Bad request for domain');
  }
  if ('name' in b) {
    const n = b.name as Record<string, unknown> | null;
    if (!n || typeof n !== 'object') return gErr(400, 'required', 'Invalid Input: name');
    for (const part of ['givenName', 'familyName'] as const) {
      const v = n[part];
      if ((forInsert || v !== undefined) && (typeof v !== 'string' || !v.trim() || [...v].length > 60)) return gErr(400, 'invalid', `Invalid Input: ${part}`);
    }
    if (n.displayName !== undefined && (typeof n.displayName !== 'string' || [...n.displayName].length > 256)) return invalid('Invalid Input: displayName');
  }
  if (forInsert) {
    if (typeof b.primaryEmail !== 'string') return gErr(400, 'required', 'Invalid Input: primary_user_email');
    if (!('name' in b)) return gErr(400, 'required', 'Invalid Input: name');
    const pwd = b.password;
    if (typeof pwd !== 'string' || pwd.length < 8 || pwd.length > 100 || !/^[\x20-\x7e]+$/.test(pwd)) return gErr(400, 'invalid', 'Invalid Password');
  }
  if ('orgUnitPath' in b && (typeof b.orgUnitPath !== 'string' || !b.orgUnitPath.startsWith('/'))) return gErr(400, 'invalid', 'Invalid Input: INVALID_OU_ID');
  return validateArrays(b);
}

/** Apply a write to a copy of `u`: keys present replace, `null` clears (an array only when `clearArrays`). */
function applyWrite(u: GoogleUser, b: Record<string, unknown>, clearArrays: boolean): GoogleUser {
  const next: GoogleUser = structuredClone(u);
  const rec = next as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(b)) {
    if (k === 'password' || k === 'hashFunction') next.passwordSet = true;
    else if (k === 'changePasswordAtNextLogin') continue;
    else if (k === 'name') {
      const n = { ...next.name, ...(v as Record<string, string>) };
      next.name = { ...n, fullName: `${n.givenName} ${n.familyName}` };
    } else if (ARRAYS.has(k)) {
      if (v === null) {
        if (clearArrays) delete rec[k];
      } else rec[k] = structuredClone(v);
    } else if (k === 'primaryEmail') next.primaryEmail = String(v).toLowerCase();
    else if (v === null) {
      if (k === 'suspended') next.suspended = false;
      else if (k === 'includeInGlobalAddressList') next.includeInGlobalAddressList = true;
      else if (k === 'orgUnitPath') next.orgUnitPath = '/';
    } else rec[k] = v;
  }
  next.etag = newEtag();
  return next;
}

export function usersRoute(ctx: SimContext, pager = new Pager()): Route {
  const { state, opts } = ctx;
  const expired = (u: GoogleUser) => Date.parse(u.deletionTime ?? '') + opts.undeleteDays * 86_400_000 <= ctx.now().getTime();
  const purge = () => {
    for (const u of [...state.deleted.values()]) if (expired(u)) state.deleted.delete(u.id);
  };
  const find = (key: string) => state.users.get(key) ?? (key.includes('@') ? state.users.byPrimaryEmail(key) : undefined);

  function list(req: SimRequest): Res {
    const { query } = req;
    const customer = query.get('customer');
    if (!query.get('domain') && !customer) return gErr(400, 'badRequest', 'Bad Request');
    if (customer && customer !== 'my_customer' && customer !== opts.customerId) return gErr(400, 'badRequest', 'Bad Request');
    const deleted = query.get('showDeleted') === 'true';
    if (deleted) purge();
    const table: UserTable = deleted ? state.deleted : state.users;
    let source: GoogleUser[] | undefined;
    const q = query.get('query');
    if (q) {
      const clauses = parseQuery(q);
      if (clauses === 'invalid') return invalid('Invalid Input: query');
      for (const c of clauses) {
        let hits: GoogleUser[];
        if (c.field === 'externalId') hits = table.withExternalId(c.value);
        else if (c.field === 'email') hits = [table.byPrimaryEmail(c.value)].filter((u): u is GoogleUser => !!u);
        else if (c.field === 'isSuspended') hits = [...table.values()].filter((u) => String(u.suspended) === c.value.toLowerCase());
        else return invalid('Invalid Input: query');
        source = source ? source.filter((u) => hits.includes(u)) : hits;
      }
    }
    const max = Math.min(opts.maxResults, Math.max(1, Number(query.get('maxResults') ?? 100) || 100));
    const token = query.get('pageToken');
    let cursor: { o: number; c?: string } | undefined;
    if (token) {
      try {
        cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
      } catch {
        return invalid('Invalid Input: pageToken');
      }
    }
    const page = pager.page<GoogleUser>(() => (source ?? table.values())[Symbol.iterator](), cursor, max);
    const fields = /users\(([^)]*)\)/.exec(query.get('fields') ?? '')?.[1]?.split(',').map((f) => f.trim()).filter(Boolean);
    const out: Record<string, unknown> = { kind: 'admin#directory#users', etag: newEtag(), users: page.items.map((u) => view(u, fields)) };
    if (fields) {
      delete out.kind;
      delete out.etag;
    }
    if (page.next) out.nextPageToken = Buffer.from(JSON.stringify(page.next)).toString('base64url');
    if (!page.items.length) delete out.users; // Google omits an empty list
    return { status: 200, body: out };
  }

  function insert(b: Record<string, unknown>): Res {
    const bad = validateWrite(b, true, opts.domains);
    if (bad) return bad;
    if (state.users.byPrimaryEmail(String(b.primaryEmail))) return duplicate();
    const blank: GoogleUser = {
      kind: 'admin#directory#user',
      id: newUserId(),
      etag: '',
      primaryEmail: '',
      name: { givenName: '', familyName: '', fullName: '' },
      suspended: false,
      archived: false,
      isAdmin: false,
      orgUnitPath: '/',
      includeInGlobalAddressList: true,
      creationTime: ctx.now().toISOString(),
      customerId: opts.customerId,
      passwordSet: false,
    };
    const u = applyWrite(blank, b, true);
    state.users.set(u);
    ctx.changed(u.id, 'add');
    return { status: 200, body: view(u) };
  }

  function write(key: string, b: Record<string, unknown>, put: boolean): Res {
    const u = find(key);
    if (!u) return notFound();
    const bad = validateWrite(b, false, opts.domains);
    if (bad) return { ...bad, before: view(u) };
    if (typeof b.primaryEmail === 'string') {
      const holder = state.users.byPrimaryEmail(b.primaryEmail);
      if (holder && holder.id !== u.id) return { ...duplicate(), before: view(u) };
    }
    const next = applyWrite(u, b, put);
    state.users.set(next);
    ctx.changed(next.id, 'update');
    return { status: 200, body: view(next), before: view(u) };
  }

  function remove(key: string): Res {
    const u = find(key);
    if (!u) return notFound();
    state.users.delete(u.id);
    state.deleted.set({ ...u, etag: newEtag(), deletionTime: ctx.now().toISOString() });
    ctx.changed(u.id, 'delete');
    return { status: 204 };
  }

  function undelete(id: string, b: Record<string, unknown>): Res {
    purge();
    const u = state.deleted.get(id);
    if (!u) return state.users.get(id) ? invalid('Invalid Input: user is not deleted') : notFound();
    if (state.users.byPrimaryEmail(u.primaryEmail)) return duplicate();
    const { deletionTime: _d, ...rest } = u;
    const back: GoogleUser = { ...rest, etag: newEtag(), orgUnitPath: typeof b.orgUnitPath === 'string' && b.orgUnitPath ? b.orgUnitPath : '/' };
    state.deleted.delete(id);
    state.users.set(back);
    ctx.changed(id, 'undelete');
    return { status: 204 };
  }

  return (req) => {
    const { method, seg, body: b } = req;
    // admin / directory / v1 / users [/ key [/ undelete]]
    if (seg[0] !== 'admin' || seg[1] !== 'directory' || seg[2] !== 'v1' || seg[3] !== 'users' || seg[4] === 'watch') return undefined;
    const key = seg[4];
    if (seg.length === 4 && method === 'GET') return list(req);
    if (seg.length === 4 && method === 'POST') return insert(b);
    if (seg.length === 5 && key) {
      if (method === 'GET') {
        const u = find(key);
        return u ? { status: 200, body: view(u) } : notFound();
      }
      if (method === 'PUT') return write(key, b, true);
      if (method === 'PATCH') return write(key, b, false);
      if (method === 'DELETE') return remove(key);
    }
    if (seg.length === 6 && key && seg[5] === 'undelete' && method === 'POST') return undelete(key, b);
    return undefined;
  };
}
