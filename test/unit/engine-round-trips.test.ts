/**
 * How many round trips a run waits for, one after another: every port call (WeCom, mailbox,
 * state, audit) is given the same latency, so the run's wall time divided by it counts the
 * sequential round trips on its critical path. A warm worker is modelled: the department
 * tree and the group ids are cached (the Graph adapter caches a group id per path).
 */
import { describe, expect, it } from 'vitest';
import type { EngineDeps } from '../../functions/sync/context';
import { harness, type Harness } from '../support/engine-harness';

const LATENCY_MS = 25;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Group paths whose id the (warm) process has cached, as the Graph adapter does per path. */
const knownGroups = new Set<string>();

function withLatency(h: Harness): { deps: EngineDeps; calls: string[] } {
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
            await sleep(LATENCY_MS);
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
  const { deps, calls } = withLatency(h);
  const t0 = performance.now();
  await run(deps);
  return { trips: Math.round((performance.now() - t0) / LATENCY_MS), calls: calls.length };
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
