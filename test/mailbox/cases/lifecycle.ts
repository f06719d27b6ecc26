/**
 * disable / enable / delete are idempotent (a redelivered message converges); a write to an
 * account that is not there is `not-found`, not retryable; delete of one already gone is done.
 */
import { expect, it } from 'vitest';
import type { Subject } from '../conformance';
import { zhangsan } from './people';

export function lifecycleCases(t: Subject): void {
  it('disable and enable, each twice: the state follows, the second call is a success', async () => {
    const a = await t.dir.create(zhangsan);
    await t.dir.disable(a.id);
    await t.dir.disable(a.id);
    expect((await t.dir.get(a.id))?.enabled).toBe(false);
    expect((await t.dir.findByEmployeeId('zhangsan'))?.enabled).toBe(false);
    await t.dir.enable(a.id);
    await t.dir.enable(a.id);
    expect((await t.dir.get(a.id))?.enabled).toBe(true);
  });

  it('delete: the account leaves the live directory; deleting again, or an id never seen, is a success', async () => {
    const a = await t.dir.create(zhangsan);
    await t.dir.delete(a.id);
    expect(await t.dir.findByEmployeeId('zhangsan')).toBeUndefined();
    const after = await t.dir.get(a.id);
    // A system with a recycle bin still shows it (deleted, and so not enabled); others forget it.
    if (after) expect(after).toMatchObject({ id: a.id, deleted: true, enabled: false });
    await t.dir.delete(a.id);
    await t.dir.delete('00000000-0000-0000-0000-000000000000');
    expect((await t.probe.stored()).map((s) => s.id)).not.toContain(a.id);
  });

  it('update, disable and enable of an account that is not live: not-found, not retryable', async () => {
    const a = await t.dir.create(zhangsan);
    await t.dir.delete(a.id);
    for (const op of [() => t.dir.update(a.id, { jobTitle: 'x' }), () => t.dir.disable(a.id), () => t.dir.enable('00000000-0000-0000-0000-000000000000')]) {
      await expect(op()).rejects.toMatchObject({ kind: 'not-found', retryable: false });
    }
  });
}
