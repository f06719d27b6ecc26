/**
 * Who may use the console, and proof that a form came from a console page.
 *
 * Signing in: a ONE-TIME login token (minted for the URL `wecom-sync console` prints, valid
 * 10 minutes, spent on first use), or the long-lived token the console was started with (the
 * local stack's admin token, pasted into the login form). Either becomes a session: a random
 * id in an HttpOnly, SameSite=Strict cookie, held in memory only — restarting the console
 * signs everyone out.
 *
 * CSRF: every state-changing request carries the session's own random token in a hidden
 * field (compared in constant time), on top of SameSite=Strict and the Origin check in the
 * router. Tokens are compared by their SHA-256 so the comparison never leaks a length.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Locale } from '../../functions/core/messages';

export interface Session {
  id: string;
  csrf: string;
  createdAt: number;
  lastSeen: number;
  /** One message for the next page (the outcome of a POST, shown after its redirect). */
  flash?: { kind: 'ok' | 'error'; text: string };
  /** Plans of "Sync now", by id: previewed, waiting for confirmation (bounded). */
  plans: Map<string, unknown>;
  locale?: Locale;
}

export interface SessionOptions {
  /** A long-lived token that also signs in (the local stack's admin token). */
  token?: string;
  now?: () => number;
  /** Idle timeout (default 8 h). */
  idleMs?: number;
  /** Lifetime of a one-time login token (default 10 min). */
  loginTokenMs?: number;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export class Sessions {
  private readonly sessions = new Map<string, Session>();
  /** sha256(one-time token) → expiry. Only the hash is kept: a heap dump does not sign in. */
  private readonly loginTokens = new Map<string, number>();
  private readonly now: () => number;
  private readonly idleMs: number;
  private readonly loginTokenMs: number;

  constructor(private readonly opts: SessionOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.idleMs = opts.idleMs ?? 8 * 3_600_000;
    this.loginTokenMs = opts.loginTokenMs ?? 10 * 60_000;
  }

  mintLoginToken(): string {
    const token = randomBytes(32).toString('base64url');
    this.loginTokens.set(digest(token).toString('hex'), this.now() + this.loginTokenMs);
    return token;
  }

  /** A session for a presented token, or undefined. A one-time token is spent here. */
  signIn(presented: string): Session | undefined {
    if (!presented) return undefined;
    this.expire();
    const key = digest(presented).toString('hex');
    const oneTime = this.loginTokens.get(key);
    const valid = (oneTime !== undefined && oneTime > this.now()) || (this.opts.token !== undefined && sameSecret(presented, this.opts.token));
    if (oneTime !== undefined) this.loginTokens.delete(key);
    if (!valid) return undefined;
    const at = this.now();
    const session: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), createdAt: at, lastSeen: at, plans: new Map() };
    this.sessions.set(session.id, session);
    return session;
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (this.now() - s.lastSeen > this.idleMs) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeen = this.now();
    return s;
  }

  signOut(session: Session): void {
    this.sessions.delete(session.id);
  }

  checkCsrf(session: Session, presented: string | null): boolean {
    return presented !== null && sameSecret(presented, session.csrf);
  }

  private expire(): void {
    const at = this.now();
    for (const [k, exp] of this.loginTokens) if (exp <= at) this.loginTokens.delete(k);
    for (const [k, s] of this.sessions) if (at - s.lastSeen > this.idleMs) this.sessions.delete(k);
  }
}
