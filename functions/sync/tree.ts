/** The one question the party sync asks of the department tree, kept apart so the tree's API can evolve. */
import type { DepartmentTree } from './departments';

export function departmentPath(tree: DepartmentTree, id: number): string | undefined {
  return Number.isFinite(id) ? tree.pathOf(id) : undefined;
}
