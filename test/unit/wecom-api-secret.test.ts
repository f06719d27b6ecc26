/**
 * The WeCom API secret as the functions load it without Secrets Manager (env vars): every
 * value required unless the caller names it optional, and a missing one named, never a value.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clearSecretCache, requireSetting } from '../../functions/config/secrets';
import { loadWecomApiSecret } from '../../functions/wecom/api-secret';

const NAMES = ['WECOM_API_SECRET_ARN', 'WECOM_CORP_ID', 'WECOM_CONTACTS_SECRET', 'WECOM_APP_SECRET', 'TEST_SETTING'];
const saved = Object.fromEntries(NAMES.map((n) => [n, process.env[n]]));

afterEach(() => {
  for (const n of NAMES) if (saved[n] === undefined) delete process.env[n];
  else process.env[n] = saved[n];
  clearSecretCache();
});

function env(values: Record<string, string>) {
  for (const n of NAMES) delete process.env[n];
  Object.assign(process.env, values);
  clearSecretCache();
}

describe('loadWecomApiSecret (env fallback)', () => {
  it('reads the three values', async () => {
    env({ WECOM_CORP_ID: 'ww1', WECOM_CONTACTS_SECRET: 'contacts-s3cret', WECOM_APP_SECRET: 'app-s3cret' });
    await expect(loadWecomApiSecret()).resolves.toEqual({ corpId: 'ww1', contactsSecret: 'contacts-s3cret', appSecret: 'app-s3cret' });
  });

  it('refuses a missing value by its name, without any value in the message', async () => {
    env({ WECOM_CORP_ID: 'ww1', WECOM_CONTACTS_SECRET: 'contacts-s3cret' });
    const err = (await loadWecomApiSecret().catch((e) => e)) as Error;
    expect(err.message).toBe('missing configuration: WECOM_APP_SECRET');
    expect(err.message).not.toMatch(/s3cret|ww1/);
  });

  it('an optional secret may be absent (empty); the corp id never', async () => {
    env({ WECOM_CORP_ID: 'ww1', WECOM_APP_SECRET: 'app-s3cret' });
    await expect(loadWecomApiSecret(['contactsSecret', 'appSecret'])).resolves.toEqual({ corpId: 'ww1', contactsSecret: '', appSecret: 'app-s3cret' });
    env({ WECOM_APP_SECRET: 'app-s3cret' });
    await expect(loadWecomApiSecret(['contactsSecret', 'appSecret'])).rejects.toThrow('missing configuration: WECOM_CORP_ID');
  });
});

describe('requireSetting', () => {
  it('returns a set value and names an unset or empty one', () => {
    env({ TEST_SETTING: 'x' });
    expect(requireSetting('TEST_SETTING')).toBe('x');
    env({ TEST_SETTING: '' });
    expect(() => requireSetting('TEST_SETTING')).toThrow('missing configuration: TEST_SETTING');
  });
});
