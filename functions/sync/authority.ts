/**
 * Which way each field flows, resolved once from the configuration: the explicit
 * `profile.authority.<field>`, else the lifecycle source — with `lifecycle.source: 'mailbox'`
 * (AD / Microsoft 365 as the directory of record) every field flows from the mailbox to
 * WeCom, otherwise from WeCom to the mailbox. 'none' never touches the field on either side.
 */
import type { RuntimeConfig } from '../config/runtime';
import { CONTACT_FIELDS, type ContactField } from '../core/model';

export type Direction = 'wecom' | 'mailbox' | 'none';
export type Authority = Record<ContactField, Direction>;

export function resolveAuthority(config: Pick<RuntimeConfig, 'profile' | 'lifecycle'>): Authority {
  const fallback: Direction = config.lifecycle?.source === 'mailbox' ? 'mailbox' : 'wecom';
  return Object.fromEntries(CONTACT_FIELDS.map((f) => [f, config.profile.authority?.[f] ?? fallback])) as Authority;
}

/** The fields whose value WeCom owns (written to the mailbox). */
export function wecomOwned(a: Authority): ContactField[] {
  return CONTACT_FIELDS.filter((f) => a[f] === 'wecom');
}

/** The fields whose value the mailbox owns (written to WeCom, WeCom edits put back). */
export function mailboxOwned(a: Authority): ContactField[] {
  return CONTACT_FIELDS.filter((f) => a[f] === 'mailbox');
}
