/**
 * WeCom errcodes the sync can meet, and what each means for the caller: retry (with how much
 * patience), refresh the token, treat as "not found", or give up with a reason an operator
 * can act on. Sources: WeCom's global error code page (全局错误码) and docs/architecture.md's facts from WeCom.
 */

export type ErrKind = 'ok' | 'token' | 'retryable' | 'permanent' | 'not-found';

export interface ErrClass {
  kind: ErrKind;
  reason: string;
  /** For rate limits: how long WeCom blocks the caller (minute limits block for 60 s). */
  retryAfterMs?: number;
}

const TABLE: Record<number, ErrClass> = {
  0: { kind: 'ok', reason: 'ok' },
  [-1]: { kind: 'retryable', reason: 'WeCom system busy' },
  40014: { kind: 'token', reason: 'invalid access_token' },
  42001: { kind: 'token', reason: 'access_token expired' },
  42009: { kind: 'token', reason: 'access_token expired (suite)' },
  45009: { kind: 'retryable', reason: 'API call frequency limit reached', retryAfterMs: 60_000 },
  45011: { kind: 'retryable', reason: 'API call frequency limit reached', retryAfterMs: 60_000 },
  45033: { kind: 'retryable', reason: 'too many concurrent calls', retryAfterMs: 5_000 },
  40001: { kind: 'permanent', reason: 'invalid secret: check the secret in Secrets Manager' },
  40013: { kind: 'permanent', reason: 'invalid CorpID' },
  40058: { kind: 'permanent', reason: 'invalid parameter' },
  47001: { kind: 'permanent', reason: 'malformed request body' },
  48009: {
    kind: 'permanent',
    reason: 'the contacts-sync secret may not read member details from this IP (since 2022-08-15): use the app secret',
  },
  60020: {
    kind: 'permanent',
    reason: "calling IP is not in WeCom's trusted IP list: register the egress IP (stack output WecomEgressIp) in the admin console",
  },
  60011: { kind: 'permanent', reason: 'no permission for this member or department (check the app’s visible range)' },
  60003: { kind: 'permanent', reason: 'department not found' },
  60102: { kind: 'permanent', reason: 'userid already exists' },
  60104: { kind: 'permanent', reason: 'mobile already used by another member' },
  60106: { kind: 'permanent', reason: 'email already used by another member' },
  60111: { kind: 'not-found', reason: 'userid not found' },
  45026: { kind: 'permanent', reason: "refused by WeCom's own member-deletion protection" },
};

export function classifyErrcode(errcode: number): ErrClass {
  return TABLE[errcode] ?? { kind: 'permanent', reason: 'unexpected WeCom error' };
}
