/**
 * Department paths ('技术部/研发组') ↔ Exmail department ids, over the native tree.
 *
 * Wire facts relied on: `department/list?id=1` answers the departments under the root
 * (`{id, name, parentid, order}`, the root itself not listed; we ignore it if it is);
 * `department/create {name, parentid}` → `{id}`; names are 1–64 bytes without \:*?"<>｜, unique
 * under one parent (a second create answers WeCom's 60008, assumed shared). A '/' cannot be
 * part of a name we write: it is our path separator.
 *
 * The tree is read once and kept for `ttlMs`; an unknown id or path reads it again before
 * anything is decided, so a department an administrator just made is found, and two workers
 * creating the same path converge (60008 → read again, use the one that exists).
 */
import { MailboxError } from '../directory';
import type { ExmailClient } from './client';
import { ROOT_DEPARTMENT } from './wire';

interface Dept {
  id: number;
  name: string;
  parentid: number;
}

interface Tree {
  at: number;
  byId: Map<number, Dept>;
  /** 'parentId/name' → id. */
  byParentName: Map<string, number>;
}

export class ExmailDepartments {
  private tree?: Tree;
  private loading?: Promise<Tree>;

  constructor(
    private readonly client: ExmailClient,
    private readonly ttlMs = 60_000,
  ) {}

  /** The path of department `id`; null for the root; undefined when Exmail does not know it. */
  async pathOf(id: number): Promise<string | null | undefined> {
    if (id === ROOT_DEPARTMENT) return null;
    let tree = await this.current();
    if (!tree.byId.has(id)) tree = await this.reload();
    return pathIn(tree, id);
  }

  /** The id of `path`, creating the missing segments. Idempotent. */
  async ensure(path: string): Promise<number> {
    const segments = path.split('/').map((s) => s.trim());
    if (segments.some((s) => !s || /[\\:*?"<>|｜]/.test(s) || Buffer.byteLength(s, 'utf8') > 64)) {
      throw new MailboxError('Exmail: a department name is empty, too long, or holds a character Exmail refuses', false, 'InvalidDepartment', undefined, 'invalid');
    }
    let tree = await this.current();
    if (find(tree, segments) === undefined) tree = await this.reload();
    let parent = ROOT_DEPARTMENT;
    for (const name of segments) {
      let id = tree.byParentName.get(`${parent}/${name}`);
      if (id === undefined) {
        const r = await this.client.call('department/create', { body: { name, parentid: parent }, pass: [60008] });
        if (typeof r.id === 'number' || typeof r.id === 'string') {
          id = Number(r.id);
          tree.byId.set(id, { id, name, parentid: parent });
          tree.byParentName.set(`${parent}/${name}`, id);
        } else {
          // 60008: created meanwhile by someone else (or an answer without an id): read again.
          tree = await this.reload();
          id = tree.byParentName.get(`${parent}/${name}`);
          if (id === undefined) throw new MailboxError('Exmail department/create: no id and not found afterwards', true, 'DepartmentMissing', undefined, 'unavailable');
        }
      }
      parent = id;
    }
    return parent;
  }

  private current(): Promise<Tree> {
    if (this.tree && this.client.now().getTime() - this.tree.at < this.ttlMs) return Promise.resolve(this.tree);
    return this.reload();
  }

  private reload(): Promise<Tree> {
    this.loading ??= this.client
      .call('department/list', { query: { id: String(ROOT_DEPARTMENT) } })
      .then((r) => {
        const byId = new Map<number, Dept>();
        const byParentName = new Map<string, number>();
        for (const d of (r.department ?? []) as Array<{ id: number | string; name: string; parentid: number | string }>) {
          const dept = { id: Number(d.id), name: String(d.name), parentid: Number(d.parentid) };
          if (dept.id === ROOT_DEPARTMENT) continue;
          byId.set(dept.id, dept);
          byParentName.set(`${dept.parentid}/${dept.name}`, dept.id);
        }
        this.tree = { at: this.client.now().getTime(), byId, byParentName };
        return this.tree;
      })
      .finally(() => (this.loading = undefined));
    return this.loading;
  }
}

function find(tree: Tree, segments: string[]): number | undefined {
  let parent = ROOT_DEPARTMENT;
  for (const name of segments) {
    const id = tree.byParentName.get(`${parent}/${name}`);
    if (id === undefined) return undefined;
    parent = id;
  }
  return parent;
}

function pathIn(tree: Tree, id: number): string | undefined {
  const names: string[] = [];
  for (let cur = tree.byId.get(id), hops = 0; cur; cur = tree.byId.get(cur.parentid), hops++) {
    if (hops > 64) return undefined; // a cycle: not a tree we can name
    names.unshift(cur.name);
    if (cur.parentid === ROOT_DEPARTMENT) return names.join('/');
  }
  return undefined;
}
