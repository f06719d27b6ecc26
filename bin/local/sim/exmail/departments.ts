/**
 * `department/create | update | delete | list | search`: the native tree under the root (id
 * 1). Names 1–64 bytes without \:*?"<>｜ (60009), unique under one parent (60008); a parent
 * must exist (60004); the root, a department with members (60005) or with sub-departments
 * (60006) cannot be deleted. `list?id=` answers the departments under `id` (not `id` itself),
 * ordered by `order`; `search` answers each match with its '/'-separated path. Changes are
 * logged (28 新增部门, 29 删除部门, 30 编辑部门, 31 移动部门).
 */
import { answer, bytes, type Route, type SimContext } from './context';
import { ROOT, subtree, type ExmailSimDepartment } from './state';

const BAD_NAME = /[\\:*?"<>|｜]/;

export function departmentsRoute(ctx: SimContext): Route {
  const { state } = ctx;
  const nameError = (name: unknown, parentid: number, self?: number): number => {
    if (typeof name !== 'string' || bytes(name) < 1 || bytes(name) > 64 || BAD_NAME.test(name)) return 60009;
    for (const d of state.departments.values()) if (d.parentid === parentid && d.name === name && d.id !== self) return 60008;
    return 0;
  };
  const pathOf = (d: ExmailSimDepartment): string => {
    const names: string[] = [];
    for (let cur: ExmailSimDepartment | undefined = d; cur && cur.id !== ROOT; cur = state.departments.get(cur.parentid)) names.unshift(cur.name);
    return names.join('/');
  };

  return (req) => {
    const { api, body: b, query } = req;
    switch (api) {
      case 'department/create': {
        const parentid = Number(b.parentid);
        if (!state.departments.has(parentid)) return answer(60004);
        const bad = nameError(b.name, parentid);
        if (bad) return answer(bad);
        const id = state.nextDepartmentId();
        state.departments.set(id, { id, name: String(b.name), parentid, order: Number(b.order ?? 0) || 0 });
        ctx.record({ type: 28, operand: String(b.name) });
        return answer(0, { id });
      }
      case 'department/update': {
        const d = state.departments.get(Number(b.id));
        if (!d || d.id === ROOT) return answer(60003);
        const parentid = b.parentid === undefined ? d.parentid : Number(b.parentid);
        if (!state.departments.has(parentid) || subtree(state.departments, d.id).has(parentid)) return answer(60004);
        const bad = nameError(b.name ?? d.name, parentid, d.id);
        if (bad) return answer(bad);
        const moved = parentid !== d.parentid;
        state.departments.set(d.id, { ...d, name: String(b.name ?? d.name), parentid, order: b.order === undefined ? d.order : Number(b.order) });
        ctx.record({ type: moved ? 31 : 30, operand: String(b.name ?? d.name) });
        return answer(0);
      }
      case 'department/delete': {
        const id = Number(query.get('id'));
        if (id === ROOT) return answer(60007);
        const d = state.departments.get(id);
        if (!d) return answer(60003);
        for (const x of state.departments.values()) if (x.parentid === id) return answer(60006);
        for (const u of state.users.values()) if (u.department.includes(id)) return answer(60005);
        state.departments.delete(id);
        ctx.record({ type: 29, operand: d.name });
        return answer(0);
      }
      case 'department/list': {
        const id = Number(query.get('id') ?? ROOT);
        if (!state.departments.has(id)) return answer(60003);
        const under = subtree(state.departments, id);
        under.delete(id);
        const department = [...under]
          .map((x) => state.departments.get(x)!)
          .sort((a, c) => a.order - c.order || a.id - c.id)
          .map((d) => ({ id: d.id, name: d.name, parentid: d.parentid, order: d.order }));
        return answer(0, { department });
      }
      case 'department/search': {
        const name = typeof b.name === 'string' ? b.name : '';
        const fuzzy = Number(b.fuzzy ?? 0) === 1;
        const department = [...state.departments.values()]
          .filter((d) => d.id !== ROOT && (fuzzy ? d.name.includes(name) : d.name === name))
          .map((d) => ({ id: d.id, name: d.name, parentid: d.parentid, order: d.order, path: pathOf(d) }));
        return answer(0, { department });
      }
      default:
        return undefined;
    }
  };
}
