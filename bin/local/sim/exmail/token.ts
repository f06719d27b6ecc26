/**
 * `GET /cgi-bin/gettoken?corpid=&corpsecret=` and the token check of every other call. Exmail
 * gives each app its own secret; a token carries its app, and an API of another app answers
 * 48002 (the code is WeCom's "api forbidden", assumed). A wrong secret is 40001 (documented),
 * a wrong corpid 40013, a missing or revoked token 40014, an expired one 42001 (WeCom's codes,
 * assumed shared).
 */
import { randomBytes } from 'node:crypto';
import { answer, type Answer, type ExmailApp, type SimOptions } from './context';

export interface Tokens {
  issue(query: URLSearchParams): Answer;
  /** The app of a live token, or the errcode to answer. */
  check(token: string | null): { app: ExmailApp } | { errcode: number };
  revoke(): void;
}

export function tokenEndpoint(opts: SimOptions, now: () => Date): Tokens {
  const issued = new Map<string, { app: ExmailApp; expiresAt: number }>();
  return {
    issue(query) {
      if (query.get('corpid') !== opts.corpId) return answer(40013);
      const secret = query.get('corpsecret');
      const app: ExmailApp | undefined = secret === opts.contactsSecret ? 'contacts' : secret === opts.logSecret ? 'log' : undefined;
      if (!app) return answer(40001);
      const token = randomBytes(48).toString('base64url');
      issued.set(token, { app, expiresAt: now().getTime() + opts.tokenLifetimeSeconds * 1000 });
      return answer(0, { access_token: token, expires_in: opts.tokenLifetimeSeconds });
    },
    check(token) {
      const t = token ? issued.get(token) : undefined;
      if (!t) return { errcode: 40014 };
      if (now().getTime() >= t.expiresAt) return { errcode: 42001 };
      return { app: t.app };
    },
    revoke() {
      issued.clear();
    },
  };
}
