/**
 * How many round trips a run waits for, one after another: every port call (WeCom, mailbox,
 * state, audit) takes one tick of a logical clock, so the clock's reading when the run ends is
 * the number of sequential round trips on its critical path. A logical clock, not wall time:
 * the count must not depend on how busy the machine is (a wall-clock version of this test
 * failed on a loaded CI host with 7 "trips" for a 6-trip run). A warm worker is modelled: the
 * department tree and the group ids are cached (the Graph adapter caches a group id per path).
 */
import { describe, expect, it } from 'vitest';
import type { EngineDeps } from '../../functions/sync/context';
import { harness, type Harness } from '../support/engine-harness';

/**
 * Calls started while the process has nothing else to do share a tick: once every microtask has
 * run (setImmediate fires only then), the clock advances to the earliest pending call's end
 * and completes every call due then, exactly as equal latencies would in real time.
 */
class LogicalClock {
  now = 0;
  private pending: { at: number; done: () => void }[] = [];
  private scheduled = false;

  roundTrip(): Promise<void> {
    return new Promise((done) => {
      this.pending.push({ at: this.now + 1, done });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.tick());
  }

  private tick(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    this.now = Math.min(...this.pending.map((p) => p.at));
    const due = this.pending.filter((p) => p.at === this.now);
    this.pending = this.pending.filter((p) => p.at !== this.now);
    for (const p of due) p.done();
    if (this.pending.length > 0) this.schedule();
  }
}

/** Group paths whose id the (warm) process has cached, as the Graph adapter does per path. */
const knownGroups = new Set<string>();

function withLatency(h: Harness, clock: LogicalClock): { deps: EngineDeps; calls: string[] } {
  const calls: string[] = [];
  const slow = <T extends object>(name: string, port: T, free: string[] = []): T =>
    new Proxy(port, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function' || free.includes(String(prop))) return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          const cached = prop === 'ensureGroup' && knownGroups.has(String(args[0]));
          if (prop === 'ensureGroup') knownGroups.add(String(args[0]));
          if (!cached) {
            calls.push(`${name}.${String(prop)}`);
            await clock.roundTrip();
          }
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      },
    });
  return {
    calls,
    deps: { ...h.deps, wecom: slow('wecom', h.wecom), mailbox: slow('mailbox', h.mailbox), state: slow('state', h.state), audit: slow('audit', h.audit) },
  };
}

async function roundTrips(h: Harness, run: (deps: EngineDeps) => Promise<unknown>): Promise<{ trips: number; calls: number }> {
  const clock = new LogicalClock();
  const { deps, calls } = withLatency(h, clock);
  await run(deps);
  return { trips: clock.now, calls: calls.length };
}

describe('sequential round trips of a run (critical path)', () => {
  it('create_user with the onboarding gate: at most 8', async () => {
    const h = harness();
    // Warm up: the department tree and the group of the department are cached.
    h.addUser({ userid: 'warm', mobile: '13900139000' });
    await roundTrips(h, (deps) => h.syncSubject('user:warm', 'create_user', deps));
    h.addUser({ userid: 'newhire', mobile: '13800138000' });
    const { trips, calls } = await roundTrips(h, (deps) => h.syncSubject('user:newhire', 'create_user', deps));
    expect(h.account('newhire')).toHaveLength(1);
    expect(h.wecom.users.get('newhire')!.enable).toBe(1);
    expect(h.audit.actions('user:newhire')).toEqual(['disable:wecom:ok', 'create:mailbox:ok', 'enable:wecom:ok']);
    expect(trips).toBeLessThanOrEqual(8);
    // Work is not skipped to get there: every call is still made, some side by side.
    expect(calls).toBeGreaterThan(trips + 3);
  });

  it('a one-field profile update: at most 6 (read, account by id, intent, PATCH, its audit, outcome)', async () => {
    const h = harness();
    h.addUser({ userid: 'u1' });
    await h.sync('u1', 'create_user');
    h.wecomAdmin('u1', { position: 'Lead' });
    const { trips } = await roundTrips(h, (deps) => h.syncSubject('user:u1', 'update_user', deps));
    expect(h.account('u1')[0]!.jobTitle).toBe('Lead');
    expect(trips).toBeLessThanOrEqual(6);
  });
});
