/**
 * Person references for URLs. A console URL lands in the browser history, so it carries no
 * personal data — not even a userid (often a pinyin name): a person's page is
 * `/console/people/<ref>`, where ref is the subject sealed with AES-256-GCM under a key that
 * lives only in this console process.
 *
 * The IV is derived from the subject (HMAC under a second key), so one person has one ref
 * for the console's lifetime — links compare equal, "visited" works — and GCM's nonce is
 * never reused with a different plaintext. A ref from another console (or a forged one)
 * fails authentication and is treated as not found.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { Subject } from '../../functions/core/model';

export class SubjectRefs {
  private readonly encKey = randomBytes(32);
  private readonly ivKey = randomBytes(32);

  seal(subject: Subject): string {
    const iv = createHmac('sha256', this.ivKey).update(subject).digest().subarray(0, 12);
    const c = createCipheriv('aes-256-gcm', this.encKey, iv);
    const ct = Buffer.concat([c.update(subject, 'utf8'), c.final()]);
    return Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64url');
  }

  open(ref: string): Subject | undefined {
    try {
      const buf = Buffer.from(ref, 'base64url');
      if (buf.length < 12 + 16 + 1) return undefined;
      const d = createDecipheriv('aes-256-gcm', this.encKey, buf.subarray(0, 12));
      d.setAuthTag(buf.subarray(buf.length - 16));
      const subject = Buffer.concat([d.update(buf.subarray(12, buf.length - 16)), d.final()]).toString('utf8');
      return /^(user|party|mailbox):/.test(subject) ? (subject as Subject) : undefined;
    } catch {
      return undefined;
    }
  }
}
