/**
 * Which side of the local stack is real, and with which credentials.
 *
 * Modes, decided from the environment (or .env) at start — never guessed:
 *  - WeCom `simulated`: none of the WECOM_* variables; demo keys, the loopback simulator.
 *  - WeCom `callback-only`: exactly WECOM_CORP_ID, WECOM_TOKEN, WECOM_ENCODING_AES_KEY — what
 *    an admin sets to let a real WeCom app verify the callback URL; the contacts API stays
 *    simulated (its simulator signs its callbacks with the same real keys).
 *  - WeCom `real`: all five variables.
 *  - The mailbox side (`SYNC_CONFIG.provider`, default graph), `simulated` / `real`: none or all
 *    of the provider's credential variables —
 *      graph:  GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET
 *      google: GOOGLE_CLIENT_EMAIL, GOOGLE_PRIVATE_KEY, GOOGLE_ADMIN_EMAIL
 *      exmail: EXMAIL_CORP_ID, EXMAIL_CONTACTS_SECRET, EXMAIL_LOG_SECRET
 *      ldap:   real only (no simulator): LDAP_BIND_DN, LDAP_BIND_PASSWORD and SYNC_CONFIG
 *              ldap.urls + ldap.baseDn.
 *    Only the selected provider's variables are read.
 * Any other combination stops the stack with the names that are missing: a half-configured
 * side silently falling back to demo keys is how every real callback ended in 403.
 *
 * Demo values are generated once and kept in <dataDir>/demo-credentials.json (0600), so a
 * restart keeps the callback keys a WeCom app may have been pointed at. WeCom's and Graph's
 * are top-level keys (what the CLI has always read); another provider's demo keys sit under its
 * name (`google: {clientEmail, privateKey, adminEmail, clientState, publicKey}`, `exmail:
 * {corpId, contactsSecret, logSecret}`), made the first time that provider runs: their names
 * collide with WeCom's and Graph's. `fromEnv` names the values that came from the environment:
 * those are the operator's secrets and are never printed.
 */
import { createHmac, generateKeyPairSync, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MailboxProviderName } from '../../functions/config/runtime';
import type { MailboxSecret } from '../../functions/mailbox/provider';
import { aesKey } from '../../functions/wecom/crypto';

/** A Google service account as the simulator trusts it and the adapter signs with (demo: generated). */
export interface GoogleLocalCredentials {
  clientEmail: string;
  privateKey: string;
  adminEmail: string;
  /** The users.watch channel token (Google echoes it as X-Goog-Channel-Token). */
  clientState: string;
  /** Demo only: the public half, which the simulator verifies the JWT with. */
  publicKey?: string;
}

export interface ExmailLocalCredentials {
  corpId: string;
  contactsSecret: string;
  logSecret: string;
}

export interface LdapLocalCredentials {
  bindDn: string;
  bindPassword: string;
}

export interface LocalCredentials {
  corpId: string;
  token: string;
  encodingAESKey: string;
  contactsSecret: string;
  appSecret: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  clientState: string;
  webhookSecret: string;
  /** Present when the provider is google. */
  google?: GoogleLocalCredentials;
  /** Present when the provider is exmail. */
  exmail?: ExmailLocalCredentials;
  /** Present when the provider is ldap (always from the environment: never written to disk). */
  ldap?: LdapLocalCredentials;
}

export type WecomMode = 'simulated' | 'callback-only' | 'real';
export type MailboxMode = 'simulated' | 'real';
/** The mailbox side's mode under its historical name (the stack was Graph-only). */
export type GraphMode = MailboxMode;

/** Which mailbox provider the local stack runs when SYNC_CONFIG names none. */
export const DEFAULT_LOCAL_PROVIDER: MailboxProviderName = 'graph';

export class LocalConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalConfigError';
  }
}

const WECOM_CALLBACK = ['WECOM_CORP_ID', 'WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY'] as const;
const WECOM_API = ['WECOM_CONTACTS_SECRET', 'WECOM_APP_SECRET'] as const;

/** Per provider: its title in messages and the variables that switch it to real (all or none). */
const MAILBOX_REAL: Readonly<Record<string, { title: string; vars: readonly string[] }>> = {
  graph: { title: 'Microsoft Graph', vars: ['GRAPH_TENANT_ID', 'GRAPH_CLIENT_ID', 'GRAPH_CLIENT_SECRET'] },
  google: { title: 'Google Workspace', vars: ['GOOGLE_CLIENT_EMAIL', 'GOOGLE_PRIVATE_KEY', 'GOOGLE_ADMIN_EMAIL'] },
  exmail: { title: 'Tencent Exmail', vars: ['EXMAIL_CORP_ID', 'EXMAIL_CONTACTS_SECRET', 'EXMAIL_LOG_SECRET'] },
  ldap: { title: 'LDAP / Active Directory', vars: ['LDAP_BIND_DN', 'LDAP_BIND_PASSWORD'] },
};

/** The providers the local stack can simulate (the others run real only). */
export const SIMULATED_PROVIDERS: readonly string[] = ['graph', 'google', 'exmail'];

/** What the stack needs to know of SYNC_CONFIG before anything starts. */
export interface MailboxSelection {
  provider: string;
  /** SYNC_CONFIG.ldap (urls, baseDn), checked for ldap. */
  ldap?: { urls?: unknown; baseDn?: unknown };
}

const set = (env: NodeJS.ProcessEnv, names: readonly string[]) => names.filter((n) => Boolean(env[n]));
const missing = (env: NodeJS.ProcessEnv, names: readonly string[]) => names.filter((n) => !env[n]);

export interface LocalModes {
  wecom: WecomMode;
  /** The configured provider's side. */
  mailbox: MailboxMode;
  /** = `mailbox` (its name from when Graph was the only provider; existing callers read it). */
  graph: GraphMode;
}

export function credentialModes(env: NodeJS.ProcessEnv, selection: MailboxSelection = { provider: DEFAULT_LOCAL_PROVIDER }): LocalModes {
  const problems: string[] = [];
  let wecom: WecomMode = 'simulated';
  const cb = set(env, WECOM_CALLBACK);
  const api = set(env, WECOM_API);
  if (cb.length === 3 && api.length === 2) wecom = 'real';
  else if (cb.length === 3 && api.length === 0) wecom = 'callback-only';
  else if (cb.length || api.length) {
    const lacking = api.length ? missing(env, [...WECOM_CALLBACK, ...WECOM_API]) : missing(env, WECOM_CALLBACK);
    problems.push(
      `WeCom is partly configured: ${lacking.join(', ')} missing. Set all five WECOM_* variables (real WeCom), ` +
        `only ${WECOM_CALLBACK.join(', ')} (callback only: a real app can verify the URL, the API stays simulated), or none (simulated).`,
    );
  }
  let mailbox: MailboxMode = 'simulated';
  const real = MAILBOX_REAL[selection.provider];
  if (real) {
    const g = set(env, real.vars);
    if (!SIMULATED_PROVIDERS.includes(selection.provider)) {
      // No simulator: the real directory or nothing. Names only, never a value.
      const ldap = selection.ldap ?? {};
      const settings = [
        ...(Array.isArray(ldap.urls) && ldap.urls.length ? [] : ['ldap.urls']),
        ...(typeof ldap.baseDn === 'string' && ldap.baseDn ? [] : ['ldap.baseDn']),
      ];
      const lacking = [...missing(env, real.vars), ...(settings.length ? [`SYNC_CONFIG ${settings.join(', ')}`] : [])];
      if (lacking.length) {
        problems.push(
          `${real.title} has no simulator: the local stack runs it against a real directory only. Missing: ${lacking.join(', ')}. ` +
            `Set ${real.vars.join(', ')} (environment or .env) and SYNC_CONFIG '{"provider":"${selection.provider}","ldap":{"urls":["ldaps://dc.example.com"],"baseDn":"dc=example,dc=com"}}'.`,
        );
      }
      mailbox = 'real';
    } else if (g.length === real.vars.length) mailbox = 'real';
    else if (g.length) problems.push(`${real.title} is partly configured: ${missing(env, real.vars).join(', ')} missing. Set all of ${real.vars.join(', ')}, or none (simulated).`);
  }
  if (wecom !== 'simulated' && env.WECOM_ENCODING_AES_KEY) {
    try {
      aesKey(env.WECOM_ENCODING_AES_KEY);
    } catch {
      problems.push('WECOM_ENCODING_AES_KEY is not a valid EncodingAESKey (43 letters and digits, as WeCom generates it).');
    }
  }
  if (problems.length) throw new LocalConfigError(problems.join('\n'));
  return { wecom, mailbox, graph: mailbox };
}

function newEncodingAESKey(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 43 }, () => alphabet[randomInt(alphabet.length)]).join('');
}
function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

function demoGoogle(mailDomain: string): GoogleLocalCredentials {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  return {
    clientEmail: `wecom-sync@demo-${randomBytes(3).toString('hex')}.iam.gserviceaccount.com`,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    adminEmail: `admin@${mailDomain}`,
    clientState: newSecret(32),
  };
}

function demoExmail(): ExmailLocalCredentials {
  return { corpId: `wmdemo${randomBytes(6).toString('hex')}`, contactsSecret: newSecret(), logSecret: newSecret() };
}

/** The demo file, with the provider's demo block added (and the file rewritten) the first time it is needed. */
function demoCredentials(dataDir: string, provider: string, mailDomain: string): LocalCredentials {
  const file = join(dataDir, 'demo-credentials.json');
  let demo: LocalCredentials;
  let dirty = false;
  if (existsSync(file)) demo = JSON.parse(readFileSync(file, 'utf8')) as LocalCredentials;
  else {
    demo = {
      corpId: `wwdemo${randomBytes(6).toString('hex')}`,
      token: newSecret(18).replace(/[-_]/g, 'x').slice(0, 24),
      encodingAESKey: newEncodingAESKey(),
      contactsSecret: newSecret(),
      appSecret: newSecret(),
      tenantId: `demo-tenant-${randomBytes(4).toString('hex')}`,
      clientId: randomUUID(),
      clientSecret: newSecret(),
      clientState: newSecret(32),
      webhookSecret: newSecret(32),
    };
    dirty = true;
  }
  if (provider === 'google' && !demo.google) {
    demo.google = demoGoogle(mailDomain);
    dirty = true;
  }
  if (provider === 'exmail' && !demo.exmail) {
    demo.exmail = demoExmail();
    dirty = true;
  }
  if (dirty) writeFileSync(file, JSON.stringify(demo, null, 2), { mode: 0o600 });
  return demo;
}

export interface LoadedCredentials {
  creds: LocalCredentials;
  modes: LocalModes;
  /** Credentials that came from the environment: the operator's, never printed. */
  fromEnv: Array<keyof LocalCredentials>;
}

export interface LoadCredentialsOptions extends Partial<MailboxSelection> {
  /** The mail domain (the demo Google admin's address). Default example.com. */
  mailDomain?: string;
}

export function loadCredentials(env: NodeJS.ProcessEnv, dataDir: string, opts: LoadCredentialsOptions = {}): LoadedCredentials {
  const provider = opts.provider ?? DEFAULT_LOCAL_PROVIDER;
  const modes = credentialModes(env, { provider, ...(opts.ldap ? { ldap: opts.ldap } : {}) });
  const real = modes.mailbox === 'real';
  const creds: LocalCredentials = { ...demoCredentials(dataDir, real ? 'none' : provider, opts.mailDomain ?? 'example.com') };
  const fromEnv: Array<keyof LocalCredentials> = [];
  const take = (key: keyof LocalCredentials, name: string) => {
    (creds as unknown as Record<string, unknown>)[key] = env[name]!;
    fromEnv.push(key);
  };
  if (modes.wecom !== 'simulated') {
    take('corpId', 'WECOM_CORP_ID');
    take('token', 'WECOM_TOKEN');
    take('encodingAESKey', 'WECOM_ENCODING_AES_KEY');
  }
  if (modes.wecom === 'real') {
    take('contactsSecret', 'WECOM_CONTACTS_SECRET');
    take('appSecret', 'WECOM_APP_SECRET');
  }
  if (provider === 'graph' && real) {
    take('tenantId', 'GRAPH_TENANT_ID');
    take('clientId', 'GRAPH_CLIENT_ID');
    take('clientSecret', 'GRAPH_CLIENT_SECRET');
  }
  if (env.GRAPH_CLIENT_STATE) take('clientState', 'GRAPH_CLIENT_STATE');
  if (env.MAILBOX_WEBHOOK_SECRET) take('webhookSecret', 'MAILBOX_WEBHOOK_SECRET');
  if (provider === 'google') {
    // The channel token is ours (Google only echoes it): the operator's when set; else the demo
    // one, or with a real Workspace one derived from the webhook secret — stable across restarts,
    // so the channels a previous run opened still pass.
    const channelToken = env.GOOGLE_CHANNEL_TOKEN;
    if (real) {
      const derived = createHmac('sha256', creds.webhookSecret).update('google users.watch channel token').digest('base64url');
      creds.google = { clientEmail: env.GOOGLE_CLIENT_EMAIL!, privateKey: env.GOOGLE_PRIVATE_KEY!, adminEmail: env.GOOGLE_ADMIN_EMAIL!, clientState: channelToken ?? derived };
      fromEnv.push('google');
    } else if (channelToken) {
      creds.google = { ...creds.google!, clientState: channelToken };
      fromEnv.push('google');
    }
  } else delete creds.google;
  if (provider === 'exmail') {
    if (real) {
      creds.exmail = { corpId: env.EXMAIL_CORP_ID!, contactsSecret: env.EXMAIL_CONTACTS_SECRET!, logSecret: env.EXMAIL_LOG_SECRET! };
      fromEnv.push('exmail');
    }
  } else delete creds.exmail;
  if (provider === 'ldap') {
    creds.ldap = { bindDn: env.LDAP_BIND_DN!, bindPassword: env.LDAP_BIND_PASSWORD! };
    fromEnv.push('ldap');
  }
  return { creds, modes, fromEnv };
}

/**
 * The mailbox secret of `provider` (the keys of its descriptor's `secretEnv` plus
 * webhookSecret), from the loaded credentials: what `provider.create` and the push receiver get.
 */
export function localMailboxSecret(provider: string, creds: LocalCredentials): MailboxSecret {
  const base = { webhookSecret: creds.webhookSecret };
  switch (provider) {
    case 'google': {
      const g = creds.google!;
      return { ...base, clientEmail: g.clientEmail, privateKey: g.privateKey, adminEmail: g.adminEmail, clientState: g.clientState };
    }
    case 'exmail': {
      const x = creds.exmail!;
      return { ...base, corpId: x.corpId, contactsSecret: x.contactsSecret, logSecret: x.logSecret };
    }
    case 'ldap': {
      const l = creds.ldap!;
      return { ...base, bindDn: l.bindDn, bindPassword: l.bindPassword };
    }
    default:
      return { ...base, tenantId: creds.tenantId, clientId: creds.clientId, clientSecret: creds.clientSecret, clientState: creds.clientState };
  }
}
