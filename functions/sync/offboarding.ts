/**
 * Mailbox offboarding: the mailbox was disabled or deleted (the mailbox side owns the account
 * lifecycle), so the WeCom member goes too — by default disabled at once and deleted after a
 * grace period (grace.ts), so an upstream glitch or a mistaken disable can be undone.
 */
import type { StateRecord } from '../store/ports';
import type { WecomUser } from '../wecom/contacts';
import type { RunContext } from './context';
import { memberState } from './decide';
import { putState } from './state-record';
import { releaseAll } from './claims';

const DAY_MS = 86_400_000;

export type OffboardingMode = 'disable-then-delete' | 'delete' | 'disable-only';

export async function offboardMember(ctx: RunContext, userid: string, w: WecomUser, s: StateRecord, mailboxGone: boolean): Promise<void> {
  const { config, wecom } = ctx.deps;
  const mode: OffboardingMode = config.offboarding?.mode ?? 'disable-then-delete';
  const graceDays = config.offboarding?.graceDays ?? 30;
  const now = ctx.deps.now();
  const why = mailboxGone ? 'mailbox deleted' : 'mailbox disabled';

  if (mode === 'delete') {
    await ctx.write(() => wecom.deleteUser(userid), undefined);
    await ctx.audit({ action: 'delete', target: 'wecom', reason: `offboarding: ${why}` });
    await releaseAll(ctx, s);
    await putState(ctx, { ...s, status: 'deleted', disabledBy: 'mailbox', offboardedAt: s.offboardedAt ?? now.toISOString(), deleteAfter: undefined });
    return;
  }

  if (memberState(w) === 'enabled') {
    await ctx.write(() => wecom.updateUser(userid, { enable: 0 }), undefined);
    await ctx.audit({
      action: 'disable',
      target: 'wecom',
      changes: [{ field: 'enabled', old: true, new: false }],
      reason: `offboarding: ${why}${mode === 'disable-then-delete' ? `; member deleted after ${graceDays} days unless the mailbox is re-enabled` : ''}`,
    });
  }
  const offboardedAt = s.offboardedAt ?? now.toISOString();
  await putState(ctx, {
    ...s,
    status: mode === 'disable-then-delete' ? 'pending-delete' : 'disabled',
    disabledBy: 'mailbox',
    offboardedAt,
    deleteAfter: mode === 'disable-then-delete' ? new Date(Date.parse(offboardedAt) + graceDays * DAY_MS).toISOString() : undefined,
  });
}
