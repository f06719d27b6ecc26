/**
 * The WeCom API secret (corp id, contacts-sync secret, application secret), loaded once per
 * container: from the secret named by WECOM_API_SECRET_ARN in AWS, from WECOM_CORP_ID /
 * WECOM_CONTACTS_SECRET / WECOM_APP_SECRET locally. Its twin for the callback's keys is
 * callback-keys.ts.
 */
import { loadSecretJson, requireSetting } from '../config/secrets';

export interface WecomApiSecret {
  corpId: string;
  contactsSecret: string;
  appSecret: string;
}

/**
 * The secret; without WECOM_API_SECRET_ARN, every env var is required unless `optional`
 * names it (a function that needs only one of the two secrets, e.g. the callback IP refresh).
 */
export function loadWecomApiSecret(optional: ReadonlyArray<'contactsSecret' | 'appSecret'> = []): Promise<WecomApiSecret> {
  const env = (name: string, key: 'contactsSecret' | 'appSecret') => (optional.includes(key) ? (process.env[name] ?? '') : requireSetting(name));
  return loadSecretJson<WecomApiSecret>('WECOM_API_SECRET_ARN', () => ({
    corpId: requireSetting('WECOM_CORP_ID'),
    contactsSecret: env('WECOM_CONTACTS_SECRET', 'contactsSecret'),
    appSecret: env('WECOM_APP_SECRET', 'appSecret'),
  }));
}
