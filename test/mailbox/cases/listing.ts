/** Paged listing: every live account exactly once across the pages, managed or not, deleted ones left out. */
import { expect, it } from 'vitest';
import type { Subject } from '../conformance';
import { numbered } from './people';

export function listingCases(t: Subject): void {
  it('listPage follows its cursor over several pages; each live account once', async () => {
    const n = t.caps.pageSize * 2 + 2; // one is deleted below: 2 pages and one more account
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await t.dir.create(numbered(i))).id);
    await t.dir.delete(ids[0]!);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await t.dir.listPage(cursor);
      expect(page.accounts.length).toBeLessThanOrEqual(t.caps.pageSize);
      seen.push(...page.accounts.map((a) => a.id));
      cursor = page.next;
      pages++;
    } while (cursor && pages < 100);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(seen.sort()).toEqual(ids.slice(1).sort());
  });
}
