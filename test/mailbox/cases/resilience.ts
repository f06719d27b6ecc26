/**
 * Under a storm of 429/503 (30 % of calls refused before anything is applied) every operation
 * is eventually applied exactly once — the adapter retries, and what it gives up on is
 * retryable so the queue runs it again; no duplicate account, no lost update. And an error
 * never carries the values we sent: systems echo them, logs and the DLQ must not.
 */
import { expect, it } from 'vitest';
import { MailboxError } from '../../../functions/mailbox/directory';
import type { Subject } from '../conformance';
import { eventually, numbered, zhangsan } from './people';

const PEOPLE = 12;

export function resilienceCases(t: Subject): void {
  it('a 30 % storm of 429/503: every create, update and disable lands exactly once', async () => {
    if (!t.probe.storm) return;
    t.probe.storm(0.3);
    const ids: string[] = [];
    // One person's operations in order, as the FIFO queue runs them; a create is retried only
    // after the link proves it did not land (the engine re-reads before it writes).
    for (let i = 0; i < PEOPLE; i++) {
      const p = numbered(i);
      const id = await eventually(async () => (await t.dir.findByEmployeeId(p.employeeId))?.id ?? (await t.dir.create(p)).id);
      ids.push(id);
      await eventually(() => t.dir.update(id, { jobTitle: `终版${i}` }));
      if (i % 3 === 0) await eventually(() => t.dir.disable(id));
    }
    t.probe.storm(0);
    const stored = await t.probe.stored();
    expect(stored).toHaveLength(PEOPLE);
    for (let i = 0; i < PEOPLE; i++) {
      const mine = stored.filter((s) => s.employeeId === `p${i}`);
      expect(mine, `p${i}`).toHaveLength(1);
      expect(mine[0]).toMatchObject({ id: ids[i], jobTitle: `终版${i}`, enabled: i % 3 !== 0 });
    }
  });

  it('a refused call is retryable and says it was throttled or unavailable', async () => {
    if (!t.probe.storm) return;
    t.probe.storm(1);
    const err = await t.dir.findByEmployeeId('zhangsan').catch((e: unknown) => e);
    t.probe.storm(0);
    expect(err).toBeInstanceOf(MailboxError);
    expect(err).toMatchObject({ retryable: true, kind: expect.stringMatching(/^(throttled|unavailable)$/) });
  });

  it('errors name no value we sent: conflict, ambiguity, not-found, refused input', async () => {
    const a = await t.dir.create(zhangsan);
    const errors: unknown[] = [];
    errors.push(await t.dir.create({ ...zhangsan, employeeId: 'lisi' }).catch((e: unknown) => e)); // address taken
    await t.dir.create({ ...zhangsan, email: 'zhangsan.b@example.com', mobile: '+8613911112222' });
    errors.push(await t.dir.findByEmployeeId('zhangsan').catch((e: unknown) => e)); // ambiguous
    await t.dir.delete(a.id);
    errors.push(await t.dir.update(a.id, { displayName: '张三丰', mobile: '+8613800138000', email: 'zhangsan@example.com' }).catch((e: unknown) => e));
    errors.push(await t.dir.update(a.id, { displayName: null }).catch((e: unknown) => e)); // a name cannot be cleared anywhere
    for (const err of errors) {
      expect(err).toBeInstanceOf(MailboxError);
      const text = `${(err as Error).message} ${JSON.stringify(err)}`;
      expect(text).not.toMatch(/zhangsan|张三|13800138000|13911112222|1088886666|example\.com/i);
    }
  });
}
