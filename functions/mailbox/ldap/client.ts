/**
 * LDAP transport over `ldapts`: one bound connection shared by the single-entry reads and
 * writes, a dedicated connection per paged search, and one error vocabulary.
 *
 * Wire facts relied on:
 * - A simple bind sends the password as is: refused over plain `ldap://` unless the settings
 *   say `startTls` (RFC 4513 StartTLS, then the bind) or `allowPlaintext`. `ldaps://` and
 *   StartTLS verify the server against the secret's CA (`caCert`, replacing the trust store)
 *   or the runtime's trust store, TLS 1.2 at least; AD accepts a UPN as the bind name, so DNs
 *   are not parsed strictly.
 * - Several URLs are tried in order (AD: one per domain controller); a refused credential or
 *   certificate is not retried on the next one (it would be refused there too).
 * - Paged results (RFC 2696) keep their state per connection, and OpenLDAP keeps ONE paged
 *   search per connection: every paged search here has its own connection, so a listing, a
 *   feed scan and the single-entry calls never cancel each other. AD caps a page at
 *   MaxPageSize (1,000 by default) and refuses unpaged searches beyond MaxResultSetSize.
 * - Result codes (RFC 4511 §4.1.9) map to the port's words: busy (51) → throttled, unavailable
 *   (52) / timeLimitExceeded (3) / a dropped connection → unavailable (retryable); 49/50/8/13 →
 *   auth; noSuchObject (32) → not-found; entryAlreadyExists (68) → conflict; schema and syntax
 *   refusals → invalid. The server's diagnostic text is never copied: it names DNs and values.
 * - A refusal the server answered (busy, unavailable) applied nothing and is retried here; a
 *   write whose answer was lost (timeout, reset) is not, unless it is idempotent — the caller
 *   re-reads first (the engine's rule for creates).
 * - Idle sockets are unref'd so a CLI run ends when its work does; a pending operation keeps
 *   the process alive through its own timeout timer.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Client, ResultCodeError, type Attribute, type Change, type Entry, type Filter } from 'ldapts';
import { log } from '../../core/log';
import { backoffMs } from '../../core/retry';
import { MailboxError, type MailboxErrorKind } from '../directory';

export interface LdapClientOptions {
  urls: string[];
  bindDn: string;
  bindPassword: string;
  /** PEM; replaces the trust store for ldaps:// and StartTLS. */
  caCert?: string;
  startTls?: boolean;
  allowPlaintext?: boolean;
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Retries of a refused (busy / unavailable) call before giving up (default 3; the queue retries after). */
  maxRetries?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface LdapSearch {
  scope?: 'base' | 'one' | 'sub';
  filter?: Filter | string;
  attributes: string[];
  /** Attributes returned as Buffers (AD objectGUID). */
  binary?: string[];
  sizeLimit?: number;
}

export type LdapEntry = Entry;

/** Backoff of a busy / unavailable server: half a second doubling to 20 s. */
export const BACKOFF = { baseMs: 500, capMs: 20_000 };

interface Session {
  client: Client;
  url: string;
  secure: boolean;
  startTls: boolean;
}

/** RFC 4511 result codes we name, with the port's word and whether a retry may help. */
const RESULTS: Readonly<Record<number, [name: string, kind: MailboxErrorKind, retryable: boolean]>> = {
  3: ['timeLimitExceeded', 'unavailable', true],
  4: ['sizeLimitExceeded', 'unexpected', false],
  8: ['strongerAuthRequired', 'auth', false],
  11: ['adminLimitExceeded', 'throttled', true],
  13: ['confidentialityRequired', 'auth', false],
  16: ['noSuchAttribute', 'invalid', false],
  17: ['undefinedAttributeType', 'invalid', false],
  18: ['inappropriateMatching', 'invalid', false],
  19: ['constraintViolation', 'invalid', false],
  20: ['attributeOrValueExists', 'conflict', false],
  21: ['invalidAttributeSyntax', 'invalid', false],
  32: ['noSuchObject', 'not-found', false],
  34: ['invalidDNSyntax', 'invalid', false],
  48: ['inappropriateAuthentication', 'auth', false],
  49: ['invalidCredentials', 'auth', false],
  50: ['insufficientAccessRights', 'auth', false],
  51: ['busy', 'throttled', true],
  52: ['unavailable', 'unavailable', true],
  53: ['unwillingToPerform', 'invalid', false],
  64: ['namingViolation', 'invalid', false],
  65: ['objectClassViolation', 'invalid', false],
  66: ['notAllowedOnNonLeaf', 'invalid', false],
  67: ['notAllowedOnRDN', 'invalid', false],
  68: ['entryAlreadyExists', 'conflict', false],
  80: ['other', 'unexpected', false],
};

/** Node's certificate-verification failures: the server is not who the CA says. */
const TLS_REFUSED = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME/;

/** Any failure of a call → MailboxError, naming the route and the code, never the server's text (it can echo DNs and values). */
export function ldapError(err: unknown, route: string): MailboxError {
  if (err instanceof MailboxError) return err;
  if (err instanceof ResultCodeError) {
    const [name, kind, retryable] = RESULTS[err.code] ?? [`result_${err.code}`, 'unexpected', false];
    return new MailboxError(`LDAP ${route} failed: ${err.code} ${name}`, retryable, name, undefined, kind);
  }
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  if (code && TLS_REFUSED.test(code)) {
    return new MailboxError(`LDAP ${route}: the server's TLS certificate was refused (${code})`, false, code, undefined, 'auth');
  }
  const text = err instanceof Error ? err.message : '';
  if (/timed? ?out/i.test(text)) return new MailboxError(`LDAP ${route}: timed out`, true, 'Timeout', undefined, 'unavailable');
  return new MailboxError(`LDAP ${route}: connection failed${code ? ` (${code})` : ''}`, true, code ?? 'NetworkError', undefined, 'unavailable');
}

const isSecureUrl = (url: string) => /^ldaps:/i.test(url);

// Idle LDAP sockets must not keep a CLI process alive (see the header); no Nagle: each LDAP
// request is one small write waiting for its answer (with Nagle and delayed ACKs, ~40 ms each).
const connectUnref = ((...args: unknown[]) => (net.connect as (...a: unknown[]) => net.Socket)(...args).setNoDelay(true).unref()) as typeof net.connect;
const connectTlsUnref = ((...args: unknown[]) => (tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args).setNoDelay(true).unref() as tls.TLSSocket) as typeof tls.connect;

export class LdapClient {
  readonly maxRetries: number;
  readonly sleep: (ms: number) => Promise<void>;
  private shared?: Promise<Session>;

  constructor(private readonly o: LdapClientOptions) {
    this.maxRetries = o.maxRetries ?? 3;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Every connection is encrypted (ldaps:// or StartTLS): what AD needs to set a password. */
  get encrypted(): boolean {
    return this.o.urls.length > 0 && this.o.urls.every((u) => isSecureUrl(u) || this.o.startTls === true);
  }

  private tlsOptions(url: string): tls.ConnectionOptions {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return {
      minVersion: 'TLSv1.2',
      ...(this.o.caCert ? { ca: [this.o.caCert] } : {}),
      // StartTLS upgrades an existing socket: the name to verify is not implied.
      ...(net.isIP(host) ? {} : { servername: host }),
      host,
    };
  }

  /** A new bound connection to the first URL that answers. */
  private async connect(): Promise<Session> {
    if (this.o.urls.length === 0) throw new MailboxError('SYNC_CONFIG lacks ldap.urls (LDAP)', false, 'MissingConfig', undefined, 'invalid');
    let last: MailboxError | undefined;
    for (const url of this.o.urls) {
      const secure = isSecureUrl(url);
      const startTls = !secure && this.o.startTls === true;
      if (!secure && !startTls && !this.o.allowPlaintext) {
        throw new MailboxError('LDAP: ldap:// without startTls would send the bind password in clear (use ldaps://, ldap.startTls, or ldap.allowPlaintext)', false, 'PlaintextRefused', undefined, 'invalid');
      }
      const tlsOptions = this.tlsOptions(url);
      const client = new Client({
        url,
        timeout: this.o.timeoutMs ?? 10_000,
        connectTimeout: this.o.connectTimeoutMs ?? 5_000,
        // ldapts speaks TLS from the first byte whenever tlsOptions are given: ldaps:// only.
        ...(secure ? { tlsOptions } : {}),
        strictDN: false,
        // Replays the bind after a transparent reconnect (not for StartTLS sessions: session() reconnects those).
        autoRebind: !startTls,
        createConnection: connectUnref,
        createSecureConnection: connectTlsUnref,
      });
      try {
        if (startTls) await client.startTLS({ ...tlsOptions });
        await client.bind(this.o.bindDn, this.o.bindPassword);
        return { client, url, secure: secure || startTls, startTls };
      } catch (err) {
        await closeQuietly(client);
        const e = ldapError(err, 'bind');
        if (!e.retryable || e.kind === 'throttled') throw e; // refused credentials or certificate: the next DC refuses too
        last = e;
        log.warn('ldap server unreachable; trying the next', { url, code: e.code });
      }
    }
    throw last!;
  }

  /** The shared bound connection (reconnected when it dropped). */
  private async session(): Promise<Session> {
    const current = this.shared ? await this.shared.catch(() => undefined) : undefined;
    if (current && (current.client.isConnected || !current.startTls)) return current;
    if (current) void closeQuietly(current.client);
    const next = this.connect();
    this.shared = next;
    next.catch(() => {
      if (this.shared === next) this.shared = undefined;
    });
    return next;
  }

  private drop(session: Session | undefined): void {
    if (!session) return;
    void this.shared?.then((s) => {
      if (s === session) this.shared = undefined;
    });
    void closeQuietly(session.client);
  }

  /**
   * One call on the shared connection with the retry rules of the header: a refusal the server
   * answered is retried; a call whose answer was lost only when `idempotent`.
   */
  private async run<T>(route: string, idempotent: boolean, op: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let session: Session | undefined;
      let sent = false;
      try {
        session = await this.session();
        sent = true;
        return await op(session.client);
      } catch (err) {
        const e = ldapError(err, route);
        const answered = err instanceof ResultCodeError;
        if (sent && !answered) this.drop(session);
        if (!e.retryable || attempt >= this.maxRetries || (sent && !answered && !idempotent)) {
          if (e.retryable && attempt >= this.maxRetries) throw new MailboxError(`${e.message} (after ${attempt} retries)`, true, e.code as string, e.retryAfterMs, e.kind);
          throw e;
        }
        log.debug('ldap call refused; retrying', { route, code: e.code, attempt });
        await this.sleep(backoffMs(attempt, BACKOFF));
      }
    }
  }

  async search(route: string, base: string, s: LdapSearch): Promise<LdapEntry[]> {
    return this.run(route, true, async (c) => {
      const res = await c.search(base, {
        scope: s.scope ?? 'sub',
        filter: s.filter ?? '(objectClass=*)',
        attributes: s.attributes,
        explicitBufferAttributes: s.binary ?? [],
        ...(s.sizeLimit ? { sizeLimit: s.sizeLimit } : {}),
      });
      return res.searchEntries;
    });
  }

  /**
   * A paged search on its own connection, one server page per step. A refusal before the first
   * page starts over (up to maxRetries); a failure after it is thrown (retryable), since the
   * pages already read cannot be taken back.
   */
  async *pages(route: string, base: string, s: LdapSearch, pageSize: number): AsyncGenerator<LdapEntry[]> {
    for (let attempt = 0; ; attempt++) {
      let session: Session | undefined;
      let yielded = false;
      try {
        session = await this.connect();
        const gen = session.client.searchPaginated(base, {
          scope: s.scope ?? 'sub',
          filter: s.filter ?? '(objectClass=*)',
          attributes: s.attributes,
          explicitBufferAttributes: s.binary ?? [],
          paged: { pageSize },
        });
        for (;;) {
          const page = await gen.next();
          if (page.done) return;
          yielded = true;
          yield page.value.searchEntries;
        }
      } catch (err) {
        const e = ldapError(err, route);
        if (yielded || !e.retryable || attempt >= this.maxRetries) throw e;
        await this.sleep(backoffMs(attempt, BACKOFF));
      } finally {
        if (session) await closeQuietly(session.client);
      }
    }
  }

  /** Not retried after a lost answer: an add that landed would come back as entryAlreadyExists. */
  add(route: string, dn: string, attributes: Attribute[]): Promise<void> {
    return this.run(route, false, (c) => c.add(dn, attributes));
  }

  /** Replace / delete-all modifications are idempotent: retried after a lost answer too. */
  modify(route: string, dn: string, changes: Change[], idempotent = true): Promise<void> {
    return this.run(route, idempotent, (c) => c.modify(dn, changes));
  }

  /** Already gone is the caller's success (noSuchObject), so a repeat after a lost answer is harmless. */
  del(route: string, dn: string): Promise<void> {
    return this.run(route, true, (c) => c.del(dn));
  }

  /** The rootDSE's attributes (AD: highestCommittedUSN, dsServiceName, currentTime). */
  async rootDse(attributes: string[]): Promise<LdapEntry | undefined> {
    return (await this.search('read rootDSE', '', { scope: 'base', filter: '(objectClass=*)', attributes }))[0];
  }

  /** A fresh connection and bind, bypassing the shared one (health: do the credentials and the certificate still work?). */
  async probe(): Promise<{ url: string; secure: boolean }> {
    const s = await this.connect();
    try {
      await s.client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['supportedLDAPVersion'] });
      return { url: s.url, secure: s.secure };
    } catch (err) {
      throw ldapError(err, 'read rootDSE');
    } finally {
      await closeQuietly(s.client);
    }
  }

  async close(): Promise<void> {
    const s = this.shared ? await this.shared.catch(() => undefined) : undefined;
    this.shared = undefined;
    if (s) await closeQuietly(s.client);
  }
}

async function closeQuietly(client: Client): Promise<void> {
  try {
    await client.unbind();
  } catch {
    /* the connection is gone either way */
  }
}
