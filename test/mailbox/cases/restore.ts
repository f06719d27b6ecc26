/**
 * A rehire's account back from the recycle bin: soft-deleted, it still holds its address (a
 * create with it is a conflict), findDeleted finds it, restore brings the same id back live,
 * and a second restore (a retry after a lost answer) is a success.
 */
import { expect, it } from 'vitest';
import type { Subject } from '../conformance';
import { zhangsan } from './people';

export function restoreCases(t: Subject): void {
  it.skipIf(!t.caps.restore)('soft delete holds the address; findDeleted + restore bring the same account back', async () => {
    const a = await t.dir.create(zhangsan);
    await t.dir.delete(a.id);
    await expect(t.dir.create(zhangsan)).rejects.toMatchObject({ kind: 'conflict', retryable: false });
    expect(await t.dir.findDeleted!('zhangsan')).toMatchObject({ id: a.id, employeeId: 'zhangsan', deleted: true, enabled: false });
    expect(await t.dir.findDeleted!('nobody')).toBeUndefined();
    const back = await t.dir.restore!(a.id);
    expect(back).toMatchObject({ id: a.id, employeeId: 'zhangsan', email: 'zhangsan@example.com', mobile: '+8613800138000' });
    expect(back.deleted).toBeFalsy();
    expect(await t.dir.findByEmployeeId('zhangsan')).toMatchObject({ id: a.id });
    expect(await t.dir.findDeleted!('zhangsan')).toBeUndefined();
    expect(await t.dir.restore!(a.id)).toMatchObject({ id: a.id }); // already restored: done
  });

  it.skipIf(!t.caps.restore)('restore of an id never deleted: not-found; while a live account holds the address: conflict', async () => {
    await expect(t.dir.restore!('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({ kind: 'not-found', retryable: false });
    const a = await t.dir.create(zhangsan);
    await t.dir.delete(a.id);
    // Another account now holds the address: restoring must not take it from them.
    await t.probe.adminCreate('zhangsan@example.com');
    await expect(t.dir.restore!(a.id)).rejects.toMatchObject({ kind: 'conflict', retryable: false });
    expect(await t.dir.findDeleted!('zhangsan')).toMatchObject({ id: a.id });
  });
}
