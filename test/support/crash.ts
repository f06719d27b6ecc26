/**
 * Crash injection for engine tests: wraps the harness's ports so that the n-th write (to
 * WeCom, the mailbox, the state table or the audit log) completes and THEN the process
 * "dies" (the call throws Crash instead of returning). Every point between two writes is a
 * crash point; running a scenario with n = 0, 1, 2 … visits all of them.
 */
import type { EngineDeps } from '../../functions/sync/context';
import type { Harness } from './engine-harness';

export class Crash extends Error {
  constructor(readonly at: string) {
    super(`simulated crash after ${at}`);
    this.name = 'Crash';
  }
}

const WRITES: Record<string, readonly string[]> = {
  wecom: ['updateUser', 'deleteUser', 'addTagUsers'],
  mailbox: ['create', 'update', 'disable', 'enable', 'delete', 'restore', 'ensureGroup', 'setGroupMembership'],
  state: ['put', 'claimUnique', 'releaseUnique', 'admitDestructive'],
  audit: ['append'],
};

/** Deps whose writes count up; the write numbered `crashAt` (0-based) throws Crash after it is done. */
export function crashingDeps(h: Harness, crashAt = Infinity): { deps: EngineDeps; writes: string[] } {
  const writes: string[] = [];
  const wrap = <T extends object>(name: string, port: T): T =>
    new Proxy(port, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        if (!WRITES[name]!.includes(String(prop))) return value.bind(target);
        return async (...args: unknown[]) => {
          // A dead process writes nothing more (not even the audit of its own failure).
          if (writes.length > crashAt) throw new Crash(`${name}.${String(prop)} (after death)`);
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          const n = writes.push(`${name}.${String(prop)}`) - 1;
          if (n === crashAt) throw new Crash(writes[n]!);
          return result;
        };
      },
    });
  return {
    writes,
    deps: { ...h.deps, wecom: wrap('wecom', h.wecom), mailbox: wrap('mailbox', h.mailbox), state: wrap('state', h.state), audit: wrap('audit', h.audit) },
  };
}

/** What must be the same after a crash and redelivery as after an uninterrupted run. */
export function worldOf(h: Harness) {
  return {
    wecom: [...h.wecom.users.values()].map((u) => ({ userid: u.userid, enable: u.enable, name: u.name, position: u.position, department: u.department })).sort((a, b) => a.userid.localeCompare(b.userid)),
    accounts: [...h.mailbox.accounts.values()]
      .map((a) => ({ employeeId: a.employeeId, enabled: a.enabled, deleted: a.deleted === true, jobTitle: a.jobTitle, mobile: a.mobile, department: a.department, groups: h.mailbox.groupsOf(a.id) }))
      .sort((a, b) => String(a.employeeId).localeCompare(String(b.employeeId))),
    state: [...h.state.records.values()]
      .filter((r) => r.subject.startsWith('user:'))
      .map((r) => ({ subject: r.subject, status: r.status, disabledBy: r.disabledBy, linked: r.targetId !== undefined, intent: r.intent !== undefined, held: r.held?.status })),
    tags: [...h.wecom.tags.entries()].map(([t, set]) => [t, [...set].sort()]),
  };
}

/** The audit trail of external writes, as a multiset: action:target:outcome, sorted. */
export function externalAudit(h: Harness): string[] {
  return h.audit.records
    .filter((r) => r.target === 'mailbox' || r.target === 'wecom')
    .map((r) => `${r.subject} ${r.action}:${r.target}:${r.outcome}`)
    .sort();
}
