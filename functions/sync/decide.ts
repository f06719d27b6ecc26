/**
 * The person decision table: given what WeCom says (w), what the mailbox says (m) and what
 * we last stored (s), what converges the pair? Pure, so every row is unit-tested.
 *
 *   W = WeCom member: absent (deleted, errcode 60111) | enabled | disabled
 *   M = mailbox account: missing (never found) | gone (we knew its id, it is deleted / soft-
 *       deleted) | enabled | disabled
 *   s.disabledBy: which side's action disabled the pair ('wecom' | 'mailbox' | 'gate')
 *
 *  #  | W        | M               | condition                                   | decision
 *  ---+----------+-----------------+---------------------------------------------+------------------------------------------
 *  1  | absent   | missing         |                                             | noop
 *  2  | absent   | enabled         | no state (never synced by us)               | skip: not managed (hands off)
 *  3  | absent   | enabled         | state exists                                | disable-mailbox (disabledBy 'wecom', status 'disabled')
 *  4  | absent   | disabled / gone | state not yet 'disabled' / 'deleted'        | settle-deleted (state only: status 'deleted', claims released)
 *  5  | absent   | disabled / gone | otherwise (our own echo)                    | noop
 *  6  | present  | missing / gone  | rehire: hint create_user, s.status 'deleted'| create (gate applies)
 *  7  | present  | gone            | s.disabledBy = 'mailbox', W disabled, already offboarded by us | noop (echo)
 *  8  | present  | gone            | s.disabledBy ≠ 'wecom', ≠ 'gate'            | offboard-member (per offboarding.mode)
 *  9  | present  | missing / gone  | W enabled, or W disabled by the gate        | create (gate when hint create_user or no state)
 * 10  | present  | missing / gone  | W disabled otherwise                        | noop (nothing to provision for a disabled member)
 * 11  | present  | disabled        | rehire: hint create_user, s.status 'deleted'| enable-mailbox (reset state) + profile
 * 20  | present  | disabled        | s.disabledBy = 'gate', the account is the one we linked (restored) | enable-mailbox + enable-member + profile
 * 21  | present  | disabled        | s.disabledBy = 'gate', otherwise            | noop: stays gated (reconcile reports why)
 *
 * With lifecycle.source 'mailbox' (people are born in the mailbox; an account carries its
 * WeCom userid in employeeId), checked first:
 * 22  | absent   | enabled         |                                             | create-member (disabled; enabled once complete)
 * 23  | disabled | enabled         | s.disabledBy = 'incomplete'                 | enable-member once the record is complete, + profile
 * 24  | present  | missing         | never linked                                | noop: born in WeCom, not ours to provision
 * 12  | enabled  | disabled        | s.disabledBy = 'wecom'                      | enable-mailbox + profile
 * 13  | disabled | disabled        | s.disabledBy = 'wecom'                      | noop
 * 14  | disabled | disabled        | s.disabledBy = 'mailbox' (already offboarded)| noop (echo of our own write)
 * 15  | present  | disabled        | otherwise                                   | offboard-member (MAILBOX OFFBOARDING)
 * 16  | disabled | enabled         | s.disabledBy = 'mailbox' (re-enabled within grace) | enable-member (clear offboarding) + profile
 * 17  | disabled | enabled         | s.disabledBy = 'gate' (mailbox exists now)  | enable-member + profile
 * 18  | disabled | enabled         | otherwise (a WeCom admin disabled the member)| disable-mailbox (disabledBy 'wecom')
 * 19  | enabled  | enabled         |                                             | profile (field diff; no change → noop, no write)
 *
 * The onboarding gate's disable is never an offboarding: with s.disabledBy = 'gate' a gone
 * or disabled account leads to provisioning (rows 9, 20) or waiting (row 21), never to rows
 * 8 / 15 — which would disable the new hire for good and start a grace period.
 *
 * We never delete a mailbox account: the mailbox side owns the account lifecycle; a WeCom
 * deletion only disables it, and deleting it is the mailbox administrators' call.
 */
import type { StateRecord } from '../store/ports';
import type { MailboxAccount } from '../mailbox/directory';
import type { WecomUser } from '../wecom/contacts';

export type MemberState = 'absent' | 'enabled' | 'disabled';
export type AccountState = 'missing' | 'gone' | 'enabled' | 'disabled';

export type Decision =
  | { row: number; kind: 'noop' }
  | { row: number; kind: 'skip'; reason: string }
  | { row: number; kind: 'disable-mailbox' }
  | { row: number; kind: 'settle-deleted' }
  | { row: number; kind: 'create'; gate: boolean; rehire: boolean }
  | { row: number; kind: 'offboard-member' }
  | { row: number; kind: 'enable-mailbox'; rehire: boolean; andMember?: boolean }
  | { row: number; kind: 'enable-member'; cause: 'mailbox' | 'gate' | 'complete' }
  | { row: number; kind: 'create-member' }
  | { row: number; kind: 'profile' };

export function memberState(w: WecomUser | undefined): MemberState {
  if (!w) return 'absent';
  if (w.enable === 0) return 'disabled';
  if (w.enable === undefined && w.status === 2) return 'disabled';
  return 'enabled';
}

export function accountState(m: MailboxAccount | undefined, s: StateRecord | undefined): AccountState {
  if (!m) return s?.targetId ? 'gone' : 'missing';
  if (m.deleted) return 'gone';
  return m.enabled ? 'enabled' : 'disabled';
}

export interface DecideInput {
  w: WecomUser | undefined;
  m: MailboxAccount | undefined;
  s: StateRecord | undefined;
  hint?: string;
  gate: boolean;
  /** Where people are born (lifecycle.source); default 'wecom'. */
  source?: 'wecom' | 'mailbox';
}

export function decide({ w, m, s, hint, gate, source }: DecideInput): Decision {
  const W = memberState(w);
  const M = accountState(m, s);
  const by = s?.disabledBy;
  if (source === 'mailbox') {
    if (W === 'absent' && M === 'enabled') return { row: 22, kind: 'create-member' };
    if (W === 'disabled' && M === 'enabled' && by === 'incomplete') return { row: 23, kind: 'enable-member', cause: 'complete' };
    if (W !== 'absent' && M === 'missing') return { row: 24, kind: 'noop' };
  }
  const rehire = hint === 'create_user' && s?.status === 'deleted';
  const offboardedByUs = by === 'mailbox' && (s?.status === 'pending-delete' || s?.status === 'disabled' || s?.status === 'deleted');

  if (W === 'absent') {
    if (M === 'missing') return { row: 1, kind: 'noop' };
    if (M === 'enabled') {
      if (!s) return { row: 2, kind: 'skip', reason: 'not managed: no WeCom member and no sync state for this employeeId' };
      return { row: 3, kind: 'disable-mailbox' };
    }
    if (s && s.status !== 'disabled' && s.status !== 'deleted') return { row: 4, kind: 'settle-deleted' };
    return { row: 5, kind: 'noop' };
  }

  if (M === 'missing' || M === 'gone') {
    const gateApplies = gate && (hint === 'create_user' || !s || rehire);
    if (rehire) return { row: 6, kind: 'create', gate: gateApplies, rehire: true };
    if (M === 'gone' && by !== 'wecom' && by !== 'gate') {
      if (W === 'disabled' && offboardedByUs) return { row: 7, kind: 'noop' };
      return { row: 8, kind: 'offboard-member' };
    }
    if (W === 'enabled' || by === 'gate') return { row: 9, kind: 'create', gate: gateApplies, rehire: false };
    return { row: 10, kind: 'noop' };
  }

  if (M === 'disabled') {
    if (rehire) return { row: 11, kind: 'enable-mailbox', rehire: true };
    if (by === 'gate') return s?.targetId === m?.id ? { row: 20, kind: 'enable-mailbox', rehire: false, andMember: true } : { row: 21, kind: 'noop' };
    if (by === 'wecom') return W === 'enabled' ? { row: 12, kind: 'enable-mailbox', rehire: false } : { row: 13, kind: 'noop' };
    if (W === 'disabled' && offboardedByUs) return { row: 14, kind: 'noop' };
    return { row: 15, kind: 'offboard-member' };
  }

  // M enabled
  if (W === 'disabled') {
    if (by === 'mailbox') return { row: 16, kind: 'enable-member', cause: 'mailbox' };
    if (by === 'gate') return { row: 17, kind: 'enable-member', cause: 'gate' };
    return { row: 18, kind: 'disable-mailbox' };
  }
  return { row: 19, kind: 'profile' };
}
