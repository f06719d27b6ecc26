/**
 * Retry or park? The worker asks this of every error the engine lets out. Adapters already
 * say what they know (ProviderError `.retryable`); everything else is judged
 * by shape: optimistic-concurrency conflicts and network failures are transient, a bug or a
 * refused request is not. Unknown errors count as retryable: SQS's receive count bounds the
 * retries and the message is then parked with its reason, so nothing is dropped either way.
 */
import { ProviderError } from '../core/errors';
import { VersionConflictError } from '../store/ports';

/** Thrown by the engine for a condition that no retry can fix (the message is parked). */
export class PermanentSyncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentSyncError';
  }
}

/**
 * Another run holds the subject: its write-ahead intent is younger than INTENT_LEASE_MS and
 * belongs to another event, so its owner may well be alive (the CLI or the console running the
 * engine beside the queue's worker). Recovering it now would audit its steps a second time;
 * retried later, the intent is gone or old enough to be a crash's. Retryable.
 */
export class SubjectBusyError extends Error {
  constructor(
    subject: string,
    readonly retryAfterMs: number,
  ) {
    super(`${subject} is being synced by another run (its intent is ${Math.round(retryAfterMs / 1000)} s from its lease's end)`);
    this.name = 'SubjectBusyError';
  }
}

/** How long an intent is presumed to belong to a live run: above the worker's 60 s timeout. */
export const INTENT_LEASE_MS = 120_000;

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

export function isRetryable(err: unknown): boolean {
  if (err instanceof PermanentSyncError) return false;
  if (err instanceof ProviderError) return err.retryable;
  if (err instanceof VersionConflictError) return true;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; cause?: { code?: unknown }; name?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
    if (e.cause && typeof e.cause.code === 'string' && NETWORK_CODES.has(e.cause.code)) return true;
    if (e.name === 'TypeError' && /fetch failed/i.test(String((err as Error).message))) return true;
    if (e.$retryable) return true;
    const status = e.$metadata?.httpStatusCode;
    if (typeof status === 'number') return status >= 500 || status === 429;
    // A validation / programming error in our own code is permanent.
    if (err instanceof SyntaxError || err instanceof RangeError || err instanceof ReferenceError) return false;
    if (e.name === 'ZodError') return false;
  }
  return true;
}

/** A short, loggable reason for an error (never carries payloads; redaction happens in log/audit). */
export function errorReason(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { errcode?: unknown; code?: unknown }).errcode ?? (err as { code?: unknown }).code;
    return `${err.name}${code !== undefined ? `(${String(code)})` : ''}: ${err.message}`.slice(0, 500);
  }
  return String(err).slice(0, 500);
}
