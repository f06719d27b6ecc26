/**
 * The chunked reconcile holds pages, not the directory: 20,000 people on each side (port fakes,
 * user/list_id pages of 1,000, mailbox pages of 500), steps of 250, every chunk ended after one
 * step. The job's own count of the person records it held at once stays at a page's size while
 * the run store holds every record; the report is the one of a single pass.
 */
import { describe, expect, it } from 'vitest';
import { MailboxError } from '../../functions/mailbox/directory';
import { MemoryRunStore } from '../../functions/store/run-store';
import { reconcileAll, runReconcileChunk, type ReconcileDeps } from '../../functions/sync/reconcile';
import { harness } from '../support/engine-harness';
import { FakeMailbox } from '../support/sync-fakes';
import { reconcileSingleRun } from '../support/reconcile-single-run';

const N = 20_000;

describe('chunked reconcile: memory bounded by the page, not the directory', () => {
  it(`${N.toLocaleString('en')} people: at most ~1,250 records held at once, all ${N * 2} in the run store; same report as one pass`, async () => {
    const h = harness();
    const mailbox = new FakeMailbox({ pageSize: 500 });
    for (let i = 0; i < N; i++) {
      const userid = `p${String(i).padStart(6, '0')}`;
      const mobile = `+86139${String(10_000_000 + i).slice(-8)}`;
      h.addUser({ userid, mobile, position: i % 97 === 0 ? 'Architect' : 'Engineer' });
      // Every 97th title differs (fields-differ), every 1,000th account is missing (missing-in-mailbox).
      if (i % 1000 === 999) continue;
      mailbox.accounts.set(`acc-${i}`, {
        id: `acc-${i}`,
        employeeId: userid,
        enabled: true,
        displayName: userid.toUpperCase(),
        email: `${userid}@example.com`,
        mailNickname: userid,
        mobile,
        jobTitle: 'Engineer',
        department: '技术部/研发组',
      });
    }
    const deps: ReconcileDeps = { ...h.deps, mailbox, chunking: { pageSize: 250, shards: 8 } };
    const store = new MemoryRunStore();

    let maxHeld = 0;
    let chunks = 0;
    let r = await runReconcileChunk(deps, store, { deadlineMs: 0 });
    for (;;) {
      maxHeld = Math.max(maxHeld, r.maxHeld);
      chunks++;
      if (r.report) break;
      r = await runReconcileChunk(deps, store, { runId: r.runId, deadlineMs: 0 });
    }
    const report = r.report;
    expect(report.counts.wecomPeople).toBe(N);
    expect(report.counts.managedAccounts).toBe(N - N / 1000);
    expect(report.counts.byClass['missing-in-mailbox']).toBe(N / 1000);
    let titles = 0;
    for (let i = 0; i < N; i++) if (i % 97 === 0 && i % 1000 !== 999) titles++;
    expect(report.counts.byClass['fields-differ']).toBe(titles);
    // One list_id page (1,000 ids) and a step's batch (250): never the directory.
    expect(maxHeld).toBeLessThanOrEqual(1_250);
    expect(maxHeld * 10).toBeLessThan(N);
    expect(chunks).toBeGreaterThan((2 * N) / 500);
    // The records are in the store (WeCom + accounts + mobiles + e-mails), not in the job.
    expect(store.size).toBeGreaterThanOrEqual(2 * N + N);

    const single = await reconcileSingleRun({ ...h.deps, mailbox });
    expect(report.counts).toEqual(single.counts);
    expect(report.findings.map((f) => JSON.stringify(f)).sort()).toEqual(single.findings.map((f) => JSON.stringify(f)).sort());
    // reconcileAll in one go agrees.
    expect((await reconcileAll({ ...deps, runStore: new MemoryRunStore() })).counts).toEqual(single.counts);
  }, 240_000);
});

describe('chunked reconcile over a mailbox whose list cursor lives in one process (LDAP)', () => {
  it('a chunk that finds the cursor expired lists again from the start; the report is one pass’s, nothing joined twice', async () => {
    const h = harness();
    const accounts = new FakeMailbox({ pageSize: 5 });
    for (let i = 0; i < 40; i++) {
      const userid = `q${String(i).padStart(3, '0')}`;
      h.addUser({ userid, position: i % 7 === 0 ? 'Architect' : 'Engineer' });
      if (i % 10 === 9) continue;
      accounts.accounts.set(`acc-${i}`, { id: `acc-${i}`, employeeId: userid, enabled: true, displayName: userid.toUpperCase(), email: `${userid}@example.com`, mailNickname: userid, jobTitle: 'Engineer', department: '技术部/研发组' });
    }
    accounts.accounts.set('acc-x', { id: 'acc-x', enabled: true, displayName: 'X', email: 'x@example.com' }); // unmanaged
    /** One "process": cursors it handed out are valid only in it, as LDAP's paged searches. */
    const inProcess = () => {
      const issued = new Set<string>();
      return Object.assign(Object.create(accounts) as FakeMailbox, {
        async listPage(cursor?: string) {
          if (cursor !== undefined && !issued.has(cursor)) throw new MailboxError('cursor from another process', false, 'CursorExpired', undefined, 'invalid');
          const page = await accounts.listPage(cursor);
          if (page.next) issued.add(page.next);
          return page;
        },
      });
    };
    const store = new MemoryRunStore();
    let mailbox = inProcess();
    const deps = () => ({ ...h.deps, mailbox, chunking: { pageSize: 10, shards: 4 } }) as ReconcileDeps;
    // Chunks of one step in the first process, until two mailbox pages are listed …
    let r = await runReconcileChunk(deps(), store, { deadlineMs: 0 });
    let mailboxSteps = 0;
    while (mailboxSteps < 2) {
      if (r.phase === 'mailbox') mailboxSteps++;
      r = await runReconcileChunk(deps(), store, { runId: r.runId, deadlineMs: 0 });
    }
    expect(r.phase).toBe('mailbox');
    // … then the next chunk runs in another process (a new Lambda container) to the end.
    mailbox = inProcess();
    r = await runReconcileChunk(deps(), store, { runId: r.runId, deadlineMs: Date.now() + 60_000 });
    expect(r.report).toBeDefined();
    const single = await reconcileSingleRun({ ...h.deps, mailbox: accounts });
    expect(r.report!.counts).toEqual(single.counts);
    expect(r.report!.findings.map((f) => JSON.stringify(f)).sort()).toEqual(single.findings.map((f) => JSON.stringify(f)).sort());
    expect(r.report!.counts.managedAccounts).toBe(36);
  });
});
