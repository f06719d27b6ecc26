/**
 * The runtime configuration every function reads: one JSON document (`SYNC_CONFIG`, written
 * by the CDK stack from the validated deployment config, by the local stack, or by tests),
 * validated once at cold start. A bad value stops the function with an error that names the
 * path of the offending key, never silently falls back to a default.
 *
 * Secrets are not here: they come from Secrets Manager (`config/secrets.ts`).
 */
import * as z from 'zod';
import { CONTACT_FIELDS, type ContactField } from '../core/model';

const field = z.enum(CONTACT_FIELDS);

/** A department path as written in config: '技术部/研发组' (no leading or trailing slash, no empty segment). */
const departmentPath = z
  .string()
  .trim()
  .min(1)
  .refine((p) => p.split('/').every((s) => s.trim().length > 0), { message: "a department path is '/'-separated names, e.g. 技术部/研发组" })
  .transform((p) => p.split('/').map((s) => s.trim()).join('/'));

const profileSchema = z
  .object({
    /** The fields that may leave WeCom at all. */
    fields: z.array(field).min(1).default(['name', 'email', 'mobile', 'telephone', 'position', 'departments']),
    /** Members at or under these paths get the reduced profile (protectedFields withheld). */
    protectedDepartments: z.array(departmentPath).default([]),
    protectedFields: z.array(field).default(['mobile', 'telephone', 'personalEmail', 'address', 'extattr']),
    /** Where the mailbox data lives: 'CN' (in China) or anything else (abroad: an ISO country or 'ABROAD'). */
    targetRegion: z.string().trim().min(2).default('CN'),
    /** Cross-border transfer of personal data declared approved (PIPL). Without it nothing sensitive goes abroad. */
    crossBorderApproved: z.boolean().default(false),
    /**
     * Which way each field flows. 'wecom': WeCom's value is written to the mailbox (the default
     * with lifecycle.source 'wecom'); 'mailbox': the mailbox's value is written to WeCom and a
     * WeCom-side edit is put back (audited 'revert'; the default with lifecycle.source
     * 'mailbox'); 'none': the sync never touches the field on either side.
     */
    authority: z.partialRecord(field, z.enum(['wecom', 'mailbox', 'none'])).default({}),
    /** When set, only members at or under these paths are synced at all. */
    scopeDepartments: z.array(departmentPath).min(1).optional(),
  })
  .strict();

/** Offboarding, onboarding and the deletion guard: the same schema at synth (lib/config.ts) and at cold start. */
export const offboardingSchema = z
  .object({
    mode: z.enum(['disable-then-delete', 'delete', 'disable-only']).default('disable-then-delete'),
    graceDays: z.number().int().min(0).max(365).default(30),
  })
  .strict()
  .default({ mode: 'disable-then-delete', graceDays: 30 });

export const onboardingSchema = z
  .object({
    /** Hold a new WeCom member (disabled) until their mailbox exists. */
    gate: z.boolean().default(true),
    /** Tag the member instead of enabling it. */
    provisionedTagId: z.number().int().positive().optional(),
  })
  .strict()
  .default({ gate: true });

export const reconcileSchema = z
  .object({
    /** A run that would disable/delete more than this many people stops and asks a human. */
    maxDeletes: z.number().int().min(0).default(20),
    maxDeletePercent: z.number().min(0).max(100).default(5),
    mode: z.enum(['report', 'repair']).optional(),
  })
  .strict()
  .default({ maxDeletes: 20, maxDeletePercent: 5 });

/**
 * The deletion guard on the EVENT path (reconcile repairs and the grace deleter have their
 * own): destructive actions caused by events — a mailbox disabled because its member left
 * WeCom, a WeCom member disabled or deleted because its mailbox was offboarded — pass a
 * sliding-window budget shared by every worker. Past it they are held for an operator.
 */
/**
 * Where people are born. 'wecom' (default): a member created in WeCom gets a mailbox account.
 * 'mailbox': an account created in the mailbox (AD / Microsoft 365 as the directory of record)
 * gets a WeCom member — created disabled, enabled once its record is complete — and the
 * mailbox's fields flow to WeCom (see profile.authority).
 */
export const lifecycleSchema = z
  .object({
    source: z.enum(['wecom', 'mailbox']).default('wecom'),
    /**
     * Which mailbox accounts are people to create in WeCom (mailbox source only): enabled
     * member accounts (never guests or shared/resource mailboxes) that are in one of these
     * groups, or at or under one of these department paths, or all of them when neither is set.
     */
    mailboxScope: z
      .object({
        groupIds: z.array(z.string().min(1)).optional(),
        departments: z.array(departmentPath).optional(),
      })
      .strict()
      .default({}),
    /** How a new member's userid is derived: {localpart} (of the address) or {mailNickname}, lower-cased. */
    useridRule: z
      .string()
      .default('{localpart}')
      .refine((r) => /\{(localpart|mailNickname)\}/.test(r), { message: 'must contain {localpart} or {mailNickname}' }),
    /** A mailbox department path WeCom does not have: created in WeCom (true) or refused and reported (false). */
    createDepartments: z.boolean().default(false),
  })
  .strict()
  .default({ source: 'wecom', mailboxScope: {}, useridRule: '{localpart}', createDepartments: false });

export const deletionGuardSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** At most this many people within the window… */
    maxPeople: z.number().int().min(1).default(20),
    /** …and at most this share of the managed people (the smaller wins; never below 1 person). */
    maxPercent: z.number().min(0).max(100).default(5),
    windowMinutes: z.number().int().min(1).max(1440).default(10),
  })
  .strict()
  .default({ enabled: true, maxPeople: 20, maxPercent: 5, windowMinutes: 10 });

/**
 * The names the `provider` key accepts. The registry (functions/mailbox/providers.ts) maps
 * each to its adapter or marks it planned; it is typed by this list, so a name cannot be
 * added here without an entry there. The list lives here, not there, because config sits
 * below the adapters (test/unit/layers.test.ts) and must not import them.
 */
export const MAILBOX_PROVIDER_NAMES = ['graph', 'google', 'exmail', 'scim', 'ldap'] as const;
export type MailboxProviderName = (typeof MAILBOX_PROVIDER_NAMES)[number];

/**
 * Microsoft 365 (`provider: graph`). `cloud` picks Microsoft's endpoints and token scope
 * (profiles in functions/mailbox/graph/config.ts): `global`, or `china` for Microsoft 365
 * operated by 21Vianet. `apiBase` / `tokenUrl` move the transport only (a proxy, the local
 * simulator); the scope and the `@odata.id` references still name the cloud's Graph host.
 * `changeNotifications` overrides the cloud's default change feed (push notifications on
 * users vs the scheduled delta read).
 */
const graphSchema = z
  .object({
    cloud: z.enum(['global', 'china']).default('global'),
    apiBase: z.url().optional(),
    tokenUrl: z.url().optional(),
    notificationUrl: z.url().optional(),
    usageLocation: z.string().length(2).optional(),
    changeNotifications: z.boolean().optional(),
  })
  .strict()
  .default({ cloud: 'global' });

/**
 * Google Workspace (`provider: google`; functions/mailbox/google/config.ts). `customer` is the
 * Directory API's customer key (`my_customer`: the impersonated admin's own account; the
 * secret's `customerId` wins when set). `apiBase` / `tokenUrl` move the transport only (the
 * simulator, a proxy): the JWT's audience stays Google's token endpoint. `orgUnits` maps a
 * department path (and everything under it; the longest prefix wins) to an org unit path set
 * with the department. `link` is where the WeCom userid lives (`externalIds[{type}]`).
 * `changeNotifications: false` turns the users.watch channels off (the scheduled catch-up is
 * then the feed). `watchEvents`: one channel per event; `channelTtlSeconds` at most 21600.
 */
export const googleSettingsSchema = z
  .object({
    customer: z.string().trim().min(1).default('my_customer'),
    apiBase: z.url().optional(),
    tokenUrl: z.url().optional(),
    notificationUrl: z.url().optional(),
    link: z
      .object({ type: z.enum(['organization', 'custom']).default('organization'), customType: z.string().trim().min(1).max(64).optional() })
      .strict()
      .refine((l) => l.type !== 'custom' || !!l.customType, { message: "type 'custom' needs a customType" })
      .default({ type: 'organization' }),
    orgUnits: z.record(departmentPath, z.string().regex(/^\/.*/, 'an org unit path starts with /')).optional(),
    changeNotifications: z.boolean().optional(),
    watchEvents: z.array(z.enum(['add', 'update', 'delete', 'undelete', 'makeAdmin'])).min(1).default(['add', 'update', 'delete', 'undelete']),
    channelTtlSeconds: z.number().int().min(300).max(21_600).default(21_600),
    catchUpIntervalMinutes: z.number().int().min(0).max(1440).default(60),
  })
  .strict();
const googleSchema = googleSettingsSchema.default(() => googleSettingsSchema.parse({}));

/**
 * Tencent Exmail (`provider: exmail`; functions/mailbox/exmail/). `apiBase` moves the transport
 * (the simulator, a proxy). The change feed reads the operation log (`log/operation`) of type
 * `logType` (0 = all in the published example) by whole days in `logUtcOffsetMinutes`' calendar
 * (Beijing time), at most `logMaxRangeDays` per request, from a cursor that re-reads the last
 * `logOverlapSeconds` (records the log writes late) and never further back than
 * `logLookbackDays`. `indexTtlSeconds`: how long the link index (extid → account, built from one
 * full listing) answers before it is read again; `pageSize`: accounts per listPage page;
 * `phoneRegion`: the region of numbers Exmail stores without a country code; `callsPerMinute`:
 * the client's own budget per API, so a burst waits instead of meeting Exmail's limit.
 */
export const exmailSettingsSchema = z
  .object({
    apiBase: z.url().default('https://api.exmail.qq.com'),
    logType: z.number().int().min(0).max(99).default(0),
    logMaxRangeDays: z.number().int().min(1).max(366).default(30),
    logOverlapSeconds: z.number().int().min(0).max(86_400).default(120),
    logLookbackDays: z.number().int().min(1).max(3650).default(90),
    logUtcOffsetMinutes: z.number().int().min(-720).max(840).default(480),
    indexTtlSeconds: z.number().int().min(0).max(86_400).default(300),
    pageSize: z.number().int().min(1).max(10_000).default(500),
    phoneRegion: z.string().length(2).toUpperCase().default('CN'),
    /** Client-side budget per API per process (core/rate-limit.ts): Exmail's is said to be 500/min per API per corp; set it to that ÷ the worker concurrency. Absent: none. */
    callsPerMinute: z.number().int().min(2).max(1_000_000).optional(),
  })
  .strict();
const exmailSchema = exmailSettingsSchema.default(() => exmailSettingsSchema.parse({}));

/**
 * LDAP / Active Directory (`provider: ldap`; functions/mailbox/ldap/, docs/providers/ldap.md).
 * `schema` picks the attribute profile (`ad`: objectGUID, employeeID, userAccountControl,
 * uSNChanged; `openldap`: entryUUID, employeeNumber, pwdAccountLockedTime, modifyTimestamp);
 * `attributes` overrides single names of it. `urls` (tried in order) and `baseDn` are required
 * to connect; the deployment config (lib/config.ts) insists on them, the adapter refuses
 * without them (`invalid`). `writes: false` (the default) makes the directory read-only: AD as
 * the source of truth. `ldap://` without `startTls` would send the bind password in clear, so
 * it needs `allowPlaintext: true`. `department.from: 'ou-path'` reads the department from the
 * entry's OUs under `department.base` (default baseDn), read-only. `feed`: the polling change
 * feed (overlap re-read for timestamp markers, how often deletions are looked for, how far back
 * a change of domain controller re-reads by whenChanged).
 */
const ldapAttributeName = z.string().trim().regex(/^[A-Za-z][A-Za-z0-9-]*$/, 'an LDAP attribute name, e.g. employeeNumber');
const ldapDn = z.string().trim().regex(/^[A-Za-z][\w.-]*\s*=.+$/, 'a DN such as ou=people,dc=example,dc=com');
const ldapFeedSchema = z
  .object({
    overlapSeconds: z.number().int().min(0).max(3600).default(60),
    deletionSweepMinutes: z.number().int().min(0).max(1440).default(60),
    rebaseMinutes: z.number().int().min(1).max(10_080).default(60),
  })
  .strict();
export const ldapSettingsSchema = z
  .object({
    schema: z.enum(['ad', 'openldap']).default('openldap'),
    urls: z.array(z.string().trim().regex(/^ldaps?:\/\/[^/\s?#]+\/?$/i, 'must be ldap://host[:port] or ldaps://host[:port]')).min(1).optional(),
    baseDn: ldapDn.optional(),
    userFilter: z.string().trim().regex(/^\(.*\)$/, 'an LDAP filter in parentheses, e.g. (objectClass=inetOrgPerson)').optional(),
    attributes: z
      .object({
        employeeId: ldapAttributeName,
        id: ldapAttributeName,
        email: ldapAttributeName,
        displayName: ldapAttributeName,
        mobile: ldapAttributeName,
        telephone: ldapAttributeName,
        jobTitle: ldapAttributeName,
        department: ldapAttributeName,
        mailNickname: ldapAttributeName,
      })
      .partial()
      .strict()
      .default({}),
    department: z
      .object({ from: z.enum(['attribute', 'ou-path']).default('attribute'), base: ldapDn.optional() })
      .strict()
      .default({ from: 'attribute' }),
    /** OpenLDAP (and other non-AD servers): disabled = this attribute holds `value` (any value when absent). AD reads userAccountControl. */
    disabled: z.object({ attribute: ldapAttributeName, value: z.string().min(1).optional() }).strict().optional(),
    writes: z.boolean().default(false),
    /** Where new entries go (writes only); default baseDn. */
    createIn: ldapDn.optional(),
    startTls: z.boolean().default(false),
    allowPlaintext: z.boolean().default(false),
    timeoutMs: z.number().int().min(500).max(120_000).default(10_000),
    connectTimeoutMs: z.number().int().min(500).max(60_000).default(5_000),
    pageSize: z.number().int().min(1).max(5_000).default(500),
    feed: ldapFeedSchema.default(() => ldapFeedSchema.parse({})),
  })
  .strict();
const ldapSchema = ldapSettingsSchema.default(() => ldapSettingsSchema.parse({}));

const runtimeSchema = z
  .object({
    /**
     * The mailbox system, by its name in the provider registry (functions/mailbox/providers.ts,
     * which says which are implemented and refuses a planned one when the adapter is loaded).
     */
    provider: z.enum(MAILBOX_PROVIDER_NAMES),
    mailDomain: z
      .string()
      .trim()
      .toLowerCase()
      .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a DNS domain such as example.com'),
    /** How a mailbox address is derived when neither WeCom nor the mailbox gives one. */
    addressRule: z
      .string()
      .default('{userid}@{domain}')
      .refine((r) => r.includes('{userid}') && /@/.test(r), { message: 'must contain {userid} and an @, e.g. {userid}@{domain}' }),
    profile: profileSchema.default(() => profileSchema.parse({})),
    offboarding: offboardingSchema,
    onboarding: onboardingSchema,
    reconcile: reconcileSchema,
    deletionGuard: deletionGuardSchema,
    lifecycle: lifecycleSchema,
    wecom: z
      .object({
        apiBase: z.url().default('https://qyapi.weixin.qq.com'),
        replayWindowSeconds: z.number().int().min(30).max(3600).default(600),
        /**
         * This process's calls per WeCom API per minute (the client waits for its budget):
         * WeCom allows 10,000 per API per corp and then blocks the API for 60 s. A deployment
         * divides its share by the worker's concurrency (lib/config.ts); 9,000 for one process.
         */
        callsPerMinute: z.number().int().min(60).max(10_000).default(9_000),
      })
      .strict()
      .default({ apiBase: 'https://qyapi.weixin.qq.com', replayWindowSeconds: 600, callsPerMinute: 9_000 }),
    graph: graphSchema,
    google: googleSchema,
    exmail: exmailSchema,
    ldap: ldapSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    // A read-only directory (AD as the source of truth under a read-only bind account) can
    // only be the source: nothing may have to flow into it.
    if (c.provider !== 'ldap' || c.ldap.writes) return;
    if (c.lifecycle.source !== 'mailbox') {
      ctx.addIssue({ code: 'custom', path: ['lifecycle', 'source'], message: "must be 'mailbox' with a read-only LDAP directory (ldap.writes false): WeCom's people cannot be written into it; set ldap.writes true to let WeCom be the source" });
    }
    const toMailbox = Object.entries(c.profile.authority).filter(([, a]) => a === 'wecom').map(([f]) => f);
    if (toMailbox.length) {
      ctx.addIssue({ code: 'custom', path: ['profile', 'authority'], message: `${toMailbox.join(', ')}: 'wecom' would write the read-only LDAP directory (ldap.writes false); use 'mailbox' or 'none'` });
    }
  });

export type RuntimeConfig = z.infer<typeof runtimeSchema>;
export type SyncProfile = RuntimeConfig['profile'];
export type { ContactField };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parse and validate; throws ConfigError listing every problem as `path: message`. */
/**
 * Defaults that depend on the provider, applied before validation (the deployment config does
 * the same, lib/config.ts): a read-only LDAP directory — `provider: ldap` without
 * `ldap.writes`, the default — is the source of truth, so `lifecycle.source` defaults to
 * `mailbox` there. An explicit value is kept (and validated).
 */
export function withProviderDefaults(input: unknown): unknown {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return input;
  const c = input as { provider?: unknown; ldap?: { writes?: unknown }; lifecycle?: { source?: unknown } };
  if (c.provider !== 'ldap' || c.ldap?.writes === true || c.lifecycle?.source !== undefined) return input;
  return { ...c, lifecycle: { ...c.lifecycle, source: 'mailbox' } };
}

export function parseRuntimeConfig(input: string | unknown): RuntimeConfig {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      throw new ConfigError('SYNC_CONFIG is not valid JSON');
    }
  }
  const result = runtimeSchema.safeParse(withProviderDefaults(value));
  if (!result.success) {
    const lines = issuesOf(result.error).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid sync configuration:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

const issuesOf = (error: z.ZodError) => error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message }));

/** What would stop parseRuntimeConfig, as path + message pairs (the deployment config reports them at synth). */
export function runtimeConfigIssues(input: unknown): Array<{ path: Array<string | number>; message: string }> {
  const result = runtimeSchema.safeParse(withProviderDefaults(input));
  return result.success ? [] : issuesOf(result.error);
}

/** The configuration of this process, from `SYNC_CONFIG`. */
export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  if (!env.SYNC_CONFIG) throw new ConfigError('SYNC_CONFIG is not set');
  return parseRuntimeConfig(env.SYNC_CONFIG);
}

/** Is the target outside China (so cross-border rules apply)? */
export function targetIsAbroad(profile: SyncProfile): boolean {
  return profile.targetRegion.toUpperCase() !== 'CN';
}
