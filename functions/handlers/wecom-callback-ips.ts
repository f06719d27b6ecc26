/**
 * Scheduled Lambda (EventBridge, hourly by default): fetch WeCom's callback source ranges
 * (getcallbackip) and store them in the inbox table for the callback receiver's source check.
 * Thin: wire, call, log.
 *
 * Least privilege is the reason this is its own function: it holds the WeCom API secret, which
 * the internet-facing receiver must not, and its role may write one inbox item (the list's key,
 * IAM dynamodb:LeadingKeys) and nothing else (lib/stack.ts ACCESS).
 *
 * A failed fetch THROWS after logging, so the function's Errors alarm fires and the stored
 * list is left as it was; once it is older than the receiver's max age the receiver fails open
 * and its own alarm fires too.
 */
import middy from '@middy/core';
import { log } from '../core/log';
import type { CallbackIpListStore } from '../store/callback-ip-list';
import { refreshCallbackIps, type CallbackIpSource, type RefreshCallbackIpsResult } from '../wecom/callback-ips-refresh';

export interface WecomCallbackIpsDeps {
  source: CallbackIpSource;
  store: Pick<CallbackIpListStore, 'write'>;
  now?: () => Date;
}

export function createWecomCallbackIpsHandler(deps: WecomCallbackIpsDeps | (() => Promise<WecomCallbackIpsDeps>)) {
  let wired: Promise<WecomCallbackIpsDeps> | undefined;
  return middy(async (): Promise<RefreshCallbackIpsResult> => {
    wired ??= typeof deps === 'function' ? deps() : Promise.resolve(deps);
    // A failed wiring (secret fetch) is retried by the next invocation.
    wired.catch(() => (wired = undefined));
    const d = await wired;
    try {
      const result = await refreshCallbackIps(d);
      log.info('wecom callback ip list refreshed', { stored: result.stored, skipped: result.invalid });
      return result;
    } catch (err) {
      log.error('wecom callback ip list refresh failed: the stored list is kept', {
        error: err instanceof Error ? err.name : typeof err,
        reason: err instanceof Error ? err.message : '',
      });
      throw err;
    }
  });
}

async function awsDeps(): Promise<WecomCallbackIpsDeps> {
  const [{ requireSetting }, { loadWecomApiSecret }, { dynamoClient }, { DynamoCallbackIpList }, { wecomCallbackIpSource }] = await Promise.all([
    import('../config/secrets'),
    import('../wecom/api-secret'),
    import('../store/dynamo'),
    import('../store/callback-ip-list'),
    import('../wecom/callback-ips-refresh'),
  ]);
  // Either secret can ask for the list: locally, one of the two is enough.
  const secret = await loadWecomApiSecret(['contactsSecret', 'appSecret']);
  let apiBase = 'https://qyapi.weixin.qq.com';
  try {
    apiBase = (JSON.parse(process.env.SYNC_CONFIG ?? '{}') as { wecom?: { apiBase?: string } }).wecom?.apiBase ?? apiBase;
  } catch {
    throw new Error('SYNC_CONFIG is not valid JSON');
  }
  return {
    source: wecomCallbackIpSource({ apiBase, corpId: secret.corpId, secrets: [secret.appSecret, secret.contactsSecret] }),
    store: new DynamoCallbackIpList(dynamoClient(), requireSetting('INBOX_TABLE')),
  };
}

export const handler = createWecomCallbackIpsHandler(awsDeps);
