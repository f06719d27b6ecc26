/**
 * Crash consistency of a subject's run: for each scenario, a crash after EVERY write the run
 * makes (WeCom, mailbox, state, audit), followed by redelivery of the same message, ends in
 * the same world as an uninterrupted run — no second account, nobody left gated once the
 * mailbox exists, and every external write audited exactly once.
 */
import { describe, expect, it } from 'vitest';
import type { SyncMessage } from '../../functions/queue/messages';
import type { EngineDeps } from '../../functions/sync/context';
import { syncSubject } from '../../functions/sync/engine';
import { deleteDueMembers } from '../../functions/sync/grace';
import { Crash, crashingDeps, externalAudit, worldOf } from '../support/crash';
import { harness, type Harness } from '../support/engine-harness';

interface Scenario {
  name: string;
  config?: Record<string, unknown>;
  /** Prepare the world; returns the operation whose run is crashed and redelivered. */
  setup(h: Harness): Promise<(deps: EngineDeps) => Promise<unknown>>;
}

const once = (h: Harness, msg: SyncMessage) => (deps: EngineDeps) => syncSubject(msg, deps);

async function onboarded(h: Harness, userid: string) {
  h.addUser({ userid, mobile: '13800138000' });
  await h.sync(userid, 'create_user');
  return h.account(userid)[0]!.id;
}

const scenarios: Scenario[] = [
  {
    name: 'onboarding with the gate (disable member, create mailbox, enable member)',
    async setup(h) {
      h.addUser({ userid: 'ann', mobile: '13800138000' });
      return once(h, h.message('user:ann', 'create_user'));
    },
  },
  {
    name: 'onboarding with a provisioned tag',
    config: { onboarding: { gate: true, provisionedTagId: 7 } },
    async setup(h) {
      h.addUser({ userid: 'bob' });
      return once(h, h.message('user:bob', 'create_user'));
    },
  },
  {
    name: 'rehire: the soft-deleted account is restored, updated, the member enabled',
    async setup(h) {
      const id = await onboarded(h, 'cai');
      await h.mailbox.delete(id); // mail admins deleted the leaver's account
      h.wecom.users.delete('cai');
      await h.sync('cai', 'delete_user');
      h.addUser({ userid: 'cai', position: 'Manager', department: [4], main_department: 4 });
      return once(h, h.message('user:cai', 'create_user'));
    },
  },
  {
    name: 'mailbox disabled → member offboarded (disable, grace period)',
    async setup(h) {
      const id = await onboarded(h, 'dan');
      h.mailbox.admin(id, { enabled: false });
      return once(h, h.message(`mailbox:graph:${id}`, 'graph.updated', { source: 'mailbox', operator: 'graph-notification' }));
    },
  },
  {
    name: 'member deleted in WeCom → mailbox disabled',
    async setup(h) {
      await onboarded(h, 'eve');
      h.wecom.users.delete('eve');
      return once(h, h.message('user:eve', 'delete_user'));
    },
  },
  {
    name: 'profile update: position, mobile and department move',
    async setup(h) {
      await onboarded(h, 'fay');
      h.wecomAdmin('fay', { position: 'Lead', mobile: '13900139000', department: [5], main_department: 5 });
      return once(h, h.message('user:fay', 'update_user'));
    },
  },
  {
    name: "offboarding mode 'delete' deletes the member",
    config: { offboarding: { mode: 'delete' } },
    async setup(h) {
      const id = await onboarded(h, 'gus');
      h.mailbox.admin(id, { enabled: false });
      return once(h, h.message(`mailbox:graph:${id}`, 'graph.updated', { source: 'mailbox', operator: 'graph-notification' }));
    },
  },
  {
    name: 'mailbox source: an account is born (linked, member created disabled, enabled)',
    config: { lifecycle: { source: 'mailbox' } },
    async setup(h) {
      h.mailbox.accounts.set('m1', { id: 'm1', email: 'born@example.com', enabled: true, kind: 'member', displayName: 'Born', department: '技术部/研发组', jobTitle: 'PM' });
      return once(h, h.message('mailbox:graph:m1', 'graph.updated', { source: 'mailbox', operator: 'graph-notification' }));
    },
  },
  {
    name: 'mailbox source: a WeCom edit put back (revert) and a mailbox change written (update)',
    config: { lifecycle: { source: 'mailbox' } },
    async setup(h) {
      h.mailbox.accounts.set('m2', { id: 'm2', email: 'rev@example.com', enabled: true, kind: 'member', displayName: 'Rev', department: '技术部/研发组', jobTitle: 'PM' });
      await syncSubject(h.message('mailbox:graph:m2', 'graph.updated', { source: 'mailbox' }), h.deps);
      h.wecomAdmin('rev', { position: '随便' });
      h.mailbox.admin('m2', { displayName: 'Reverend' });
      return once(h, h.message('user:rev', 'update_user'));
    },
  },
  {
    name: 'grace deleter deletes after the period',
    async setup(h) {
      const id = await onboarded(h, 'hal');
      h.mailbox.admin(id, { enabled: false });
      await h.syncSubject(`mailbox:graph:${id}`, 'graph.updated');
      h.advance(31);
      return (deps) => deleteDueMembers(deps);
    },
  },
];

describe.each(scenarios)('crash after every write: $name', (sc) => {
  it('converges to the uninterrupted end state, every external write audited once', async () => {
    // Reference: the same scenario without a crash.
    const ref = harness(sc.config);
    const refOp = await sc.setup(ref);
    const counted = crashingDeps(ref);
    await refOp(counted.deps);
    const total = counted.writes.length;
    const want = { world: worldOf(ref), audit: externalAudit(ref) };
    expect(want.world.state.every((s) => !s.intent)).toBe(true);
    expect(total).toBeGreaterThan(2);

    for (let n = 0; n < total; n++) {
      const h = harness(sc.config);
      const op = await sc.setup(h);
      const crashing = crashingDeps(h, n);
      await expect(op(crashing.deps), `crash after write #${n}`).rejects.toBeInstanceOf(Crash);
      // Redelivery of the same message (SQS), until it goes through.
      let error: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await op(h.deps);
          error = undefined;
          break;
        } catch (err) {
          error = err;
        }
      }
      expect(error, `redelivery after a crash at ${crashing.writes[n]} (#${n})`).toBeUndefined();
      expect({ n, at: crashing.writes[n], world: worldOf(h) }).toEqual({ n, at: crashing.writes[n], world: want.world });
      expect({ n, at: crashing.writes[n], audit: externalAudit(h) }).toEqual({ n, at: crashing.writes[n], audit: want.audit });
    }
  });
});

describe('recovery audits what the interrupted run did', () => {
  it('a crash right after the mailbox create: the create is audited on the next run, marked recovered, with the original event', async () => {
    const h = harness();
    h.addUser({ userid: 'ivy' });
    const msg = h.message('user:ivy', 'create_user');
    // Find the write index of mailbox.create in an uninterrupted run of an identical world.
    const probe = harness();
    probe.addUser({ userid: 'ivy' });
    const pc = crashingDeps(probe);
    await syncSubject(probe.message('user:ivy', 'create_user'), pc.deps);
    const at = pc.writes.indexOf('mailbox.create');
    const crashing = crashingDeps(h, at);
    await expect(syncSubject(msg, crashing.deps)).rejects.toBeInstanceOf(Crash);
    expect(h.wecom.users.get('ivy')!.enable).toBe(0); // gated, account created, nothing audited yet for the create
    expect(h.audit.actions('user:ivy')).toEqual(['disable:wecom:ok']);
    expect(h.state.records.get('user:ivy')!.intent?.steps.map((s) => s.action)).toEqual(['disable', 'create', 'enable']);

    await syncSubject({ ...msg, operator: 'sqs-redelivery-does-not-change-this' }, h.deps);
    const create = h.audit.records.find((r) => r.action === 'create')!;
    expect(create).toMatchObject({ target: 'mailbox', outcome: 'ok', eventId: msg.eventId, operator: 'wecom-callback' });
    expect(create.reason).toMatch(/recovered/);
    expect(h.audit.actions('user:ivy')).toEqual(['disable:wecom:ok', 'create:mailbox:ok', 'enable:wecom:ok']);
    expect(h.account('ivy')).toHaveLength(1);
    expect(h.wecom.users.get('ivy')!.enable).toBe(1);
    expect(h.state.records.get('user:ivy')).toMatchObject({ status: 'active' });
    expect(h.state.records.get('user:ivy')!.intent).toBeUndefined();
    expect(h.counts.recovered).toBe(1);
  });

  it('an intent never contains a personal value in clear', async () => {
    const h = harness();
    await onboarded(h, 'joe');
    h.wecomAdmin('joe', { mobile: '13900139000' });
    const seen: string[] = [];
    const put = h.state.put.bind(h.state);
    h.state.put = async (r) => (seen.push(JSON.stringify(r)), put(r));
    await h.sync('joe', 'update_user');
    const withIntent = seen.find((x) => x.includes('"intent"'))!;
    expect(withIntent).toBeDefined();
    expect(withIntent).not.toMatch(/13900139000|8613900139000/);
    expect(withIntent).toContain('+86139****9000');
  });
});
