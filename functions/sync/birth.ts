/**
 * A person born in the mailbox (lifecycle.source 'mailbox'): an account in scope that carries
 * no WeCom userid yet gets one — derived by the userid rule, checked against everything that
 * could make it someone else's — and is linked to it (employeeId). The person's own run then
 * creates the WeCom member (decision row 22), so a crash between the link and the creation
 * converges: the redelivered event finds the account linked and creates the member.
 *
 * Collisions are refused and reported, never resolved by a suffix: a userid derived twice
 * (two accounts, one local part), a userid a WeCom member already has, a userid another
 * account already carries.
 */
import type { MailboxAccount } from '../mailbox/directory';
import type { IntentOutcome } from '../store/ports';
import { userSubject } from '../core/model';
import type { EngineDeps, RunContext } from './context';
import { isUnder } from './departments';
import { perform, step, withOutcome } from './intent';
import { newRecord, putState } from './state-record';

/** WeCom userids: 1–64 of letters, digits and _ - . @ (lower-case here). */
const WECOM_USERID = /^[a-z0-9_.@-]{1,64}$/;

export type Birth = { userid: string } | { refused: string } | { outOfScope: string };

/** The userid the rule gives for the account, or why it gives none. */
export function deriveUserid(rule: string, account: MailboxAccount): { userid: string } | { refused: string } {
  const local = account.email?.split('@')[0];
  let missing: string | undefined;
  const userid = rule
    .replace(/\{localpart\}/g, () => local ?? ((missing = 'an address'), ''))
    .replace(/\{mailNickname\}/g, () => account.mailNickname ?? ((missing = 'a mailNickname'), ''))
    .toLowerCase();
  if (missing) return { refused: `cannot derive a WeCom userid: the account has no ${missing}` };
  if (!WECOM_USERID.test(userid)) return { refused: `cannot derive a WeCom userid: '${userid}' is not 1–64 letters, digits, _ - . @ (rule ${rule})` };
  return { userid };
}

/** Is the account a person to create in WeCom (lifecycle.mailboxScope)? Why not, if not. Reconcile asks too. */
export async function outOfScope(deps: Pick<EngineDeps, 'config' | 'mailbox'>, account: MailboxAccount): Promise<string | undefined> {
  const scope = deps.config.lifecycle.mailboxScope;
  if (!account.enabled || account.deleted) return 'the account is not enabled';
  if (account.kind && account.kind !== 'member') return `a ${account.kind} account is never a person to create`;
  if (!account.email) return 'the account has no mailbox address';
  if (scope.departments?.length && !scope.departments.some((p) => account.department && isUnder(account.department, p))) {
    return 'outside lifecycle.mailboxScope.departments';
  }
  if (scope.groupIds?.length) {
    if (!deps.mailbox.memberOf) return 'lifecycle.mailboxScope.groupIds is set but this mailbox system has no groups';
    const groups = await deps.mailbox.memberOf(account.id);
    if (!scope.groupIds.some((g) => groups.includes(g))) return 'in none of lifecycle.mailboxScope.groupIds';
  }
  return undefined;
}

/**
 * The userid an unlinked account in scope is to get, or why none: run under the account's
 * subject (refusals are audited there by the caller).
 */
export async function prepareBirth(ctx: RunContext, account: MailboxAccount): Promise<Birth> {
  const why = await outOfScope(ctx.deps, account);
  if (why) return { outOfScope: why };
  const derived = deriveUserid(ctx.deps.config.lifecycle.useridRule, account);
  if ('refused' in derived) return derived;
  const { userid } = derived;
  const { wecom, mailbox, state } = ctx.deps;
  // A read-only directory (LDAP without ldap.writes) cannot take the link: its administrators
  // set it, and that change is the event that brings the person in. Refused before any claim.
  if (mailbox.readOnly) {
    return { refused: `the directory is read-only: to create this person in WeCom as '${userid}', set the entry's link attribute (employeeID / employeeNumber) to '${userid}' in the directory; the next poll picks it up` };
  }
  const [member, linked, owner] = await Promise.all([
    wecom.getUser(userid),
    mailbox.findByEmployeeId(userid),
    // Two accounts deriving one userid at the same moment: the first claim wins.
    ctx.dryRun ? Promise.resolve(ctx.subject) : state.claimUnique('userid', userid, ctx.subject),
  ]);
  if (owner !== ctx.subject) return { refused: `userid '${userid}' collides: another mailbox account (${owner}) derives it too` };
  if (linked && linked.id !== account.id) return { refused: `userid '${userid}' collides: mailbox account ${linked.id} already carries it` };
  if (member) return { refused: `userid '${userid}' collides: WeCom already has a member with it (if it is this person, set the account's employeeId to '${userid}' by hand)` };
  return { userid };
}

/**
 * Link the account to its userid, under the person's own subject and through a write-ahead
 * intent: a crash right after the link is audited by the next run (which finds the account
 * by its new employeeId and goes on to create the member).
 */
export async function linkAccount(ctx: RunContext, userid: string, account: MailboxAccount): Promise<void> {
  const link = step(
    { action: 'update', target: 'mailbox', changes: [{ field: 'employeeId', new: userid }], reason: 'mailbox is the source: new account linked to its WeCom userid' },
    { mailbox: 'exists', id: account.id },
    () => ctx.deps.mailbox.update(account.id, { employeeId: userid }),
  );
  const outcome: IntentOutcome = { set: { targetId: account.id } };
  const existing = await ctx.deps.state.get(userSubject(userid));
  const rec = await perform(ctx, existing ?? newRecord(ctx, userid), [link], outcome);
  await putState(ctx, withOutcome(rec, outcome));
}
