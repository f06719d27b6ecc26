/**
 * The initial password of an account the sync creates: random, from all four character classes
 * (upper, lower, digit, symbol; look-alikes such as I, l, O, 0, 1 left out), shuffled. It is
 * never logged, returned or stored: the person gets access through the mail system's own
 * reset / first-sign-in flow. 20 characters meet Entra's, Google's (8–100) and AD's default
 * complexity rules; Exmail publishes none, 16 meets the usual ones.
 */
import { randomInt } from 'node:crypto';

const CLASSES = ['ABCDEFGHJKLMNPQRSTUVWXYZ', 'abcdefghijkmnopqrstuvwxyz', '23456789', '!@#$%^&*-_=+?'];
const ALL = CLASSES.join('');

export function initialPassword(length = 20): string {
  const chars = CLASSES.map((s) => s[randomInt(s.length)]!);
  while (chars.length < length) chars.push(ALL[randomInt(ALL.length)]!);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join('');
}
