/**
 * The sync engine's one entry point: converge one subject. Used by the queue worker for
 * every event, and by reconcile for repairs (operator 'reconcile', optionally dry run).
 *
 * A concurrent run on the same subject (a reconcile repair racing the worker) shows up as a
 * VersionConflictError on the state write; the whole subject is simply re-run — re-reading
 * both sides converges — a bounded number of times before the error goes back to the queue.
 */
import type { SyncMessage } from '../queue/messages';
import { VersionConflictError } from '../store/ports';
import { log } from '../core/log';
import { RunContext, type EngineDeps, type SyncOutcome } from './context';
import { syncParty } from './party';
import { syncPerson } from './person';
import { resolveSubject } from './resolve';
import { linkAccount, prepareBirth } from './birth';
import { userSubject } from '../core/model';

export type { EngineDeps, SyncOutcome, EngineMetrics } from './context';

const MAX_ATTEMPTS = 3;

export async function syncSubject(message: SyncMessage, deps: EngineDeps): Promise<SyncOutcome> {
  // What a lost attempt already did (and audited) still happened: the outcome reports it,
  // not only the re-run that found everything converged.
  const earlier: RunContext[] = [];
  for (let attempt = 1; ; attempt++) {
    const contexts: RunContext[] = [];
    try {
      const outcome = await runOnce(message, deps, contexts);
      // Nothing is acknowledged before its audit records are written.
      for (const c of contexts) await c.flushAudit();
      return merge(earlier, outcome);
    } catch (err) {
      // Let a failed attempt's records land (or fail) before the next attempt chains after them.
      for (const c of contexts) await c.flushAudit().catch(() => undefined);
      if (err instanceof VersionConflictError && attempt < MAX_ATTEMPTS) {
        deps.metrics?.count('versionConflict');
        earlier.push(...contexts);
        continue;
      }
      throw err;
    }
  }
}

function merge(earlier: RunContext[], outcome: SyncOutcome): SyncOutcome {
  const before = earlier.flatMap((c) => c.actions);
  if (!before.length) return outcome;
  const last = outcome.actions.filter((a) => a !== 'noop');
  return {
    ...outcome,
    actions: [...before, ...last],
    changed: outcome.changed || earlier.some((c) => c.changed),
    ...(earlier.some((c) => c.changes.length) ? { changes: [...earlier.flatMap((c) => c.changes), ...(outcome.changes ?? [])] } : {}),
  };
}

async function runOnce(message: SyncMessage, deps: EngineDeps, contexts: RunContext[]): Promise<SyncOutcome> {
  const probe = new RunContext(deps, message, message.subject);
  contexts.push(probe);
  const r = await resolveSubject(probe, message.subject);
  switch (r.kind) {
    case 'user': {
      const ctx = new RunContext(deps, message, userSubject(r.userid));
      contexts.push(ctx);
      await syncPerson(ctx, r.userid);
      return ctx.outcome();
    }
    case 'birth': {
      const born = await prepareBirth(probe, r.account);
      if ('userid' in born) {
        const ctx = new RunContext(deps, message, userSubject(born.userid));
        contexts.push(ctx);
        await linkAccount(ctx, born.userid, r.account);
        await syncPerson(ctx, born.userid);
        return ctx.outcome();
      }
      if ('refused' in born) await probe.audit({ action: 'refused', target: 'mailbox', outcome: 'refused', reason: born.refused });
      else deps.metrics?.count('outOfScope');
      probe.reason ??= 'refused' in born ? born.refused : born.outOfScope;
      return probe.outcome();
    }
    case 'party':
      await syncParty(probe, r.id);
      return probe.outcome();
    case 'subscription':
      if (deps.onSubscriptionLifecycle) await deps.onSubscriptionLifecycle(message);
      else log.info('subscription lifecycle event ignored: no handler wired', { subject: message.subject, eventId: message.eventId });
      return probe.outcome();
    case 'unresolved':
      if (r.auditOnce) {
        // An unmanaged account changes often; one audit record says we leave it alone.
        const past = await deps.audit.bySubject(message.subject, { limit: 20 });
        if (!past.some((a) => a.action === 'skip')) await probe.audit({ action: 'skip', reason: r.reason });
        else {
          deps.metrics?.count('skip');
          probe.actions.push('skip');
        }
      } else {
        await probe.audit({ action: 'skip', reason: r.reason });
      }
      probe.reason ??= r.reason;
      return probe.outcome();
  }
}
