/**
 * The person sync over in-memory fakes of the ports: onboarding (gate), profile sync,
 * offboarding both ways, rehire, echoes, crash-redelivery idempotence, invalid data, policy.
 */
import { describe, expect, it } from 'vitest';
import { MailboxError } from '../../functions/mailbox/directory';
import { VersionConflictError, type StateRecord } from '../../functions/store/ports';
import { harness } from '../support/engine-harness';
import { syncSubject } from '../../functions/sync/engine';
import { INTENT_LEASE_MS, isRetryable, SubjectBusyError } from '../../functions/sync/errors';

const MOBILE = '13800138000';
const MOBILE_DIGITS = /13800138000|8613800138000/;

describe('onboarding', () => {
  it('create_user: gates the member, creates the mailbox with employeeId, groups, then enables the member', async () => {
    const h = harness();
    h.addUser({ userid: 'zhangsan', mobile: MOBILE });
    const out = await h.sync('zhangsan', 'create_user');
    const [acc] = h.account('zhangsan');
    expect(acc).toMatchObject({ employeeId: 'zhangsan', email: 'zhangsan@example.com', displayName: 'ZHANGSAN', enabled: true, jobTitle: 'Engineer' });
    expect(acc!.mobile).toBe('+8613800138000');
    expect(h.wecom.writes.map((w) => w.patch)).toEqual([{ enable: 0 }, { enable: 1 }]);
    expect(h.wecom.users.get('zhangsan')!.enable).toBe(1);
    expect(h.audit.actions('user:zhangsan')).toEqual(['disable:wecom:ok', 'create:mailbox:ok', 'enable:wecom:ok']);
    expect(h.audit.records[0]!.reason).toMatch(/onboarding gate: mailbox not yet created/);
    expect(h.mailbox.groupsOf(acc!.id)).toEqual(['技术部/研发组']);
    const s = h.state.records.get('user:zhangsan')!;
    expect(s).toMatchObject({ status: 'active', targetId: acc!.id, provider: 'graph' });
    expect(s.disabledBy).toBeUndefined();
    expect(s.sensitive.mobile?.h).toBe(await h.cipher.hash('mobile', '+8613800138000'));
    expect(out).toMatchObject({ changed: true, actions: ['disable', 'create', 'enable'] });
    // Nothing in clear at rest or in the audit trail.
    expect(JSON.stringify([...h.state.records.values()])).not.toMatch(MOBILE_DIGITS);
    expect(JSON.stringify([...h.state.records.values()])).not.toContain('zhangsan@example.com');
  });

  it('with a provisioned tag the member is never disabled, it is tagged after the mailbox exists', async () => {
    const h = harness({ onboarding: { gate: true, provisionedTagId: 7 } });
    h.addUser({ userid: 'lisi' });
    await h.sync('lisi', 'create_user');
    expect(h.account('lisi')).toHaveLength(1);
    expect(h.wecom.writes).toEqual([{ op: 'tag', userid: 'lisi', patch: { tagId: 7 } }]);
    expect(h.wecom.tags.get(7)?.has('lisi')).toBe(true);
  });

  it('gate off: no WeCom writes at all on create', async () => {
    const h = harness({ onboarding: { gate: false } });
    h.addUser({ userid: 'wangwu' });
    await h.sync('wangwu', 'create_user');
    expect(h.account('wangwu')).toHaveLength(1);
    expect(h.wecom.writes).toEqual([]);
  });

  it('mailbox creation fails → the member stays gated, audit says why, error rethrown; a retry completes', async () => {
    const h = harness();
    h.addUser({ userid: 'zhaoliu' });
    h.mailbox.failCreate = { error: new MailboxError('Request_BadRequest: license quota exceeded', false, 'bad_request'), times: 1 };
    await expect(h.sync('zhaoliu', 'create_user')).rejects.toThrow(/license quota/);
    expect(h.wecom.users.get('zhaoliu')!.enable).toBe(0);
    expect(h.state.records.get('user:zhaoliu')).toMatchObject({ status: 'gated', disabledBy: 'gate' });
    const failed = h.audit.records.find((r) => r.action === 'failed')!;
    expect(failed).toMatchObject({ target: 'mailbox', outcome: 'error' });
    expect(failed.reason).toMatch(/member stays gated.*license quota/);
    // Redelivery (update_user hint now): the gated state still creates, then enables.
    await h.sync('zhaoliu', 'update_user');
    expect(h.account('zhaoliu')).toHaveLength(1);
    expect(h.wecom.users.get('zhaoliu')!.enable).toBe(1);
    expect(h.state.records.get('user:zhaoliu')).toMatchObject({ status: 'active' });
  });

  it('crash after create, before the state write: redelivery finds the account by employeeId — one account', async () => {
    const h = harness();
    h.addUser({ userid: 'crash' });
    h.state.crashAfterPuts = 1; // the gated state is written, the final one is not
    const event = h.message('user:crash', 'create_user');
    await expect(syncSubject(event, h.deps)).rejects.toThrow(/simulated crash/);
    expect(h.account('crash')).toHaveLength(1);
    await syncSubject(event, h.deps); // the same event redelivered: its dead run is recovered at once
    await h.sync('crash', 'create_user');
    expect(h.account('crash')).toHaveLength(1);
    expect(h.mailbox.writes.filter((w) => w.op === 'create')).toHaveLength(1);
    expect(h.wecom.users.get('crash')!.enable).toBe(1);
    expect(h.state.records.get('user:crash')).toMatchObject({ status: 'active', targetId: h.account('crash')[0]!.id });
  });

  it("another event meeting a live run's young intent waits (retryable, nothing audited twice); past the lease it is a crash's, recovered", async () => {
    const h = harness();
    h.addUser({ userid: 'busy' });
    h.state.crashAfterPuts = 1; // the run "stops" after its writes, before its outcome: as if still running
    await expect(h.sync('busy', 'create_user')).rejects.toThrow(/simulated crash/);
    const audited = h.audit.records.length;
    // A CLI or console run of another event, while that run may still be alive.
    const busy = await h.sync('busy', 'update_user').then(() => undefined, (e: unknown) => e);
    expect(busy).toBeInstanceOf(SubjectBusyError);
    expect(isRetryable(busy)).toBe(true);
    expect(h.audit.records.length).toBe(audited);
    // Past the lease the intent is a dead run's: recovered, audited once, the pair completed.
    h.advance((INTENT_LEASE_MS + 1_000) / 86_400_000); // advance() counts days
    await h.sync('busy', 'update_user');
    expect(h.audit.records.filter((r) => r.subject === 'user:busy' && r.action === 'create')).toHaveLength(1);
    expect(h.wecom.users.get('busy')!.enable).toBe(1);
  });

  it('a disabled member with no mailbox is not provisioned', async () => {
    const h = harness();
    h.addUser({ userid: 'off', enable: 0 });
    const out = await h.sync('off', 'update_user');
    expect(h.mailbox.writes).toEqual([]);
    expect(out.changed).toBe(false);
  });
});

describe('profile sync', () => {
  async function synced() {
    const h = harness();
    h.addUser({ userid: 'u1', mobile: MOBILE });
    await h.sync('u1', 'create_user');
    h.mailbox.writes.length = 0;
    h.audit.records.length = 0;
    return h;
  }

  it('one changed field → exactly one PATCH with only that key, audited, state written twice (intent, outcome)', async () => {
    const h = await synced();
    const puts = h.state.puts;
    const seen: Array<{ intent?: unknown }> = [];
    const put = h.state.put.bind(h.state);
    h.state.put = async (r) => (seen.push(structuredClone(r)), put(r));
    h.wecomAdmin('u1', { position: 'Architect' });
    const out = await h.sync('u1', 'update_user');
    expect(h.mailbox.writes).toEqual([{ op: 'update', id: h.account('u1')[0]!.id, patch: { jobTitle: 'Architect' } }]);
    expect(h.audit.records).toHaveLength(1);
    expect(h.audit.records[0]).toMatchObject({ action: 'update', target: 'mailbox', changes: [{ field: 'position', old: 'Engineer', new: 'Architect' }] });
    // The write-ahead intent before the PATCH, the outcome (intent cleared) after it.
    expect(h.state.puts).toBe(puts + 2);
    expect(seen[0]!.intent).toMatchObject({ steps: [{ action: 'update', target: 'mailbox', expect: { mailboxFields: { position: expect.stringMatching(/^[0-9a-f]{64}$/) } } }] });
    expect(seen[1]!.intent).toBeUndefined();
    expect(h.state.records.get('user:u1')!.intent).toBeUndefined();
    expect(out.changes).toEqual([{ field: 'position', old: 'Engineer', new: 'Architect' }]);
  });

  it('no change → no mailbox write, no state write, no audit record, a noop counted', async () => {
    const h = await synced();
    const puts = h.state.puts;
    const out = await h.sync('u1', 'update_user');
    expect(h.mailbox.writes).toEqual([]);
    expect(h.state.puts).toBe(puts);
    expect(h.audit.records).toEqual([]);
    expect(h.counts.noop).toBe(1);
    expect(out).toMatchObject({ changed: false, actions: ['noop'] });
  });

  it('a changed mobile is sent (E.164), flagged sensitive in the audit, re-sealed in state, old claim released', async () => {
    const h = await synced();
    h.wecomAdmin('u1', { mobile: '13900139000' });
    await h.sync('u1', 'update_user');
    expect(h.mailbox.writes).toEqual([{ op: 'update', id: h.account('u1')[0]!.id, patch: { mobile: '+8613900139000' } }]);
    expect(h.audit.records[0]!.changes).toEqual([{ field: 'mobile', old: '+8613800138000', new: '+8613900139000', sensitive: true }]);
    expect(h.state.records.get('user:u1')!.sensitive.mobile!.h).toBe(await h.cipher.hash('mobile', '+8613900139000'));
    // The old number is free again: another person can take it.
    h.addUser({ userid: 'u2', mobile: MOBILE });
    await h.sync('u2', 'create_user');
    expect(h.account('u2')[0]!.mobile).toBe('+8613800138000');
  });

  it('department move → department attribute PATCH and group membership moved from old to new group', async () => {
    const h = await synced();
    const id = h.account('u1')[0]!.id;
    h.wecomAdmin('u1', { department: [5], main_department: 5 });
    await h.sync('u1', 'update_user');
    expect(h.mailbox.writes.find((w) => w.op === 'update')).toEqual({ op: 'update', id, patch: { department: '市场部' } });
    expect(h.mailbox.groupsOf(id)).toEqual(['市场部']);
    expect(h.state.records.get('user:u1')!.fields.departments).toEqual(['市场部']);
    // And it converges: a second run writes nothing.
    h.mailbox.writes.length = 0;
    await h.sync('u1', 'update_user');
    expect(h.mailbox.writes).toEqual([]);
  });

  it('a mailbox admin edit of a WeCom-owned field is put back (level-driven, current values diffed)', async () => {
    const h = await synced();
    const id = h.account('u1')[0]!.id;
    h.mailbox.admin(id, { jobTitle: 'CEO' });
    await h.sync('u1', 'update_user');
    expect(h.mailbox.writes).toEqual([{ op: 'update', id, patch: { jobTitle: 'Engineer' } }]);
  });

  it('version conflict on the state write → the subject is re-run and converges', async () => {
    const h = await synced();
    h.wecomAdmin('u1', { position: 'Lead' });
    const realPut = h.state.put.bind(h.state);
    let raced = false;
    h.state.put = async (r: StateRecord) => {
      if (!raced) {
        raced = true;
        // Another worker wrote first.
        const cur = h.state.records.get(r.subject)!;
        h.state.records.set(r.subject, { ...cur, version: cur.version + 1 });
        throw new VersionConflictError(r.subject);
      }
      return realPut(r);
    };
    const out = await h.sync('u1', 'update_user');
    expect(h.account('u1')[0]!.jobTitle).toBe('Lead');
    expect(h.state.records.get('user:u1')!.fields.position).toBe('Lead');
    expect(h.counts.versionConflict).toBe(1);
    // The lost attempt's PATCH happened: the outcome says so, not just the re-run's noop.
    expect(out.actions).toContain('update');
    expect(out.changed).toBe(true);
  });
});

describe('invalid data and policy', () => {
  it('another person already holds the mobile → field refused (masked reason), rest of the person synced', async () => {
    const h = harness();
    h.addUser({ userid: 'a', mobile: MOBILE });
    h.addUser({ userid: 'b', mobile: MOBILE, position: 'Designer' });
    await h.sync('a', 'create_user');
    await h.sync('b', 'create_user');
    const [b] = h.account('b');
    expect(b).toMatchObject({ employeeId: 'b', jobTitle: 'Designer' });
    expect(b!.mobile).toBeUndefined();
    const refused = h.audit.records.filter((r) => r.subject === 'user:b' && r.action === 'refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toMatch(/mobile not sent: mobile already belongs to user:a/);
    expect(refused[0]!.reason).not.toMatch(MOBILE_DIGITS);
    // Refusal is audited once, not on every later run.
    await h.sync('b', 'update_user');
    expect(h.audit.records.filter((r) => r.subject === 'user:b' && r.action === 'refused')).toHaveLength(1);
  });

  it('an unparseable phone is not sent; audit refused; the rest syncs', async () => {
    const h = harness();
    h.addUser({ userid: 'c', mobile: 'call me maybe' });
    await h.sync('c', 'create_user');
    expect(h.account('c')[0]!.mobile).toBeUndefined();
    expect(h.account('c')[0]!.jobTitle).toBe('Engineer');
    expect(h.audit.records.some((r) => r.action === 'refused' && /mobile/.test(r.reason ?? ''))).toBe(true);
  });

  it('protected department: mobile withheld (never sent)', async () => {
    const h = harness({ profile: { protectedDepartments: ['财务部'] } });
    h.addUser({ userid: 'fin', mobile: MOBILE, department: [4], main_department: 4 });
    await h.sync('fin', 'create_user');
    const [acc] = h.account('fin');
    expect(acc).toMatchObject({ department: '财务部' });
    expect(acc!.mobile).toBeUndefined();
    expect(JSON.stringify(h.mailbox.writes)).not.toMatch(MOBILE_DIGITS);
  });

  it('protected department: hidden from the address list on create; listed again (one update, audited) when the person leaves it', async () => {
    const h = harness({ profile: { protectedDepartments: ['财务部'] } });
    h.addUser({ userid: 'cfo', department: [4], main_department: 4 });
    h.addUser({ userid: 'dev' });
    await h.sync('cfo', 'create_user');
    await h.sync('dev', 'create_user');
    expect(h.mailbox.writes.find((w) => w.op === 'create' && (w.patch as { employeeId?: string } | undefined)?.employeeId === 'cfo')?.patch).toMatchObject({ showInAddressList: false });
    // A person outside protected departments is listed by default: nothing sent.
    expect(h.mailbox.writes.find((w) => w.op === 'create' && (w.patch as { employeeId?: string } | undefined)?.employeeId === 'dev')?.patch).not.toHaveProperty('showInAddressList');
    expect(h.audit.records.find((r) => r.subject === 'user:cfo' && r.action === 'create')?.changes).toContainEqual({ field: 'showInAddressList', new: false });

    // Moved out of finance: the department and the visibility in one update.
    h.mailbox.writes.length = 0;
    h.wecom.users.get('cfo')!.department = [3];
    h.wecom.users.get('cfo')!.main_department = 3;
    await h.sync('cfo', 'update_user');
    const updates = h.mailbox.writes.filter((w) => w.op === 'update');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.patch).toMatchObject({ showInAddressList: true, department: '技术部/研发组' });
    const audit = h.audit.records.filter((r) => r.subject === 'user:cfo' && r.action === 'update').at(-1)!;
    expect(audit.changes).toContainEqual({ field: 'showInAddressList', old: false, new: true });

    // Someone made the account hidden by hand: the next run lists it again, and only that.
    h.mailbox.writes.length = 0;
    const [acc] = h.account('dev');
    (acc as { showInAddressList?: boolean }).showInAddressList = false;
    await h.sync('dev', 'update_user');
    expect(h.mailbox.writes.filter((w) => w.op === 'update').map((w) => w.patch)).toEqual([{ showInAddressList: true }]);
    // Converged: another run writes nothing.
    h.mailbox.writes.length = 0;
    await h.sync('dev', 'update_user');
    expect(h.mailbox.writes).toEqual([]);
  });

  it('cross-border target without approval: mobile withheld, the create audit says so', async () => {
    const h = harness({ profile: { targetRegion: 'ABROAD', crossBorderApproved: false } });
    h.addUser({ userid: 'xb', mobile: MOBILE });
    await h.sync('xb', 'create_user');
    expect(h.account('xb')[0]!.mobile).toBeUndefined();
    const create = h.audit.records.find((r) => r.action === 'create')!;
    expect(create.reason).toMatch(/cross-border.*mobile/);
  });
});

describe('offboarding: WeCom side', () => {
  it('deleted in WeCom → mailbox disabled (not deleted); the Graph echo is a noop; one write per side', async () => {
    const h = harness();
    h.addUser({ userid: 'gone' });
    await h.sync('gone', 'create_user');
    h.mailbox.writes.length = 0;
    h.wecom.writes.length = 0;
    h.wecom.users.delete('gone');
    await h.sync('gone', 'delete_user');
    const [acc] = h.account('gone');
    expect(acc).toMatchObject({ enabled: false });
    expect(acc!.deleted).toBeUndefined();
    expect(h.state.records.get('user:gone')).toMatchObject({ status: 'disabled', disabledBy: 'wecom' });
    // The Graph change notification for our own disable:
    const echo = await h.syncSubject(`mailbox:graph:${acc!.id}`, 'updated');
    expect(echo).toMatchObject({ resolved: 'user:gone', changed: false, actions: ['noop'] });
    await h.sync('gone', 'delete_user'); // duplicate delivery
    expect(h.mailbox.writes).toEqual([{ op: 'disable', id: acc!.id }]);
    expect(h.wecom.writes).toEqual([]);
  });

  it('a WeCom admin disables the member → mailbox disabled; re-enabled → mailbox re-enabled', async () => {
    const h = harness();
    h.addUser({ userid: 'd' });
    await h.sync('d', 'create_user');
    h.wecomAdmin('d', { enable: 0 });
    await h.sync('d', 'update_user');
    expect(h.account('d')[0]!.enabled).toBe(false);
    expect(h.state.records.get('user:d')).toMatchObject({ disabledBy: 'wecom' });
    // The mailbox echo must not offboard the member.
    await h.syncSubject(`mailbox:graph:${h.account('d')[0]!.id}`);
    expect(h.wecom.users.has('d')).toBe(true);
    h.wecomAdmin('d', { enable: 1 });
    await h.sync('d', 'update_user');
    expect(h.account('d')[0]!.enabled).toBe(true);
    expect(h.state.records.get('user:d')).toMatchObject({ status: 'active' });
    expect(h.state.records.get('user:d')!.disabledBy).toBeUndefined();
  });
});

describe('offboarding: mailbox side', () => {
  async function offboarded(config: Record<string, unknown> = {}) {
    const h = harness(config);
    h.addUser({ userid: 'leaver' });
    await h.sync('leaver', 'create_user');
    const id = h.account('leaver')[0]!.id;
    h.mailbox.admin(id, { enabled: false });
    h.wecom.writes.length = 0;
    await h.syncSubject(`mailbox:graph:${id}`, 'updated');
    return { h, id };
  }

  it('disable-then-delete: member disabled at once, pending-delete with deleteAfter = now + graceDays, audited', async () => {
    const { h } = await offboarded();
    expect(h.wecom.writes).toEqual([{ op: 'update', userid: 'leaver', patch: { enable: 0 } }]);
    const s = h.state.records.get('user:leaver')!;
    expect(s).toMatchObject({ status: 'pending-delete', disabledBy: 'mailbox', offboardedAt: '2026-11-01T00:00:00.000Z', deleteAfter: '2026-12-01T00:00:00.000Z' });
    const rec = h.audit.records.at(-1)!;
    expect(rec).toMatchObject({ action: 'disable', target: 'wecom', subject: 'user:leaver' });
    // The WeCom echo (if WeCom sent one) converges to a noop.
    h.wecom.writes.length = 0;
    const echo = await h.sync('leaver', 'update_user');
    expect(echo.changed).toBe(false);
    expect(h.wecom.writes).toEqual([]);
  });

  it('mailbox re-enabled within the grace period → member re-enabled, offboarding cleared', async () => {
    const { h, id } = await offboarded();
    h.advance(3);
    h.mailbox.admin(id, { enabled: true });
    await h.syncSubject(`mailbox:graph:${id}`, 'updated');
    expect(h.wecom.users.get('leaver')!.enable).toBe(1);
    const s = h.state.records.get('user:leaver')!;
    expect(s.status).toBe('active');
    expect(s.deleteAfter).toBeUndefined();
    expect(s.offboardedAt).toBeUndefined();
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'enable', target: 'wecom' });
  });

  it("mode 'delete' deletes the member at once; 'disable-only' never schedules a deletion", async () => {
    const a = await offboarded({ offboarding: { mode: 'delete' } });
    expect(a.h.wecom.users.has('leaver')).toBe(false);
    expect(a.h.state.records.get('user:leaver')).toMatchObject({ status: 'deleted' });
    const b = await offboarded({ offboarding: { mode: 'disable-only' } });
    expect(b.h.wecom.users.get('leaver')!.enable).toBe(0);
    expect(b.h.state.records.get('user:leaver')).toMatchObject({ status: 'disabled', disabledBy: 'mailbox' });
    expect(b.h.state.records.get('user:leaver')!.deleteAfter).toBeUndefined();
  });

  it('mailbox deleted (gone) → offboarding too', async () => {
    const h = harness();
    h.addUser({ userid: 'del' });
    await h.sync('del', 'create_user');
    const id = h.account('del')[0]!.id;
    h.mailbox.accounts.delete(id);
    await h.syncSubject(`mailbox:graph:${id}`, 'deleted');
    expect(h.wecom.users.get('del')!.enable).toBe(0);
    expect(h.state.records.get('user:del')).toMatchObject({ status: 'pending-delete' });
  });

  it('rehire: the member was deleted and is recreated (create_user) → mailbox re-enabled, state reset', async () => {
    const { h, id } = await offboarded({ offboarding: { mode: 'delete' } });
    h.addUser({ userid: 'leaver' });
    await h.sync('leaver', 'create_user');
    expect(h.account('leaver')).toHaveLength(1);
    expect(h.mailbox.accounts.get(id)!.enabled).toBe(true);
    expect(h.wecom.users.get('leaver')!.enable).toBe(1);
    expect(h.state.records.get('user:leaver')).toMatchObject({ status: 'active' });
    expect(h.audit.records.some((r) => r.action === 'enable' && r.target === 'mailbox' && /rehire/.test(r.reason ?? ''))).toBe(true);
  });
});

describe('subjects that are not a person', () => {
  it('an account without employeeId is never touched; the skip is audited once', async () => {
    const h = harness();
    h.mailbox.accounts.set('ext-1', { id: 'ext-1', enabled: true, email: 'room@example.com', displayName: 'Room' });
    await h.syncSubject('mailbox:graph:ext-1', 'updated');
    const again = await h.syncSubject('mailbox:graph:ext-1', 'updated');
    expect(again.actions).toEqual(['skip']);
    expect(h.mailbox.writes).toEqual([]);
    expect(h.audit.records).toHaveLength(1);
    expect(h.audit.records[0]).toMatchObject({ subject: 'mailbox:graph:ext-1', action: 'skip', reason: 'not managed: no employeeId link' });
  });

  it('an enabled account whose employeeId is not in WeCom and never synced is left alone', async () => {
    const h = harness();
    h.mailbox.accounts.set('x', { id: 'x', employeeId: 'HR-0042', enabled: true, email: 'x@example.com' });
    const out = await h.syncSubject('mailbox:graph:x');
    expect(out.actions).toEqual(['skip']);
    expect(h.mailbox.writes).toEqual([]);
  });

  it('the stored account lost its employeeId link → left alone, not treated as offboarded', async () => {
    const h = harness();
    h.addUser({ userid: 'link' });
    await h.sync('link', 'create_user');
    const id = h.account('link')[0]!.id;
    h.mailbox.admin(id, { employeeId: undefined, enabled: false });
    h.wecom.writes.length = 0;
    const out = await h.sync('link', 'update_user');
    expect(out.actions).toEqual(['skip']);
    expect(out.reason).toMatch(/no longer carries this employeeId/);
    expect(h.wecom.writes).toEqual([]);
  });

  it('address subject (email-only webhook) resolves through the address key', async () => {
    const h = harness();
    h.addUser({ userid: 'web' });
    await h.sync('web', 'create_user');
    const key = (email: string) => (email === 'web@example.com' ? 'a'.repeat(64) : 'b'.repeat(64));
    h.mailbox.admin(h.account('web')[0]!.id, { enabled: false });
    const out = await h.syncSubject(`mailbox:address:${'a'.repeat(64)}`, 'mailbox.disabled', { addressKey: key });
    expect(out.resolved).toBe('user:web');
    expect(h.wecom.users.get('web')!.enable).toBe(0);
    const miss = await h.syncSubject(`mailbox:address:${'c'.repeat(64)}`, 'mailbox.disabled', { addressKey: key });
    expect(miss).toMatchObject({ actions: ['skip'], reason: 'address matches no mailbox account' });
  });

  it('subscription lifecycle → the injected hook is called', async () => {
    const h = harness();
    const calls: string[] = [];
    await h.syncSubject('mailbox:graph:subscription', 'graph.lifecycle.reauthorizationRequired', {
      onSubscriptionLifecycle: async (m) => void calls.push(m.hint ?? ''),
    });
    expect(calls).toEqual(['graph.lifecycle.reauthorizationRequired']);
  });
});

describe('dry run', () => {
  it('reads, decides and audits with outcome dry-run, but writes nothing anywhere', async () => {
    const h = harness();
    h.addUser({ userid: 'sim', mobile: MOBILE });
    const out = await h.sync('sim', 'create_user', { dryRun: true });
    expect(out.changed).toBe(true);
    expect(h.mailbox.accounts.size).toBe(0);
    expect(h.wecom.writes).toEqual([]);
    expect(h.state.records.size).toBe(0);
    expect(h.state.claims.size).toBe(0);
    expect(h.audit.records.map((r) => r.outcome)).toEqual(['dry-run', 'dry-run', 'dry-run']);
    expect(h.audit.records.map((r) => r.action)).toEqual(['disable', 'create', 'enable']);
  });
});
