/**
 * Which person does a subject mean? `user:<id>` says it; a mailbox account subject is
 * resolved through our state (the account we linked) or the account's own employeeId; an
 * address subject (signed webhook that names only an email) through the address key. An account with no employeeId link is not ours: hands off.
 */
import type { Subject } from '../core/model';
import type { MailboxAccount } from '../mailbox/directory';
import type { RunContext } from './context';

export type Resolution =
  | { kind: 'user'; userid: string }
  /** lifecycle.source 'mailbox': an account without a WeCom userid yet (birth.ts decides). */
  | { kind: 'birth'; account: MailboxAccount }
  | { kind: 'party'; id: string }
  | { kind: 'subscription' }
  | { kind: 'unresolved'; reason: string; auditOnce: boolean };

export async function resolveSubject(ctx: RunContext, subject: Subject): Promise<Resolution> {
  const [kind, ...rest] = subject.split(':');
  const tail = rest.join(':');
  if (kind === 'user' && tail) return { kind: 'user', userid: tail };
  if (kind === 'party' && tail) return { kind: 'party', id: tail };
  if (kind !== 'mailbox') return { kind: 'unresolved', reason: `unknown subject kind '${kind}'`, auditOnce: false };

  const provider = rest[0] ?? '';
  const id = rest.slice(1).join(':');
  if (id === 'subscription') return { kind: 'subscription' };
  if (provider === 'address') return resolveAddressKey(ctx, id);

  const { state, mailbox } = ctx.deps;
  const known = await state.findByTargetId(provider, id);
  if (known && known.subject.startsWith('user:')) return { kind: 'user', userid: known.wecomId };
  if (provider !== mailbox.provider) return { kind: 'unresolved', reason: `no adapter for provider '${provider}'`, auditOnce: false };
  const account = await mailbox.get(id);
  if (!account) return { kind: 'unresolved', reason: 'mailbox account not found and not linked in state', auditOnce: false };
  if (!account.employeeId) {
    if (ctx.deps.config.lifecycle.source === 'mailbox') return { kind: 'birth', account };
    return { kind: 'unresolved', reason: 'not managed: no employeeId link', auditOnce: true };
  }
  return { kind: 'user', userid: account.employeeId };
}

/**
 * `mailbox:address:<key>`: the webhook receiver names an email-only event by a keyed hash of
 * the address (HMAC under the webhook secret, see mailbox/receive.ts `addressKey`), so the
 * address never sits in the inbox or queue in clear. We resolve it by computing the same key
 * over the addresses of the mailbox accounts (a paged listing: email-only webhooks are rare)
 * and following the matching account's employeeId link.
 */
async function resolveAddressKey(ctx: RunContext, key: string): Promise<Resolution> {
  const { addressKey, mailbox } = ctx.deps;
  if (!/^[0-9a-f]{64}$/i.test(key)) return { kind: 'unresolved', reason: 'address subject carries no address key', auditOnce: false };
  if (!addressKey) return { kind: 'unresolved', reason: 'cannot resolve an address subject: no webhook secret wired', auditOnce: false };
  let cursor: string | undefined;
  do {
    const page = await mailbox.listPage(cursor);
    for (const account of page.accounts) {
      if (!account.email || addressKey(account.email) !== key.toLowerCase()) continue;
      if (!account.employeeId) {
        if (ctx.deps.config.lifecycle.source === 'mailbox') return { kind: 'birth', account };
        return { kind: 'unresolved', reason: 'not managed: no employeeId link', auditOnce: true };
      }
      return { kind: 'user', userid: account.employeeId };
    }
    cursor = page.next;
  } while (cursor);
  return { kind: 'unresolved', reason: 'address matches no mailbox account', auditOnce: false };
}
