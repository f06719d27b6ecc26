/**
 * The sync engine wired to the in-memory port fakes (sync-fakes.ts) and the REAL domain
 * modules (normalize, policy, diff, mapping, department tree, runtime config): what the
 * engine unit tests drive.
 */
import { parseRuntimeConfig } from '../../functions/config/runtime';
import type { SyncMessage } from '../../functions/queue/messages';
import { CachedDepartmentTree } from '../../functions/sync/departments';
import { syncSubject, type EngineDeps } from '../../functions/sync/engine';
import type { Subject } from '../../functions/core/model';
import type { WecomUser } from '../../functions/wecom/contacts';
import { FakeAudit, FakeCipher, FakeMailbox, FakeState, FakeWecom } from './sync-fakes';

export const DEPTS = [
  { id: 1, name: 'Root', parentid: 0 },
  { id: 2, name: '技术部', parentid: 1 },
  { id: 3, name: '研发组', parentid: 2 },
  { id: 4, name: '财务部', parentid: 1 },
  { id: 5, name: '市场部', parentid: 1 },
];

export function harness(config: Record<string, unknown> = {}) {
  const wecom = new FakeWecom();
  wecom.departments = structuredClone(DEPTS);
  const mailbox = new FakeMailbox();
  const state = new FakeState();
  const audit = new FakeAudit();
  const cipher = new FakeCipher();
  const counts: Record<string, number> = {};
  const enqueued: SyncMessage[] = [];
  let clock = new Date('2026-11-01T00:00:00Z');
  let seq = 0;
  const deps: EngineDeps = {
    wecom,
    mailbox,
    state,
    audit,
    cipher,
    departments: new CachedDepartmentTree(() => wecom.listDepartments(), { maxAgeMs: 60_000 }),
    config: parseRuntimeConfig(JSON.stringify({ provider: 'graph', mailDomain: 'example.com', ...config })),
    now: () => clock,
    metrics: { count: (name: string, n = 1) => void (counts[name] = (counts[name] ?? 0) + n) },
    stateTable: 'state',
    enqueue: async (msgs) => void enqueued.push(...msgs),
  };
  const message = (subject: string, hint?: string, extra: Partial<SyncMessage> = {}): SyncMessage => ({
    v: 1,
    subject: subject as Subject,
    source: 'wecom',
    eventId: `evt-${++seq}`,
    ...(hint ? { hint } : {}),
    operator: 'wecom-callback',
    receivedAt: clock.toISOString(),
    ...extra,
  });
  return {
    wecom,
    mailbox,
    state,
    audit,
    cipher,
    counts,
    enqueued,
    deps,
    message,
    advance(days: number) {
      clock = new Date(clock.getTime() + days * 86_400_000);
    },
    now: () => clock,
    sync: (userid: string, hint?: string, over: Partial<EngineDeps> = {}) => syncSubject(message(`user:${userid}`, hint), { ...deps, ...over }),
    syncSubject: (subject: string, hint?: string, over: Partial<EngineDeps> = {}) => syncSubject(message(subject, hint), { ...deps, ...over }),
    addUser(u: Partial<WecomUser> & { userid: string }) {
      const user: WecomUser = { name: u.userid.toUpperCase(), department: [3], main_department: 3, enable: 1, status: 1, position: 'Engineer', ...u };
      wecom.users.set(u.userid, user);
      return user;
    },
    /** An admin-side WeCom change (not one of our writes). */
    wecomAdmin(userid: string, patch: Partial<WecomUser>) {
      Object.assign(wecom.users.get(userid)!, patch);
    },
    account(userid: string) {
      return [...mailbox.accounts.values()].filter((a) => a.employeeId === userid);
    },
  };
}

export type Harness = ReturnType<typeof harness>;
