/**
 * The WeCom callback's keys, loaded once per container: from the secret named by
 * WECOM_CALLBACK_SECRET_ARN in AWS, from WECOM_CORP_ID / WECOM_TOKEN / WECOM_ENCODING_AES_KEY
 * locally. A malformed EncodingAESKey fails here, with a clear message, not at the first callback.
 */
import { loadSecretJson, requireEnv } from '../config/secrets';
import { aesKey, type CallbackKeys } from './crypto';

/** Keys of the WeCom callback: WECOM_CALLBACK_SECRET_ARN, or WECOM_CORP_ID / WECOM_TOKEN / WECOM_ENCODING_AES_KEY. */
export async function loadCallbackKeys(): Promise<CallbackKeys> {
  const raw = await loadSecretJson<Partial<CallbackKeys>>('WECOM_CALLBACK_SECRET_ARN', () => {
    const env = requireEnv(['WECOM_CORP_ID', 'WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY']);
    return { corpId: env.WECOM_CORP_ID, token: env.WECOM_TOKEN, encodingAESKey: env.WECOM_ENCODING_AES_KEY };
  });
  const missing = (['corpId', 'token', 'encodingAESKey'] as const).filter((k) => typeof raw?.[k] !== 'string' || !raw[k]);
  if (missing.length) throw new Error(`WeCom callback keys incomplete: missing ${missing.join(', ')}`);
  const keys = { corpId: raw.corpId!, token: raw.token!, encodingAESKey: raw.encodingAESKey! };
  aesKey(keys.encodingAESKey); // fail at load with a clear message, not at the first callback
  return keys;
}
