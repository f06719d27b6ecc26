/**
 * `user/create | update | delete | get | simplelist | list | batchcheck` with Exmail's
 * validation as documented (userid an address on the tenant's domain, name 1–64 bytes,
 * department ≤ 20 existing ids, slaves ≤ 5, password required on create) and a few assumed
 * rules, stricter than needed on purpose so the adapter cannot rely on leniency: unknown keys
 * are refused (40058), `enable` is not a create field, a password must be 8–32 characters of
 * at least three classes. Every change is logged (19 新增用户, 20 删除用户, 21/22 启用/禁用用户,
 * 23 编辑用户, 24 编辑别名).
 *
 * user/list answers every member under the department in one answer — the API has no paging —
 * with `enable` as the string "1"/"0" as the published example shows; user/get gives a number.
 */
import { answer, bytes, type Answer, type Route, type SimContext } from './context';
import { newUser, subtree, type ExmailSimUser } from './state';

const CREATE_KEYS = new Set(['userid', 'name', 'department', 'position', 'mobile', 'tel', 'extid', 'gender', 'slaves', 'password', 'cpwd_login']);
const UPDATE_KEYS = new Set([...CREATE_KEYS, 'enable']);
const ADDRESS = /^[a-z0-9._%+-]+@([a-z0-9-]+(\.[a-z0-9-]+)+)$/i;

export function publicUser(u: ExmailSimUser, enableAsString = false): Record<string, unknown> {
  return {
    userid: u.userid,
    name: u.name,
    department: [...u.department],
    position: u.position,
    mobile: u.mobile,
    tel: u.tel,
    extid: u.extid,
    gender: String(u.gender),
    enable: enableAsString ? String(u.enable) : u.enable,
    slaves: [...u.slaves],
    cpwd_login: u.cpwd_login,
  };
}

export function usersRoute(ctx: SimContext): Route {
  const { state, opts } = ctx;

  /** The errcode of a bad field, or 0. */
  function validate(b: Record<string, unknown>, create: boolean, self?: string): number {
    for (const k of Object.keys(b)) if (!(create ? CREATE_KEYS : UPDATE_KEYS).has(k)) return 40058;
    if (create || 'name' in b) {
      if (typeof b.name !== 'string' || bytes(b.name) < 1 || bytes(b.name) > 64) return 60112;
    }
    if (create || 'department' in b) {
      const d = b.department;
      if (!Array.isArray(d) || d.length < 1 || d.length > 20) return 40058;
      if (d.some((id) => !state.departments.has(Number(id)))) return 60003;
    }
    if ('position' in b && (typeof b.position !== 'string' || bytes(b.position) > 64)) return 40058;
    if ('mobile' in b && (typeof b.mobile !== 'string' || (b.mobile !== '' && !/^\+?\d[\d -]{4,30}$/.test(b.mobile)))) return 60103;
    if ('tel' in b && (typeof b.tel !== 'string' || (b.tel !== '' && !/^\+?[\d][\d -]{2,30}$/.test(b.tel)))) return 40058;
    if ('extid' in b && !((typeof b.extid === 'string' && b.extid.length <= 64) || typeof b.extid === 'number')) return 40058;
    if ('gender' in b && ![0, 1, 2, '0', '1', '2'].includes(b.gender as number)) return 40058;
    if ('enable' in b && ![0, 1].includes(b.enable as number)) return 40058;
    if ('cpwd_login' in b && ![0, 1].includes(b.cpwd_login as number)) return 40058;
    if ('slaves' in b) {
      const s = b.slaves;
      if (!Array.isArray(s) || s.length > 5 || s.some((a) => typeof a !== 'string' || !ADDRESS.test(a))) return 40058;
      if (s.some((a) => state.addressTaken(String(a), self))) return 60102;
    }
    if (create || 'password' in b) {
      const p = b.password;
      if (typeof p !== 'string' || p.length < 8 || p.length > 32) return 40058;
      if ([/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((re) => re.test(p)).length < 3) return 40058;
    }
    return 0;
  }

  function apply(u: ExmailSimUser, b: Record<string, unknown>): void {
    if ('name' in b) u.name = String(b.name);
    if ('department' in b) u.department = (b.department as unknown[]).map(Number);
    if ('position' in b) u.position = String(b.position);
    if ('mobile' in b) u.mobile = String(b.mobile);
    if ('tel' in b) u.tel = String(b.tel);
    if ('extid' in b) u.extid = String(b.extid);
    if ('gender' in b) u.gender = Number(b.gender);
    if ('enable' in b) u.enable = Number(b.enable) === 0 ? 0 : 1;
    if ('slaves' in b) u.slaves = (b.slaves as string[]).map((s) => s.toLowerCase());
    if ('cpwd_login' in b) u.cpwd_login = Number(b.cpwd_login) === 1 ? 1 : 0;
  }

  const listed = (departmentId: string | null, fetchChild: string | null, detail: boolean): Answer => {
    const id = Number(departmentId);
    if (!state.departments.has(id)) return answer(60003);
    const scope = fetchChild === '1' ? subtree(state.departments, id) : new Set([id]);
    const userlist: Array<Record<string, unknown>> = [];
    for (const u of state.users.values()) {
      if (!u.department.some((d) => scope.has(d))) continue;
      userlist.push(detail ? publicUser(u, true) : { userid: u.userid, name: u.name, department: [...u.department] });
    }
    return answer(0, { userlist });
  };

  return (req) => {
    const { api, body: b, query } = req;
    switch (api) {
      case 'user/create': {
        const bad = validate(b, true);
        if (bad) return answer(bad);
        const userid = typeof b.userid === 'string' ? b.userid.trim().toLowerCase() : '';
        const m = ADDRESS.exec(userid);
        if (!m || !opts.domains.includes(m[1]!)) return answer(40003);
        if (state.addressTaken(userid)) return answer(60102);
        const u = newUser({ userid, name: String(b.name) });
        apply(u, b);
        state.putUser(u);
        ctx.record({ type: 19, operand: userid });
        return answer(0);
      }
      case 'user/update': {
        const userid = typeof b.userid === 'string' ? b.userid.trim().toLowerCase() : '';
        const u = state.users.get(userid);
        if (!u) return answer(60111);
        const bad = validate(b, false, userid);
        if (bad) return answer(bad);
        const wasEnabled = u.enable;
        apply(u, b);
        state.putUser(u); // stored again: journals the in-place change
        const edited = Object.keys(b).some((k) => k !== 'userid' && k !== 'enable' && k !== 'slaves');
        if (edited) ctx.record({ type: 23, operand: userid });
        if ('slaves' in b) ctx.record({ type: 24, operand: userid });
        if ('enable' in b && u.enable !== wasEnabled) ctx.record({ type: u.enable ? 21 : 22, operand: userid });
        return answer(0);
      }
      case 'user/delete': {
        const userid = (query.get('userid') ?? '').trim().toLowerCase();
        if (!state.users.has(userid)) return answer(60111);
        state.removeUser(userid);
        ctx.record({ type: 20, operand: userid });
        return answer(0);
      }
      case 'user/get': {
        const u = state.users.get((query.get('userid') ?? '').trim().toLowerCase());
        return u ? answer(0, publicUser(u)) : answer(60111);
      }
      case 'user/simplelist':
        return listed(query.get('department_id'), query.get('fetch_child'), false);
      case 'user/list':
        return listed(query.get('department_id'), query.get('fetch_child'), true);
      case 'user/batchcheck': {
        const list = b.userlist;
        if (!Array.isArray(list) || list.length > 20) return answer(40058);
        return answer(0, {
          list: list.map((a) => {
            const user = String(a).toLowerCase();
            const m = ADDRESS.exec(user);
            const type = !m || !opts.domains.includes(m[1]!) ? -1 : state.users.has(user) ? 1 : state.addressTaken(user) ? 2 : 0;
            return { user, type };
          }),
        });
      }
      default:
        return undefined;
    }
  };
}
