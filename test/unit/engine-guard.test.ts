/**
 * The deletion guard on the event path: a burst of destructive events trips a sliding-window
 * budget; past it actions are held (stored, audited, counted), non-destructive work flows,
 * and an operator's approval applies exactly the held actions — in both directions.
 */
import { describe, expect, it } from 'vitest';
import { decideHeld, listHeld } from '../../functions/sync/approvals';
import { syncSubject } from '../../functions/sync/engine';
import { harness, type Harness } from '../support/engine-harness';

async function company(n: number, config: Record<string, unknown> = {}) {
  const h = harness(config);
  for (let i = 0; i < n; i++) {
    const userid = `m${String(i).padStart(2, '0')}`;
    h.addUser({ userid });
    await h.sync(userid, 'create_user');
  }
  return h;
}

const enabledAccounts = (h: Harness) => [...h.mailbox.accounts.values()].filter((a) => a.enabled && !a.deleted).length;
const heldSubjects = (h: Harness) => [...h.state.records.values()].filter((r) => r.held?.status === 'held').map((r) => r.subject).sort();

describe('event-path deletion guard', () => {
  it('30 of 40 members deleted in WeCom: 2 mailboxes disabled (5 % of 40), 28 held, audited, counted', async () => {
    const h = await company(40);
    const gone = [...h.wecom.users.keys()].slice(0, 30);
    for (const u of gone) h.wecom.users.delete(u);
    for (const u of gone) await h.sync(u, 'delete_user');
    expect(enabledAccounts(h)).toBe(38);
    expect(heldSubjects(h)).toHaveLength(28);
    expect(h.counts.held).toBe(28);
    const held = h.audit.records.filter((r) => r.action === 'held');
    expect(held).toHaveLength(28);
    expect(held[0]).toMatchObject({ target: 'mailbox', outcome: 'refused' });
    expect(held[0]!.reason).toMatch(/deletion guard: 2 people .* within 10 min \(limit 2\); held: disable the mailbox account/);
    const s = h.state.records.get(heldSubjects(h)[0]!)!;
    expect(s.held).toMatchObject({ action: 'disable-mailbox', status: 'held', target: 'mailbox' });
    expect(s.held!.eventIds).toHaveLength(1);
  });

  it('non-destructive updates keep flowing while actions are held', async () => {
    const h = await company(40);
    for (const u of ['m00', 'm01', 'm02', 'm03']) {
      h.wecom.users.delete(u);
      await h.sync(u, 'delete_user');
    }
    expect(heldSubjects(h)).toEqual(['user:m02', 'user:m03']);
    h.wecomAdmin('m20', { position: 'Director' });
    await h.sync('m20', 'update_user');
    expect(h.account('m20')[0]!.jobTitle).toBe('Director');
  });

  it("a held person's next event is held too (no write), until decided", async () => {
    const h = await company(40);
    for (const u of ['m00', 'm01', 'm02']) {
      h.wecom.users.delete(u);
      await h.sync(u, 'delete_user');
    }
    expect(heldSubjects(h)).toEqual(['user:m02']);
    const writes = h.mailbox.writes.length;
    await h.sync('m02', 'delete_user');
    expect(h.mailbox.writes.length).toBe(writes);
    expect(h.state.records.get('user:m02')!.held!.eventIds).toHaveLength(2);
    expect(h.audit.records.at(-1)).toMatchObject({ subject: 'user:m02', action: 'held' });
    expect(h.audit.records.at(-1)!.reason).toMatch(/still held/);
  });

  it('approve --all applies exactly the held actions, each decision audited with who decided', async () => {
    const h = await company(40);
    const gone = [...h.wecom.users.keys()].slice(0, 30);
    for (const u of gone) h.wecom.users.delete(u);
    for (const u of gone) await h.sync(u, 'delete_user');
    const before = new Set([...h.mailbox.accounts.values()].filter((a) => a.enabled).map((a) => a.employeeId));
    expect(await listHeld(h.deps)).toHaveLength(28);

    const results = await decideHeld(h.deps, 'approve', 'cli:alice', 'all');
    expect(results.map((r) => r.outcome)).toEqual(Array(28).fill('approved'));
    expect(h.enqueued.map((m) => m.subject).sort()).toEqual(results.map((r) => r.subject).sort());
    expect(h.enqueued.every((m) => m.hint === 'approved' && m.source === 'cli' && m.operator === 'cli:alice')).toBe(true);
    const approvals = h.audit.records.filter((r) => r.action === 'approve');
    expect(approvals).toHaveLength(28);
    expect(approvals.every((r) => r.operator === 'cli:alice')).toBe(true);

    // The worker runs the enqueued messages (source cli, hint approved).
    for (const m of h.enqueued) await syncSubject(m, h.deps);
    const after = new Set([...h.mailbox.accounts.values()].filter((a) => a.enabled).map((a) => a.employeeId));
    const disabledNow = [...before].filter((u) => !after.has(u)).sort();
    expect(disabledNow).toEqual(results.map((r) => r.subject.slice(5)).sort());
    expect(after.size).toBe(10); // the 10 members still in WeCom keep their mailboxes
    expect(await listHeld(h.deps)).toEqual([]);
    // Nothing left held, nothing decided twice.
    expect(await decideHeld(h.deps, 'approve', 'cli:alice', ['user:m05'])).toEqual([{ subject: 'user:m05', outcome: 'not-held' }]);
  });

  it('an approval re-reads both sides: a member restored meanwhile is not disabled', async () => {
    const h = await company(40);
    for (const u of ['m00', 'm01', 'm02']) {
      h.wecom.users.delete(u);
      await h.sync(u, 'delete_user');
    }
    h.addUser({ userid: 'm02' }); // the WeCom admin undid the mistake
    await decideHeld(h.deps, 'approve', 'cli:bob', ['user:m02']);
    for (const m of h.enqueued) await syncSubject(m, h.deps);
    expect(h.account('m02')[0]!.enabled).toBe(true);
    expect(h.state.records.get('user:m02')!.held).toBeUndefined();
  });

  it('reject: destructive decisions stay off for that person (audited skips) until the situation changes', async () => {
    const h = await company(40);
    for (const u of ['m00', 'm01', 'm02']) {
      h.wecom.users.delete(u);
      await h.sync(u, 'delete_user');
    }
    await decideHeld(h.deps, 'reject', 'cli:carol', ['user:m02']);
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'reject', operator: 'cli:carol', subject: 'user:m02' });
    expect(h.enqueued).toEqual([]);
    h.advance(1); // the window is long past: only the rejection stops it now
    await h.sync('m02', 'delete_user');
    expect(h.account('m02')[0]!.enabled).toBe(true);
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'skip', outcome: 'refused' });
    expect(h.audit.records.at(-1)!.reason).toMatch(/rejected by cli:carol/);
    // The member comes back in WeCom: not destructive any more, the rejection clears.
    h.addUser({ userid: 'm02' });
    await h.sync('m02', 'create_user');
    expect(h.state.records.get('user:m02')!.held).toBeUndefined();
  });

  it('mailbox side: a mass mailbox disable does not disable hundreds of WeCom members', async () => {
    const h = await company(40);
    const accounts = [...h.mailbox.accounts.values()].slice(0, 25);
    for (const a of accounts) h.mailbox.admin(a.id, { enabled: false });
    for (const a of accounts) await syncSubject(h.message(`mailbox:graph:${a.id}`, 'graph.updated', { source: 'mailbox', operator: 'graph-notification' }), h.deps);
    const disabledMembers = [...h.wecom.users.values()].filter((u) => u.enable === 0);
    expect(disabledMembers).toHaveLength(2);
    expect(heldSubjects(h)).toHaveLength(23);
    expect(h.state.records.get(heldSubjects(h)[0]!)!.held).toMatchObject({ action: 'offboard-member', target: 'wecom' });
  });

  it('the window slides: after windowMinutes, destructive actions are admitted again', async () => {
    const h = await company(40, { deletionGuard: { windowMinutes: 10 } });
    for (const u of ['m00', 'm01', 'm02']) {
      h.wecom.users.delete(u);
      await h.sync(u, 'delete_user');
    }
    expect(heldSubjects(h)).toEqual(['user:m02']);
    h.advance(11 / (24 * 60));
    h.wecom.users.delete('m03');
    await h.sync('m03', 'delete_user');
    expect(h.account('m03')[0]!.enabled).toBe(false);
  });

  it('limits: maxPeople caps a large company, never below one person; disabled → no guard', async () => {
    const big = await company(40, { deletionGuard: { maxPeople: 1, maxPercent: 100 } });
    for (const u of ['m00', 'm01']) {
      big.wecom.users.delete(u);
      await big.sync(u, 'delete_user');
    }
    expect(heldSubjects(big)).toEqual(['user:m01']);
    const tiny = await company(3);
    tiny.wecom.users.delete('m00');
    await tiny.sync('m00', 'delete_user');
    expect(tiny.account('m00')[0]!.enabled).toBe(false); // 5 % of 3 rounds to 0: one person is still allowed
    const off = await company(10, { deletionGuard: { enabled: false } });
    for (const u of [...off.wecom.users.keys()]) {
      off.wecom.users.delete(u);
      await off.sync(u, 'delete_user');
    }
    expect(enabledAccounts(off)).toBe(0);
  });

  it('reconcile and operator runs are not counted by the window, but respect a held person', async () => {
    const h = await company(40);
    for (const u of ['m00', 'm01', 'm02', 'm03']) h.wecom.users.delete(u);
    for (const u of ['m00', 'm01', 'm02']) await h.sync(u, 'delete_user');
    await syncSubject(h.message('user:m03', 'reconcile', { source: 'reconcile', operator: 'reconcile' }), h.deps);
    expect(h.account('m03')[0]!.enabled).toBe(false); // its own guard decides for reconcile
    await syncSubject(h.message('user:m02', 'reconcile', { source: 'reconcile', operator: 'reconcile' }), h.deps);
    expect(h.account('m02')[0]!.enabled).toBe(true); // held: waits for the operator
  });
});
