/**
 * How every deployed function finds its mailbox provider — the runtime config's `provider`,
 * the registry, the secret — so no handler names one. (Not the mailbox-events receiver: it
 * loads only the push receiver, functions/mailbox/receivers.ts.)
 */
import type { RuntimeConfig } from '../config/runtime';
import type { MailboxProvider, MailboxSecret } from '../mailbox/provider';

/**
 * The runtime config (SYNC_CONFIG, validated), its provider's descriptor, and the mailbox
 * secret: Secrets Manager JSON under MAILBOX_SECRET_ARN, locally the provider's env vars
 * (`secretEnv`, plus MAILBOX_WEBHOOK_SECRET). Throws naming what is missing, never a value.
 */
export async function awsMailbox(): Promise<{ config: RuntimeConfig; provider: MailboxProvider; secret: MailboxSecret }> {
  const [{ parseRuntimeConfig }, { loadSecretJson }, { loadMailboxProvider, mailboxSecretFromEnv }] = await Promise.all([
    import('../config/runtime'),
    import('../config/secrets'),
    import('../mailbox/providers'),
  ]);
  const config = parseRuntimeConfig(process.env.SYNC_CONFIG ?? '{}');
  const provider = await loadMailboxProvider(config.provider);
  const secret = await loadSecretJson<MailboxSecret>('MAILBOX_SECRET_ARN', () => mailboxSecretFromEnv(provider));
  return { config, provider, secret };
}
