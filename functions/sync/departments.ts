/**
 * WeCom's department list as a tree of full paths ('技术部/研发组'). Paths are how the two
 * directories meet (the mailbox keeps a department attribute and one group per path), so
 * they are matched exactly: no case folding, no fuzzy matching, and two departments with
 * the same path are reported, never merged.
 *
 * The root (parentid 0, the company itself) is not part of any path: its path is '' and a
 * member directly under it has no department in the mailbox.
 */
import type { WecomDepartment } from '../wecom/contacts';

export interface DuplicatePath {
  path: string;
  ids: number[];
}

/** Normalize a department name for a path: trimmed, inner whitespace runs collapsed. */
export function departmentName(name: string): string {
  return name.trim().replace(/\s+/g, ' ');
}

/** Is `path` equal to `prefix` or below it (segment-wise, so '技术部2' is not under '技术部')? */
export function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

export class DepartmentTree {
  private readonly byId = new Map<number, WecomDepartment>();
  private readonly paths = new Map<number, string | undefined>();
  private readonly byPath = new Map<string, number[]>();

  constructor(list: readonly WecomDepartment[]) {
    for (const d of list) this.byId.set(d.id, d);
    for (const d of list) {
      const path = this.resolve(d.id);
      if (path === undefined || path === '') continue;
      const ids = this.byPath.get(path);
      if (ids) ids.push(d.id);
      else this.byPath.set(path, [d.id]);
    }
  }

  get size(): number {
    return this.byId.size;
  }

  /** The full path of a department; '' for the root; undefined when it (or an ancestor) is unknown or the parents loop. */
  pathOf(id: number): string | undefined {
    return this.paths.has(id) ? this.paths.get(id) : this.resolve(id);
  }

  /** The department with this exact path; undefined when none or when the path is ambiguous (see duplicates()). */
  idOfPath(path: string): number | undefined {
    const ids = this.byPath.get(path);
    return ids && ids.length === 1 ? ids[0] : undefined;
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  /** Paths shared by more than one department (e.g. two '研发组' under the same parent). */
  duplicates(): DuplicatePath[] {
    const out: DuplicatePath[] = [];
    for (const [path, ids] of this.byPath) if (ids.length > 1) out.push({ path, ids: [...ids].sort((a, b) => a - b) });
    return out;
  }

  /** Is `path` the path of some department (unique or not)? */
  hasPath(path: string): boolean {
    return this.byPath.has(path);
  }

  /** Every known path (non-root, resolvable). */
  allPaths(): string[] {
    return [...this.byPath.keys()];
  }

  private resolve(id: number): string | undefined {
    const names: string[] = [];
    const seen = new Set<number>();
    let current = this.byId.get(id);
    let result: string | undefined;
    for (;;) {
      if (!current || seen.has(current.id)) {
        result = undefined; // unknown parent or a cycle: no path rather than a wrong one
        break;
      }
      seen.add(current.id);
      if (current.parentid === 0) {
        result = names.reverse().join('/');
        break;
      }
      names.push(departmentName(current.name));
      current = this.byId.get(current.parentid);
    }
    this.paths.set(id, result);
    return result;
  }
}

/**
 * The tree, loaded on demand and kept for `maxAgeMs`. Party events and reconcile call
 * `invalidate()`; a rename arrives as no event at all, so a run that meets a department path
 * its copy disagrees with calls `fresh()` (see sync/profile.ts), and the age bound covers the
 * rest. Concurrent callers share one load; a failed load is not cached.
 */
export class CachedDepartmentTree {
  private cached?: { at: number; tree: Promise<DepartmentTree> };

  constructor(
    private readonly load: () => Promise<WecomDepartment[]>,
    private readonly opts: { maxAgeMs: number; now?: () => number },
  ) {}

  get(): Promise<DepartmentTree> {
    const now = (this.opts.now ?? Date.now)();
    if (!this.cached || now - this.cached.at > this.opts.maxAgeMs) {
      const entry = { at: now, tree: this.load().then((list) => new DepartmentTree(list)) };
      entry.tree.catch(() => {
        if (this.cached === entry) this.cached = undefined;
      });
      this.cached = entry;
    }
    return this.cached.tree;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  /**
   * The tree, reloaded unless it was loaded within `minAgeMs`: for a caller that has seen a
   * sign its copy is stale (a path the target holds that the tree does not know), without
   * letting a path that never maps reload the tree on every run.
   */
  fresh(minAgeMs: number): Promise<DepartmentTree> {
    const now = (this.opts.now ?? Date.now)();
    if (this.cached && now - this.cached.at < minAgeMs) return this.cached.tree;
    this.invalidate();
    return this.get();
  }
}
