/**
 * Exmail's health checks (run by the scheduled health function and `wecom-sync status`; the
 * runner adds the timeout and redacts what they throw):
 * - `exmail-token`: a token request with the contacts secret, bypassing the cache — does the
 *   secret still work right now (an administrator may reset it in the console)?
 * - `exmail-log-token`: the same for the system-log secret, the change feed's. Without one the
 *   probe fails on purpose: offboarding done in Exmail is then found by the nightly reconcile
 *   only, which an operator should know.
 */
import type { MailboxHealthProbe } from '../provider';
import type { ExmailClient } from './client';

export function exmailTokenProbe(name: string, client: Pick<ExmailClient, 'requestToken'> | undefined, missing: string): MailboxHealthProbe {
  return {
    name,
    run: async () => {
      if (!client) return { ok: false, detail: missing };
      await client.requestToken();
      return { ok: true, detail: 'token ok' };
    },
  };
}
