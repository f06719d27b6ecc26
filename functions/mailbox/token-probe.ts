/**
 * The health check every adapter with a credential has: one token request that bypasses the
 * client's cache, so the probe learns whether the secret, key or delegation works right now
 * (an administrator may have reset or revoked it since the cached token was issued).
 */
import type { MailboxHealthProbe } from './provider';

/** `client` absent: the credential is not configured, and the probe fails saying `missing`. */
export function tokenProbe(name: string, client: { requestToken(): Promise<unknown> } | undefined, missing = 'not configured'): MailboxHealthProbe {
  return {
    name,
    run: async () => {
      if (!client) return { ok: false, detail: missing };
      await client.requestToken();
      return { ok: true, detail: 'token ok' };
    },
  };
}
