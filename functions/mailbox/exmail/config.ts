/**
 * Tencent Exmail's deployment facts: what it can do (capabilities), the keys of its secret,
 * and the settings block of SYNC_CONFIG (`exmail`, schema in config/runtime.ts).
 *
 * Capabilities, and why:
 * - groups: false. Exmail's org units are its departments, a native tree, and an account's
 *   main department is its `department` attribute (written through update / create, paths
 *   created on demand). Exmail's other grouping, mail groups (`group/*`), are addresses of
 *   their own, have no list call and no "groups of a member" read, and their membership is
 *   replaced wholesale on each update: nothing we could keep idempotent and scoped. So
 *   `ensureGroup(path)` makes the department path exist (the WeCom tree mirrored) and answers
 *   its id; `setGroupMembership` changes nothing; there is no `memberOf`.
 * - restore: false. `user/delete` is final as far as the API goes (the console may restore for
 *   a while — the operation log marks a restored account with remark 1 on its type-20 record —
 *   but no API call does).
 * - changes: 'poll', delta: true. Exmail pushes nothing to us; its operation log
 *   (`log/operation`) is read from a stored cursor on a schedule (feed.ts), with the
 *   reconcile as the safety net.
 */
import type { RuntimeConfig } from '../../config/runtime';
import { MailboxError } from '../directory';
import type { MailboxCapabilities, MailboxSecret } from '../provider';

export type ExmailSettings = RuntimeConfig['exmail'];

export const EXMAIL_CAPABILITIES: Readonly<MailboxCapabilities> = Object.freeze({ groups: false, restore: false, changes: 'poll', delta: true });

/** Local runs: the env var of each secret key (the AWS secret holds the same keys as JSON). */
export const EXMAIL_SECRET_ENV = {
  corpId: 'EXMAIL_CORP_ID',
  /** The 通讯录管理 (contacts) app's secret: accounts and departments. */
  contactsSecret: 'EXMAIL_CONTACTS_SECRET',
  /** The 系统日志 (system log) app's secret: the operation log, i.e. the change feed. */
  logSecret: 'EXMAIL_LOG_SECRET',
} as const;

export interface ExmailCredentials {
  corpId: string;
  contactsSecret: string;
  /** Without it the feed cannot read the log: offboarding in Exmail is then found by the reconcile only. */
  logSecret?: string;
}

/** The Exmail keys of the mailbox secret, or an error naming the missing ones (never a value). */
export function exmailCredentials(secret: MailboxSecret): ExmailCredentials {
  const missing = (['corpId', 'contactsSecret'] as const).filter((k) => typeof secret[k] !== 'string' || !secret[k]);
  if (missing.length) throw new MailboxError(`mailbox secret lacks ${missing.join(', ')} (Tencent Exmail)`, false, 'MissingSecret', undefined, 'auth');
  return {
    corpId: secret.corpId!,
    contactsSecret: secret.contactsSecret!,
    ...(secret.logSecret ? { logSecret: secret.logSecret } : {}),
  };
}
