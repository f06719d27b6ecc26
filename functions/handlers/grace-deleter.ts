/**
 * Scheduled Lambda (EventBridge, daily): deletes WeCom members whose mailbox offboarding grace
 * period has passed (sync/grace.ts). Thin: wiring + one call. An event `{ "confirm": true }`
 * (an operator's manual run) passes the deletion guard.
 */
import middy from '@middy/core';
import type { EngineDeps } from '../sync/context';
import { deleteDueMembers, type GraceRunResult } from '../sync/grace';

export interface GraceDeleterDeps {
  engineDeps: () => Promise<EngineDeps>;
}

export function createGraceDeleterHandler(deps: GraceDeleterDeps) {
  return middy(async (event: { confirm?: boolean; operator?: string } = {}): Promise<GraceRunResult> => {
    return deleteDueMembers(await deps.engineDeps(), {
      confirmed: event?.confirm === true,
      operator: typeof event?.operator === 'string' ? event.operator : 'grace-deleter',
    });
  });
}

const graceHandler = createGraceDeleterHandler({
  engineDeps: async () => (await import('./wiring')).awsEngineDeps(),
});

export const handler = async (event: { confirm?: boolean; operator?: string } = {}, context: Parameters<typeof graceHandler>[1]) => {
  try {
    return await graceHandler(event, context);
  } finally {
    (await import('./wiring')).flushMetrics();
  }
};
