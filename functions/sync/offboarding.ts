/**
 * Mailbox offboarding: the mailbox was disabled or deleted (the mailbox side owns the account
 * lifecycle), so the WeCom member goes too — by default disabled at once and deleted after a
 * grace period (grace.ts), so an upstream glitch or a mistaken disable can be undone.
 */
import type { IntentOutcome, StateRecord } from '../store/ports';
import type { WecomUser } from '../wecom/contacts';
import type { RunContext } from './context';
import { memberState } from './decide';
import { putState } from './state-record';
import { releaseAll } from './claims';
import { perform, step, withOutcome } from './intent';

const DAY_MS = 86_400_000;

export type OffboardingMode = 'disable-then-delete' | 'delete' | 'disable-only';

export async function offboardMember(ctx: RunContext, userid: string, w: WecomUser, s: StateRecord, mailboxGone: boolean): Promise<void> {
  const { config, wecom } = ctx.deps;
  const mode: OffboardingMode = config.offboarding?.mode ?? 'disable-then-delete';
  const graceDays = config.offboarding?.graceDays ?? 30;
  const now = ctx.deps.now();
  const why = mailboxGone ? 'mailbox deleted' : 'mailbox disabled';

  const offboardedAt = s.offboardedAt ?? now.toISOString();
  if (mode === 'delete') {
    const outcome: IntentOutcome = { set: { status: 'deleted', disabledBy: 'mailbox', offboardedAt }, clear: ['deleteAfter'], releaseClaims: true };
    const rec = await perform(ctx, s, [step({ action: 'delete', target: 'wecom', reason: `offboarding: ${why}` }, { wecom: 'absent' }, () => wecom.deleteUser(userid))], outcome);
    await releaseAll(ctx, s);
    await putState(ctx, withOutcome(rec, outcome));
    return;
  }

  const steps =
    memberState(w) === 'enabled'
      ? [
          step(
            {
              action: 'disable',
              target: 'wecom',
              changes: [{ field: 'enabled', old: true, new: false }],
              reason: `offboarding: ${why}${mode === 'disable-then-delete' ? `; member deleted after ${graceDays} days unless the mailbox is re-enabled` : ''}`,
            },
            { wecom: 'disabled' },
            () => wecom.updateUser(userid, { enable: 0 }),
          ),
        ]
      : [];
  const outcome: IntentOutcome =
    mode === 'disable-then-delete'
      ? { set: { status: 'pending-delete', disabledBy: 'mailbox', offboardedAt, deleteAfter: new Date(Date.parse(offboardedAt) + graceDays * DAY_MS).toISOString() } }
      : { set: { status: 'disabled', disabledBy: 'mailbox', offboardedAt }, clear: ['deleteAfter'] };
  const rec = await perform(ctx, s, steps, outcome);
  await putState(ctx, withOutcome(rec, outcome));
}
