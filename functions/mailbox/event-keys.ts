/**
 * Two small pieces every mailbox receiver needs: the inbox key of an event (SHA-256 over its
 * identifying parts, JSON-joined so ('ab','c') and ('a','bc') differ), and a constant-time
 * comparison of a shared secret a sender echoes back.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function eventKey(...parts: string[]): string {
  return createHash('sha256').update(JSON.stringify(parts), 'utf8').digest('hex');
}

/** Constant time whatever the lengths: compares digests (equal-length buffers). */
export function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}
