/** Retry or park: the classification the worker applies to every error the engine lets out. */
import { describe, expect, it } from 'vitest';
import { MailboxError } from '../../functions/mailbox/directory';
import { VersionConflictError } from '../../functions/store/ports';
import { PermanentSyncError, errorReason, isRetryable } from '../../functions/sync/errors';
import { WecomApiError } from '../../functions/wecom/contacts';

describe('isRetryable', () => {
  it('trusts the adapters', () => {
    expect(isRetryable(new WecomApiError('busy', -1, true))).toBe(true);
    expect(isRetryable(new WecomApiError('no permission', 60011, false))).toBe(false);
    expect(isRetryable(new MailboxError('throttled', true, 'TooManyRequests', 1000))).toBe(true);
    expect(isRetryable(new MailboxError('bad request', false, 'Request_BadRequest'))).toBe(false);
  });
  it('concurrency conflicts and network failures are transient', () => {
    expect(isRetryable(new VersionConflictError('user:a'))).toBe(true);
    expect(isRetryable(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
  });
  it('AWS SDK errors by status: 5xx / 429 retry, 4xx park', () => {
    expect(isRetryable(Object.assign(new Error('x'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('x'), { name: 'ThrottlingException', $retryable: { throttling: true }, $metadata: { httpStatusCode: 400 } }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('x'), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } }))).toBe(false);
  });
  it('our own permanent conditions and programming errors park', () => {
    expect(isRetryable(new PermanentSyncError('nope'))).toBe(false);
    expect(isRetryable(new SyntaxError('Unexpected token'))).toBe(false);
    expect(isRetryable(Object.assign(new Error('invalid'), { name: 'ZodError' }))).toBe(false);
  });
  it('unknown errors retry (bounded by the receive count, then parked with the reason)', () => {
    expect(isRetryable(new Error('something odd'))).toBe(true);
  });
});

describe('errorReason', () => {
  it('names the error and its code, bounded', () => {
    expect(errorReason(new WecomApiError('userid not found', 60111, false))).toBe('WecomApiError(60111): userid not found');
    expect(errorReason(new MailboxError('x'.repeat(1000), false, '400')).length).toBe(500);
    expect(errorReason('plain')).toBe('plain');
  });
});
