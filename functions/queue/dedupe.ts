/**
 * FIFO routing facts shared by the SQS adapter and the local queue, so both dedupe and
 * group exactly alike: group = subject, dedupe id = SHA-256(eventId + '|' + subject).
 */
import { createHash } from 'node:crypto';
import type { SyncMessage } from './messages';

/** SQS MessageGroupId allows at most 128 characters: longer subjects are hashed. */
export function messageGroupId(message: SyncMessage): string {
  const s = message.subject;
  return s.length <= 128 ? s : createHash('sha256').update(s, 'utf8').digest('hex');
}

/** 64 hex characters (SQS allows 128): the same event for the same subject is sent once. */
export function messageDeduplicationId(message: SyncMessage): string {
  return createHash('sha256').update(`${message.eventId}|${message.subject}`, 'utf8').digest('hex');
}
