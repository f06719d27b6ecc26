/**
 * Reconcile-all end to end on loopback: WeCom and Graph simulators over HTTP, dynalite,
 * the local key file cipher, the real engine. Each class of drift is planted by changing a
 * simulator's data directly (an admin edit that sent no event), then: the report finds each
 * class; a dry-run repair writes nothing; a repair applies through the engine, the deletion
 * guard holds the destructive part until confirmed; a second run finds no repairable drift;
 * report files hold no mobile or address in clear; unmanaged accounts are never touched.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskPhone } from '../../functions/core/redact';
import { RECONCILE_SUBJECT, reconcileAll } from '../../functions/sync/reconcile';
import type { ReconcileReport } from '../../functions/sync/report';
import { startSyncEnv, type SyncEnv } from '../support/reconcile-env';

let env: SyncEnv;

const MOBILES: Record<string, string> = {
  alice: '+8613800138001',
  bob: '+8613800138002',
  carol: '+8613800138003',
  dave: '+8613800138004',
  erin: '+8613900139000',
  frank: '+8613900139000', // same as erin: a duplicate
  gina: '+8613800138007',
  leaver: '+8613800138008',
};

function wecomUser(userid: string, dept = 3, extra: Record<string, unknown> = {}) {
  return { userid, name: userid.toUpperCase(), department: [dept], main_department: dept, position: 'Engineer', mobile: MOBILES[userid], enable: 1, status: 1, ...extra };
}

function seedUser(u: ReturnType<typeof wecomUser>) {
  env.wecomSim.users.set(u.userid, u as never);
}

function graphUserByEmployeeId(userid: string) {
  return [...env.graphSim.users.values()].find((u) => u.employeeId === userid);
}

const classesOf = (r: ReconcileReport, userid: string) => r.findings.filter((f) => f.userid === userid).map((f) => f.class).sort();

beforeAll(async () => {
  env = await startSyncEnv();
  const d = env.wecomSim.departments;
  d.set(1, { id: 1, name: 'Root', parentid: 0 } as never);
  d.set(2, { id: 2, name: '技术部', parentid: 1 } as never);
  d.set(3, { id: 3, name: '研发组', parentid: 2 } as never);
  d.set(5, { id: 5, name: '市场部', parentid: 1 } as never);
  // In sync first: the engine provisions everyone (as the worker would have).
  for (const id of Object.keys(MOBILES)) seedUser(wecomUser(id, id === 'gina' ? 5 : 3));
  for (const id of Object.keys(MOBILES)) await env.sync(id, 'create_user');
  // An account of the mailbox admins', not linked to anybody: never ours.
  env.graphSim.seedUser({ displayName: 'Mailbox Admin', userPrincipalName: 'admin@example.com', mail: 'admin@example.com', mobilePhone: '+8613700137000' });
}, 60_000);

afterAll(async () => {
  await env?.close();
});

describe('reconcile-all', () => {
  it('finds nothing to repair right after the engine provisioned everyone', async () => {
    const r = await reconcileAll(env.deps);
    const repairable = r.findings.filter((f) => !['unmanaged', 'duplicate-mobile'].includes(f.class));
    expect(repairable).toEqual([]);
    expect(r.counts.byClass.unmanaged).toBe(1);
    expect(r.counts.byClass['duplicate-mobile']).toBe(2);
    expect(classesOf(r, 'frank')).toEqual(['duplicate-mobile']); // refused mobile is a duplicate, not field drift
  });

  describe('with every class of drift planted', () => {
    let report: ReconcileReport;
    let unmanagedBefore: string;

    beforeAll(async () => {
      // missing-in-mailbox: a new member whose create event never arrived.
      seedUser(wecomUser('newbie'));
      // fields-differ: an admin changed bob's title in WeCom (no event).
      (env.wecomSim.users.get('bob') as { position: string }).position = 'Architect';
      // extra-in-mailbox: leaver removed from WeCom without an event.
      env.wecomSim.users.delete('leaver');
      // offboarded-in-mailbox: carol's mailbox disabled by the mailbox admins, notification lost.
      graphUserByEmployeeId('carol')!.accountEnabled = false;
      // disabled-in-wecom: dave disabled in WeCom, event lost.
      (env.wecomSim.users.get('dave') as { enable: number }).enable = 0;
      // mailbox department not a WeCom path (and so a department difference).
      graphUserByEmployeeId('alice')!.department = 'Nowhere/Else';
      // a WeCom department id without a path, and two departments with the same path.
      seedUser(wecomUser('orphan', 99));
      env.wecomSim.departments.set(6, { id: 6, name: '市场部', parentid: 1 } as never);
      unmanagedBefore = JSON.stringify([...env.graphSim.users.values()].find((u) => !u.employeeId));
      report = await reconcileAll(env.deps);
    }, 60_000);

    it('classifies every person and department', () => {
      expect(classesOf(report, 'newbie')).toEqual(['missing-in-mailbox']);
      expect(classesOf(report, 'bob')).toEqual(['fields-differ']);
      expect(report.findings.find((f) => f.userid === 'bob')!.fields).toEqual(['position']);
      expect(classesOf(report, 'leaver')).toEqual(['extra-in-mailbox']);
      expect(classesOf(report, 'carol')).toEqual(['offboarded-in-mailbox']);
      expect(classesOf(report, 'dave')).toEqual(['disabled-in-wecom']);
      expect(classesOf(report, 'alice')).toEqual(['fields-differ', 'mailbox-department-unknown']);
      expect(classesOf(report, 'erin')).toEqual(['duplicate-mobile']);
      expect(report.findings.some((f) => f.class === 'department-unmapped' && f.departmentId === 99)).toBe(true);
      expect(report.findings.some((f) => f.class === 'department-duplicate-path')).toBe(true);
      expect(report.findings.filter((f) => f.class === 'unmanaged')).toHaveLength(1);
      expect(classesOf(report, 'gina')).toEqual([]);
    });

    it('writes the counts to the audit log and the report as CSV + JSON without personal data in clear', async () => {
      const audit = await env.deps.audit.bySubject(RECONCILE_SUBJECT);
      const last = audit.at(-1)!;
      expect(last.action).toBe('skip');
      // newbie, and orphan (whose department does not map: reported as well, below)
      expect(last.changes).toContainEqual({ field: 'missing-in-mailbox', new: 2 });
      const files = readdirSync(env.reportsDir);
      expect(files.some((f) => f.endsWith('.csv'))).toBe(true);
      expect(files.some((f) => f.endsWith('.json'))).toBe(true);
      for (const f of files) {
        const text = readFileSync(join(env.reportsDir, f), 'utf8');
        for (const m of Object.values(MOBILES)) {
          expect(text).not.toContain(m);
          expect(text).not.toContain(m.slice(3)); // national number
        }
        expect(text).not.toContain('+8613700137000');
        expect(text).not.toMatch(/[a-z]+@example\.com/); // addresses only ever masked (a***@example.com)
        // The duplicate is reported with the number masked, so an operator can still tell cases apart.
        expect(text).toContain(maskPhone(MOBILES.erin!));
      }
      const csv = readFileSync(join(env.reportsDir, files.find((f) => f.endsWith('.csv'))!), 'utf8');
      expect(csv.split('\n')[0]).toContain('class,subject,userid');
    });

    it('a dry-run repair writes nothing and audits what it would do as dry-run', async () => {
      const before = JSON.stringify([...env.graphSim.users.values()]);
      const r = await reconcileAll(env.deps, { repair: true });
      expect(r.mode).toBe('repair-dry-run');
      expect(JSON.stringify([...env.graphSim.users.values()])).toBe(before);
      expect(graphUserByEmployeeId('newbie')).toBeUndefined();
      expect(r.findings.find((f) => f.userid === 'newbie')!.repair).toBe('dry-run');
      const newbieAudit = await env.deps.audit.bySubject('user:newbie');
      expect(newbieAudit.length).toBeGreaterThan(0);
      expect(newbieAudit.every((a) => a.outcome === 'dry-run')).toBe(true);
      // Three people would be disabled: above the default limit (5 % of 9 managed = 0).
      expect(r.guard).toMatchObject({ destructive: 3, tripped: true, confirmed: false });
    });

    it('repair applies the safe differences and refuses the destructive ones until confirmed', async () => {
      const r = await reconcileAll(env.deps, { repair: true, apply: true, operator: 'cli:tester' });
      expect(r.guard).toMatchObject({ destructive: 3, limit: 0, tripped: true, confirmed: false });
      const status = (id: string) => r.findings.find((f) => f.userid === id && f.repair)?.repair;
      expect(status('newbie')).toBe('applied');
      expect(status('bob')).toBe('applied');
      expect(status('leaver')).toBe('refused');
      expect(status('carol')).toBe('refused');
      expect(status('dave')).toBe('refused');
      // Nothing destructive happened.
      expect(graphUserByEmployeeId('leaver')!.accountEnabled).toBe(true);
      expect((env.wecomSim.users.get('carol') as { enable: number }).enable).toBe(1);
      expect(graphUserByEmployeeId('dave')!.accountEnabled).toBe(true);
      // The safe ones did.
      expect(graphUserByEmployeeId('newbie')).toBeDefined();
      expect(graphUserByEmployeeId('bob')!.jobTitle).toBe('Architect');
      const guard = (await env.deps.audit.bySubject(RECONCILE_SUBJECT)).find((a) => a.action === 'refused');
      expect(guard).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('refused: deletion guard (3 > 0)') });
    }, 60_000);

    it('with confirm, the rest is applied and a second run finds no repairable drift', async () => {
      const r = await reconcileAll(env.deps, { repair: true, apply: true, confirm: true, operator: 'cli:tester' });
      expect(r.guard).toMatchObject({ destructive: 3, tripped: true, confirmed: true });
      expect(graphUserByEmployeeId('leaver')!.accountEnabled).toBe(false);
      expect((env.wecomSim.users.get('carol') as { enable: number }).enable).toBe(0);
      expect(graphUserByEmployeeId('dave')!.accountEnabled).toBe(false);
      const again = await reconcileAll(env.deps);
      const repairable = again.findings.filter((f) => ['missing-in-mailbox', 'extra-in-mailbox', 'fields-differ', 'offboarded-in-mailbox', 'disabled-in-wecom'].includes(f.class));
      expect(repairable).toEqual([]);
      // Unmanaged: never touched by any of the runs.
      expect(JSON.stringify([...env.graphSim.users.values()].find((u) => !u.employeeId))).toBe(unmanagedBefore);
      expect(await env.deps.audit.bySubject(`mailbox:graph:${[...env.graphSim.users.values()].find((u) => !u.employeeId)!.id}`)).toEqual([]);
    }, 60_000);
  });
});

describe('deletion guard', () => {
  let g: SyncEnv;
  beforeAll(async () => {
    g = await startSyncEnv();
    g.wecomSim.departments.set(1, { id: 1, name: 'Root', parentid: 0 } as never);
    for (let i = 0; i < 40; i++) {
      const userid = `p${String(i).padStart(2, '0')}`;
      g.wecomSim.users.set(userid, { userid, name: userid, department: [1], main_department: 1, enable: 1, status: 1 } as never);
      await g.sync(userid, 'create_user');
    }
    // An upstream glitch: 30 members vanish from WeCom.
    for (let i = 0; i < 30; i++) g.wecomSim.users.delete(`p${String(i).padStart(2, '0')}`);
  }, 120_000);
  afterAll(async () => {
    await g?.close();
  });

  it('30 extra accounts with default thresholds: refused, nothing disabled, audited', async () => {
    const r = await reconcileAll(g.deps, { repair: true, apply: true });
    expect(r.counts.byClass['extra-in-mailbox']).toBe(30);
    expect(r.guard).toEqual({ destructive: 30, limit: 2, tripped: true, confirmed: false });
    expect([...g.graphSim.users.values()].filter((u) => !u.accountEnabled)).toEqual([]);
    expect(r.findings.filter((f) => f.repair === 'refused')).toHaveLength(30);
    const audit = await g.deps.audit.bySubject(RECONCILE_SUBJECT);
    expect(audit.some((a) => a.action === 'refused' && a.reason?.includes('(30 > 2)'))).toBe(true);
  }, 60_000);
});

describe('onboarding gate in the report', () => {
  let g: SyncEnv;
  beforeAll(async () => {
    g = await startSyncEnv();
    g.wecomSim.departments.set(1, { id: 1, name: 'Root', parentid: 0 } as never);
    // The mailbox admins already use the address: Graph refuses the create, the member stays gated.
    g.graphSim.seedUser({ displayName: 'Someone else', userPrincipalName: 'held@example.com', mail: 'held@example.com' });
    g.wecomSim.users.set('held', { userid: 'held', name: 'Held', department: [1], main_department: 1, enable: 1, status: 1 } as never);
    await g.sync('held', 'create_user').catch(() => undefined);
  }, 60_000);
  afterAll(async () => {
    await g?.close();
  });

  it('a member held by the gate is reported with the reason, not counted in sync; a repair retries once the cause is gone', async () => {
    expect((g.wecomSim.users.get('held') as { enable: number }).enable).toBe(0);
    let r = await reconcileAll(g.deps);
    const held = r.findings.find((f) => f.userid === 'held')!;
    expect(held.class).toBe('gated');
    expect(held.detail).toMatch(/held by the onboarding gate: mailbox creation failed/);

    // The admins free the address; the repair provisions the mailbox and lifts the gate.
    const other = [...g.graphSim.users.values()].find((u) => u.userPrincipalName === 'held@example.com')!;
    g.graphSim.users.delete(other.id);
    r = await reconcileAll(g.deps, { repair: true, apply: true });
    expect(r.findings.find((f) => f.userid === 'held')).toMatchObject({ class: 'gated', repair: 'applied' });
    expect((g.wecomSim.users.get('held') as { enable: number }).enable).toBe(1);
    r = await reconcileAll(g.deps);
    expect(r.findings.filter((f) => f.class !== 'unmanaged')).toEqual([]);
  }, 60_000);

  it('a WeCom value the worker refuses (unparseable mobile) is listed for a person to fix, never sent', async () => {
    g.wecomSim.users.set('badphone', { userid: 'badphone', name: 'Bad', mobile: 'call me', department: [1], main_department: 1, enable: 1, status: 1 } as never);
    await g.sync('badphone', 'create_user');
    const r = await reconcileAll(g.deps);
    const f = r.findings.find((x) => x.userid === 'badphone')!;
    expect(f).toMatchObject({ class: 'invalid-field', fields: ['mobile'], detail: expect.stringMatching(/^mobile is not a (valid )?phone number/) });
    expect(f.detail).not.toContain('call me');
    expect(r.drift).toBeGreaterThan(0);
    const acc = [...g.graphSim.users.values()].find((u) => u.employeeId === 'badphone')!;
    expect(acc.mobilePhone ?? null).toBeNull();
  }, 60_000);
});
