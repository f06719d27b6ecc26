/**
 * The effective runtime configuration as rows an operator can read: each setting's path, its
 * value, the default, and (through the catalogue, key `config.<path>`) what it means.
 *
 * The runtime config carries no secrets by design (they live in Secrets Manager / the local
 * credentials file); redaction here is the second line: a key that names a secret is never
 * shown, and a URL loses any user-info and query string (where a key could hide).
 */
import { MAILBOX_PROVIDER_NAMES, parseRuntimeConfig, type RuntimeConfig } from '../../../functions/config/runtime';

/** Every setting, in the order the page lists them (also the catalogue's `config.*` keys). */
export const CONFIG_PATHS = [
  'provider',
  'mailDomain',
  'addressRule',
  'profile.fields',
  'profile.protectedDepartments',
  'profile.protectedFields',
  'profile.targetRegion',
  'profile.crossBorderApproved',
  'profile.authority',
  'profile.scopeDepartments',
  'offboarding.mode',
  'offboarding.graceDays',
  'onboarding.gate',
  'onboarding.provisionedTagId',
  'reconcile.maxDeletes',
  'reconcile.maxDeletePercent',
  'reconcile.mode',
  'lifecycle.source',
  'lifecycle.mailboxScope.groupIds',
  'lifecycle.mailboxScope.departments',
  'lifecycle.useridRule',
  'lifecycle.createDepartments',
  'deletionGuard.enabled',
  'deletionGuard.maxPeople',
  'deletionGuard.maxPercent',
  'deletionGuard.windowMinutes',
  'wecom.apiBase',
  'wecom.replayWindowSeconds',
  'graph.cloud',
  'graph.apiBase',
  'graph.tokenUrl',
  'graph.notificationUrl',
  'graph.usageLocation',
  'graph.changeNotifications',
  'wecom.callsPerMinute',
  'google.customer',
  'google.apiBase',
  'google.tokenUrl',
  'google.notificationUrl',
  'google.link.type',
  'google.link.customType',
  'google.orgUnits',
  'google.changeNotifications',
  'google.watchEvents',
  'google.channelTtlSeconds',
  'google.catchUpIntervalMinutes',
  'exmail.apiBase',
  'exmail.logType',
  'exmail.logMaxRangeDays',
  'exmail.logOverlapSeconds',
  'exmail.logLookbackDays',
  'exmail.logUtcOffsetMinutes',
  'exmail.indexTtlSeconds',
  'exmail.pageSize',
  'exmail.phoneRegion',
  'exmail.callsPerMinute',
  'ldap.schema',
  'ldap.urls',
  'ldap.baseDn',
  'ldap.userFilter',
  'ldap.attributes',
  'ldap.department.from',
  'ldap.department.base',
  'ldap.disabled.attribute',
  'ldap.disabled.value',
  'ldap.writes',
  'ldap.createIn',
  'ldap.startTls',
  'ldap.allowPlaintext',
  'ldap.timeoutMs',
  'ldap.connectTimeoutMs',
  'ldap.pageSize',
  'ldap.feed.overlapSeconds',
  'ldap.feed.deletionSweepMinutes',
  'ldap.feed.rebaseMinutes',
] as const;
export type ConfigPath = (typeof CONFIG_PATHS)[number];

export interface ConfigRow {
  path: string;
  /** Display text; undefined = not set. */
  value?: string;
  default?: string;
  changed: boolean;
  redacted: boolean;
  known: boolean;
}

/** Objects whose keys are data, not settings: shown as one value. */
const LEAF_OBJECTS = new Set(['profile.authority', 'google.orgUnits', 'ldap.attributes']);
const SECRET_KEY = /secret|password|passwd|clientstate|aeskey|encodingaeskey|(^|\.)token$|apikey|api_key/i;

export function flatten(value: unknown, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (value && typeof value === 'object' && !Array.isArray(value) && !LEAF_OBJECTS.has(prefix)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) Object.assign(out, flatten(v, prefix ? `${prefix}.${k}` : k));
  } else if (prefix) out[prefix] = value;
  return out;
}

function display(path: string, value: unknown): { text?: string; redacted: boolean } {
  if (value === undefined) return { redacted: false };
  if (SECRET_KEY.test(path)) return { text: '****', redacted: true };
  if (typeof value === 'string' && /^https?:\/\//i.test(value)) {
    try {
      const url = new URL(value);
      const hidden = Boolean(url.username || url.password || url.search);
      url.username = '';
      url.password = '';
      url.search = hidden && url.search ? '?…' : '';
      return { text: decodeURI(url.toString()), redacted: hidden };
    } catch {
      return { text: '****', redacted: true };
    }
  }
  if (Array.isArray(value)) return { text: value.length ? value.join(', ') : '—', redacted: false };
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    return { text: entries.length ? entries.map(([k, v]) => `${k}: ${String(v)}`).join(', ') : '—', redacted: false };
  }
  return { text: String(value), redacted: false };
}

/** The runtime's own defaults, for the same provider and domain. */
function defaults(config: RuntimeConfig): Record<string, unknown> {
  return flatten(parseRuntimeConfig({ provider: config.provider, mailDomain: config.mailDomain }));
}

export function configRows(config: RuntimeConfig): ConfigRow[] {
  const values = flatten(config);
  const base = defaults(config);
  const extra = Object.keys(values).filter((p) => !(CONFIG_PATHS as readonly string[]).includes(p));
  // Another provider's block is defaults the deployment never reads: not shown.
  const otherProvider = (path: string) => {
    const head = path.split('.')[0]!;
    return head !== config.provider && (MAILBOX_PROVIDER_NAMES as readonly string[]).includes(head);
  };
  return [...CONFIG_PATHS, ...extra].filter((path) => !otherProvider(path)).map((path) => {
    const v = display(path, values[path]);
    const d = display(path, base[path]);
    return {
      path,
      ...(v.text !== undefined ? { value: v.text } : {}),
      ...(d.text !== undefined ? { default: d.text } : {}),
      changed: JSON.stringify(values[path]) !== JSON.stringify(base[path]),
      redacted: v.redacted,
      known: (CONFIG_PATHS as readonly string[]).includes(path),
    };
  });
}
