/**
 * The one message shape on the work queue. A message only says "subject X may have
 * changed" (edge-triggered); the worker re-reads X from its source of truth (level-driven),
 * so `hint` is advisory and never applied blindly.
 */
import type { Subject } from '../core/model';

export type MessageSource = 'wecom' | 'mailbox' | 'reconcile' | 'schedule' | 'cli';

export interface SyncMessage {
  v: 1;
  subject: Subject;
  source: MessageSource;
  /** Id of the event that caused this (inbox dedupe key), carried into every audit record. */
  eventId: string;
  /** What the event said happened, e.g. 'create_user', 'delete_user', 'mailbox.disabled'. */
  hint?: string;
  /** Who asked: 'wecom-callback', 'graph-notification', 'webhook', 'cli:<user>' … */
  operator: string;
  receivedAt: string;
}

export interface WorkQueue {
  /** Enqueue messages; FIFO group = message.subject, dedupe id derived from eventId + subject. */
  enqueue(messages: SyncMessage[]): Promise<void>;
}

/**
 * Where the worker parks a message it will not retry (permanent error, or retries
 * exhausted), WITH the reason, so nothing is dropped silently and an operator can redrive.
 */
export interface DeadLetterSink {
  park(message: SyncMessage, reason: string): Promise<void>;
}
