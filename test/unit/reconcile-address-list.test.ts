/**
 * Reconcile and the address-list switch (a protected department's members are kept out of the
 * global address list: sync/profile.ts). A hand-made change on the mailbox side — a hidden
 * executive listed again, an engineer hidden — is drift the report names, a repair puts back,
 * and a directory that does not report the switch is never judged on it.
 */
import { describe, expect, it } from 'vitest';
import type { MailboxAccount } from '../../functions/mailbox/directory';
import { MemoryRunStore } from '../../functions/store/run-store';
import { reconcileAll, type ReconcileDeps } from '../../functions/sync/reconcile';
import { harness } from '../support/engine-harness';

describe('reconcile: the address-list switch', () => {
  it('reports a flipped switch as fields-differ, the repair flips it back (audited), then nothing differs', async () => {
    const h = harness({ profile: { protectedDepartments: ['财务部'] } });
    h.addUser({ userid: 'cfo', department: [4], main_department: 4 });
    h.addUser({ userid: 'dev' });
    h.addUser({ userid: 'ops' });
    for (const userid of ['cfo', 'dev', 'ops']) await h.sync(userid, 'create_user');
    const acc = (userid: string) => h.account(userid)[0] as MailboxAccount;
    expect(acc('cfo').showInAddressList).toBe(false);

    // By hand in the admin console: the executive listed, the engineer hidden; ops's directory
    // (say) does not report the switch at all.
    acc('cfo').showInAddressList = true;
    acc('dev').showInAddressList = false;
    delete acc('ops').showInAddressList;

    const deps: ReconcileDeps = { ...h.deps, chunking: { pageSize: 2, shards: 2 } };
    const report = await reconcileAll({ ...deps, runStore: new MemoryRunStore() });
    const differ = report.findings.filter((f) => f.class === 'fields-differ').map((f) => [f.userid, f.fields, f.detail]);
    expect(differ.sort()).toEqual([
      ['cfo', ['showInAddressList'], 'showInAddressList: true → false'],
      ['dev', ['showInAddressList'], 'showInAddressList: false → true'],
    ]);
    expect(report.drift).toBe(2);

    const repaired = await reconcileAll({ ...deps, runStore: new MemoryRunStore() }, { repair: true, apply: true });
    expect(repaired.findings.filter((f) => f.class === 'fields-differ').map((f) => f.repair)).toEqual(['applied', 'applied']);
    expect(acc('cfo').showInAddressList).toBe(false);
    expect(acc('dev').showInAddressList).toBe(true);
    const update = h.audit.records.filter((r) => r.subject === 'user:cfo' && r.action === 'update').at(-1)!;
    expect(update.changes).toContainEqual({ field: 'showInAddressList', old: true, new: false });

    const after = await reconcileAll({ ...deps, runStore: new MemoryRunStore() });
    expect(after.drift).toBe(0);
  });
});
