/**
 * Which side of the local stack is real, and with which credentials.
 *
 * Modes, decided from the environment (or .env) at start — never guessed:
 *  - WeCom `simulated`: none of the WECOM_* variables; demo keys, the loopback simulator.
 *  - WeCom `callback-only`: exactly WECOM_CORP_ID, WECOM_TOKEN, WECOM_ENCODING_AES_KEY — what
 *    an admin sets to let a real WeCom app verify the callback URL; the contacts API stays
 *    simulated (its simulator signs its callbacks with the same real keys).
 *  - WeCom `real`: all five variables.
 *  - Graph `simulated` / `real`: none or all of GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET.
 * Any other combination stops the stack with the names that are missing: a half-configured
 * side silently falling back to demo keys is how every real callback ended in 403.
 *
 * Demo values are generated once and kept in <dataDir>/demo-credentials.json (0600), so a
 * restart keeps the callback keys a WeCom app may have been pointed at. `fromEnv` names the
 * values that came from the environment: those are the operator's secrets and are never
 * printed.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aesKey } from '../../functions/wecom/crypto';

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
}

export type WecomMode = 'simulated' | 'callback-only' | 'real';
export type GraphMode = 'simulated' | 'real';

export class LocalConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalConfigError';
  }
}

const WECOM_CALLBACK = ['WECOM_CORP_ID', 'WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY'] as const;
const WECOM_API = ['WECOM_CONTACTS_SECRET', 'WECOM_APP_SECRET'] as const;
const GRAPH = ['GRAPH_TENANT_ID', 'GRAPH_CLIENT_ID', 'GRAPH_CLIENT_SECRET'] as const;

const set = (env: NodeJS.ProcessEnv, names: readonly string[]) => names.filter((n) => Boolean(env[n]));
const missing = (env: NodeJS.ProcessEnv, names: readonly string[]) => names.filter((n) => !env[n]);

export function credentialModes(env: NodeJS.ProcessEnv): { wecom: WecomMode; graph: GraphMode } {
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
  let graph: GraphMode = 'simulated';
  const g = set(env, GRAPH);
  if (g.length === 3) graph = 'real';
  else if (g.length) problems.push(`Microsoft Graph is partly configured: ${missing(env, GRAPH).join(', ')} missing. Set all three GRAPH_* credentials, or none (simulated).`);
  if (wecom !== 'simulated' && env.WECOM_ENCODING_AES_KEY) {
    try {
      aesKey(env.WECOM_ENCODING_AES_KEY);
    } catch {
      problems.push('WECOM_ENCODING_AES_KEY is not a valid EncodingAESKey (43 letters and digits, as WeCom generates it).');
    }
  }
  if (problems.length) throw new LocalConfigError(problems.join('\n'));
  return { wecom, graph };
}

function newEncodingAESKey(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 43 }, () => alphabet[randomInt(alphabet.length)]).join('');
}
function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

function demoCredentials(dataDir: string): LocalCredentials {
  const file = join(dataDir, 'demo-credentials.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as LocalCredentials;
  const demo: LocalCredentials = {
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
  writeFileSync(file, JSON.stringify(demo, null, 2), { mode: 0o600 });
  return demo;
}

export interface LoadedCredentials {
  creds: LocalCredentials;
  modes: { wecom: WecomMode; graph: GraphMode };
  /** Credentials that came from the environment: the operator's, never printed. */
  fromEnv: Array<keyof LocalCredentials>;
}

export function loadCredentials(env: NodeJS.ProcessEnv, dataDir: string): LoadedCredentials {
  const modes = credentialModes(env);
  const creds: LocalCredentials = { ...demoCredentials(dataDir) };
  const fromEnv: Array<keyof LocalCredentials> = [];
  const take = (key: keyof LocalCredentials, name: string) => {
    creds[key] = env[name]!;
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
  if (modes.graph === 'real') {
    take('tenantId', 'GRAPH_TENANT_ID');
    take('clientId', 'GRAPH_CLIENT_ID');
    take('clientSecret', 'GRAPH_CLIENT_SECRET');
  }
  if (env.GRAPH_CLIENT_STATE) take('clientState', 'GRAPH_CLIENT_STATE');
  if (env.MAILBOX_WEBHOOK_SECRET) take('webhookSecret', 'MAILBOX_WEBHOOK_SECRET');
  return { creds, modes, fromEnv };
}
