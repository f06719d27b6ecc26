/**
 * The deployment's typed configuration.
 *
 * Read from the cdk.json context key `wecomMailboxSync`, or from the JSON file named by the
 * context key `configFile` (path relative to the working directory), and validated at synth
 * time with zod: a bad value stops `cdk synth` with the field's path and the reason, before
 * anything reaches CloudFormation.
 *
 * It yields two things:
 *  - the infrastructure knobs (schedules, alarms, throttling, concurrency, egress, retention);
 *  - `syncConfig`: the non-secret runtime settings every Lambda receives as ONE JSON string in
 *    `SYNC_CONFIG` (parsed again at cold start by functions/config/runtime.ts).
 * Secrets never pass through here: they live in Secrets Manager (see lib/stack.ts).
 *
 * Some rules depend on WHERE the stack deploys (`deploymentRegionIssues`, checked with the
 * region the app synthesizes for; lib/region.ts):
 *  - cross-border (PIPL): the region that PROCESSES the data counts, not only the mailbox's
 *    (`syncProfile.targetRegion`). Outside mainland China — any region not `cn-*`, Hong Kong
 *    (ap-east-1) included, and an environment-agnostic synth, whose template can deploy
 *    anywhere — sensitive fields in `syncProfile.fields` need `crossBorderApproved: true`.
 *  - a mainland China region needs `apiDomain` (ICP-filed custom domain; see lib/api-domain.ts
 *    and the README's China section for why the default endpoint is refused).
 *  - the custom domain's certificate must live in the deploy region and partition.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { CONTACT_FIELDS, SENSITIVE_FIELDS } from '../functions/core/model';
import { SOURCE_CHECK_MODES } from '../functions/wecom/callback-source';
import { isMainlandChinaRegion, partitionOf } from './region';
import { ldapSettingsSchema } from '../functions/config/runtime';
import { deletionGuardSchema, exmailSettingsSchema, googleSettingsSchema, lifecycleSchema, MAILBOX_PROVIDER_NAMES, offboardingSchema, onboardingSchema, reconcileSchema, runtimeConfigIssues, withProviderDefaults } from '../functions/config/runtime';
import { usesPush } from '../functions/mailbox/graph/config';
import { mailboxProviderNames } from '../functions/mailbox/providers';

export const CONTEXT_KEY = 'wecomMailboxSync';
export const CONFIG_FILE_CONTEXT_KEY = 'configFile';

/** Providers the product knows about (one list, the runtime's), and those with an adapter (the registry's). */
export const PROVIDERS = MAILBOX_PROVIDER_NAMES;
export const IMPLEMENTED_PROVIDERS: readonly string[] = mailboxProviderNames('implemented');

/** The values CloudWatch Logs accepts for a log group's retention. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

const contactField = z.enum(CONTACT_FIELDS);

/** EventBridge schedule expression: rate(1 hour), rate(15 minutes), cron(0 18 * * ? *). */
const scheduleExpression = z
  .string()
  .regex(
    /^(rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\))$/,
    'must be an EventBridge schedule expression such as "rate(1 hour)" or "cron(0 18 * * ? *)"',
  )
  .refine((s) => !/^rate\(1 (minutes|hours|days)\)$/.test(s) && !/^rate\(([2-9]|\d{2,}) (minute|hour|day)\)$/.test(s), {
    message: 'EventBridge wants a singular unit for 1 ("rate(1 hour)") and a plural one otherwise ("rate(2 hours)")',
  });

/** A rate() expression's period in seconds ('rate(1 hour)' → 3600); undefined for cron(). */
export function rateSeconds(expression: string): number | undefined {
  const m = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(expression);
  if (!m) return undefined;
  return Number(m[1]) * { minute: 60, hour: 3600, day: 86_400 }[m[2] as 'minute' | 'hour' | 'day'];
}

const httpsUrl = z.url({ protocol: /^https$/, error: 'must be an https:// URL' });

const dnsName = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, 'must be a DNS domain such as "example.com"');

/** arn:<partition>:acm:<region>:<account>:certificate/<id> */
const ACM_CERTIFICATE_ARN = /^arn:(aws[a-z-]*):acm:([a-z0-9-]+):(\d{12}):certificate\/[A-Za-z0-9-]+$/;

/**
 * A custom domain for the HTTP API (lib/api-domain.ts). Required in a mainland China region:
 * the domain is what is ICP-filed, and what WeCom's callback URL points to.
 */
const apiDomain = z
  .object({
    domainName: dnsName,
    /** An ACM certificate for domainName in the deploy region (imported or issued). */
    certificateArn: z.string().regex(ACM_CERTIFICATE_ARN, 'must be an ACM certificate ARN (arn:<partition>:acm:<region>:<account>:certificate/<id>)'),
  })
  .strict();

const syncProfile = z
  .object({
    /** Fields allowed to leave WeCom. */
    fields: z.array(contactField).min(1).default(['name', 'email', 'position', 'departments']),
    /** Department paths (prefix match on path segments) that get the reduced profile. */
    protectedDepartments: z.array(z.string().min(1)).default([]),
    /** Fields withheld for people in protected departments. */
    protectedFields: z.array(contactField).default(['mobile', 'telephone']),
    /** Where the mailbox tenant stores data: 'CN', 'ABROAD' or an ISO 3166 alpha-2 country. */
    targetRegion: z
      .string()
      .regex(/^(CN|ABROAD|[A-Z]{2})$/, "must be 'CN', 'ABROAD' or an ISO 3166 alpha-2 country code")
      .default('ABROAD'),
    /** PIPL: personal data leaves China only after an approved cross-border assessment/contract. */
    crossBorderApproved: z.boolean().default(false),
    /**
     * Per field, which way it flows: 'wecom' (WeCom → mailbox), 'mailbox' (mailbox → WeCom, a
     * WeCom edit put back), 'none' (never touched). Unset: follows lifecycle.source.
     */
    authority: z.partialRecord(contactField, z.enum(['wecom', 'mailbox', 'none'])).default({}),
    /** Limit the sync to these department paths (absent = whole organisation). */
    scopeDepartments: z.array(z.string().min(1)).optional(),
  })
  .strict();

export const deploymentConfigSchema = z
  .object({
    /** CloudFormation stack name. */
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'must be a CloudFormation stack name (letters, digits, hyphens)')
      .default('WecomMailboxSync'),
    provider: z.enum(PROVIDERS),
    mailDomain: dnsName,
    /** How a mailbox address is derived when WeCom gives none. */
    addressRule: z
      .string()
      .refine((s) => s.includes('{userid}') && s.includes('{domain}'), 'must contain {userid} and {domain}')
      .default('{userid}@{domain}'),
    syncProfile: syncProfile.default(() => syncProfile.parse({})),
    offboarding: offboardingSchema,
    onboarding: onboardingSchema,
    reconcile: reconcileSchema,
    /** The deletion guard on the event path (held actions wait for `wecom-sync approvals`). */
    deletionGuard: deletionGuardSchema,
    /** Where people are born: WeCom (default) or the mailbox (README, "The mailbox as the source of truth"). */
    lifecycle: lifecycleSchema,
    wecom: z
      .object({
        apiBase: httpsUrl.default('https://qyapi.weixin.qq.com'),
        replayWindowSeconds: z.number().int().min(60).max(86_400).default(600),
        /** Per function container; absent: 9,000 (of WeCom's 10,000/min per API) ÷ (worker concurrency + 1). */
        callsPerMinute: z.number().int().min(60).max(10_000).optional(),
      })
      .strict()
      .default({ apiBase: 'https://qyapi.weixin.qq.com', replayWindowSeconds: 600 }),
    /**
     * Microsoft 365: `cloud` global or china (operated by 21Vianet) picks the token service,
     * the Graph root and the token scope (functions/mailbox/graph/config.ts). `apiBase` /
     * `tokenUrl` only move the transport (a proxy); there is no default, so a china tenant's
     * token never goes to global Graph. `changeNotifications` overrides the cloud's default
     * change feed (push on global, the scheduled delta read on china).
     */
    graph: z
      .object({
        cloud: z.enum(['global', 'china']).default('global'),
        apiBase: httpsUrl.optional(),
        tokenUrl: httpsUrl.optional(),
        usageLocation: z.string().length(2).optional(),
        changeNotifications: z.boolean().optional(),
      })
      .strict()
      .default({ cloud: 'global' }),
    /**
     * Tencent Exmail: the API base (a proxy), and how the operation log is polled (the change
     * feed; functions/mailbox/exmail/feed.ts): the same schema as SYNC_CONFIG's `exmail`.
     */
    exmail: exmailSettingsSchema.default(() => exmailSettingsSchema.parse({})),
    /**
     * Google Workspace: customer, the link's externalIds type, department → org unit mapping,
     * the users.watch channels (events, lifetime ≤ 6 h; `changeNotifications: false` leaves the
     * catch-up alone) and the catch-up interval (functions/mailbox/google/config.ts). The same
     * schema as SYNC_CONFIG's `google`, less `notificationUrl`: the stack sets that one.
     */
    google: googleSettingsSchema.omit({ notificationUrl: true }).default(() => googleSettingsSchema.omit({ notificationUrl: true }).parse({})),
    /**
     * LDAP / Active Directory: the directory servers, base DN, schema profile and attribute
     * mapping, writes (off by default) and the polling feed (docs/providers/ldap.md): the same
     * schema as SYNC_CONFIG's `ldap`; `urls` and `baseDn` are required with provider ldap.
     */
    ldap: ldapSettingsSchema.default(() => ldapSettingsSchema.parse({})),
    /**
     * An existing VPC for the functions that call the mailbox directory — sync-worker,
     * reconcile, subscriptions (the feed), grace-deleter, health — required with provider ldap
     * (the directory sits on the company network, reached from this VPC through a VPN or Direct
     * Connect). The subnets need routes to the directory servers AND out to WeCom and the AWS
     * APIs (a NAT gateway, or VPC endpoints for DynamoDB, SQS, KMS, Secrets Manager and S3 plus a
     * NAT for WeCom); the security groups must allow LDAPS (636) or LDAP (389) out to the servers
     * and HTTPS (443) out. The receivers stay outside. With wecomEgress.fixedIp the WeCom-calling
     * functions run here too, and WeCom sees this VPC's NAT address.
     */
    vpc: z
      .object({
        vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'must be a VPC id (vpc-…)'),
        subnetIds: z
          .array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id (subnet-…)'))
          .min(1, 'at least one subnet (two, in different availability zones, for availability)')
          .max(16),
        securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id (sg-…)')).min(1, 'at least one security group').max(5, 'Lambda takes at most 5 security groups'),
      })
      .strict()
      .optional(),
    schedules: z
      .object({
        reconcile: scheduleExpression.default('cron(0 18 * * ? *)'),
        /**
         * The mailbox change feed's upkeep: renew the push subscription (only when it expires
         * within 3 days, so a frequent run is one GET) and read the delta from the stored
         * cursor — the safety net for lost notifications, and with the mailbox as the source
         * of truth how new accounts are found. Absent: rate(15 minutes), or rate(5 minutes)
         * when the delta read IS the feed (Graph china without changeNotifications).
         */
        subscriptions: scheduleExpression.optional(),
        graceDeleter: scheduleExpression.default('rate(1 hour)'),
        health: scheduleExpression.default('rate(15 minutes)'),
        /** Re-enqueue inbox items a receiver left pending (functions/queue/sweep.ts). */
        inboxSweep: scheduleExpression.default('rate(5 minutes)'),
        /**
         * Sign a digest of every audit chain head (functions/audit/run.ts). A rate(), not a
         * cron(): its period is recorded in each digest as the verifier's tolerance (records
         * within one period of their expiry, or after the newest digest, are the unanchored ones).
         */
        auditDigest: scheduleExpression
          .refine((s) => rateSeconds(s) !== undefined, 'must be a rate(...) expression: its period is the audit verification tolerance')
          .refine((s) => (rateSeconds(s) ?? 0) <= 86_400, 'must run at least daily: a longer period leaves more records unanchored')
          .default('rate(1 hour)'),
        /** Refresh WeCom's callback source ranges (functions/handlers/wecom-callback-ips.ts). */
        callbackIps: scheduleExpression.default('rate(1 hour)'),
      })
      .strict()
      .default({
        reconcile: 'cron(0 18 * * ? *)',
        graceDeleter: 'rate(1 hour)',
        health: 'rate(15 minutes)',
        inboxSweep: 'rate(5 minutes)',
        auditDigest: 'rate(1 hour)',
        callbackIps: 'rate(1 hour)',
      }),
    /** Custom domain of the HTTP API (ICP-filed in China). Absent: the execute-api endpoint. */
    apiDomain: apiDomain.optional(),
    /**
     * Let a mainland China deployment synthesize WITHOUT apiDomain (a loud synth warning instead
     * of a refusal): e.g. to run the scheduled reconcile while the ICP filing is pending. WeCom
     * and Graph cannot reach the API until the custom domain is configured.
     */
    allowChinaWithoutCustomDomain: z.boolean().default(false),
    /**
     * Refuse WeCom callbacks from outside WeCom's published ranges (functions/wecom/callback-source.ts):
     * 'enforce' (default), 'report' (count and log, accept), 'off'. The list is refreshed on
     * schedules.callbackIps; a list older than maxAgeHours is not trusted (fail open + alarm).
     */
    callbackSourceCheck: z
      .object({
        mode: z.enum(SOURCE_CHECK_MODES).default('enforce'),
        /** WeCom advises a daily refresh (old and new ranges overlap for a while): a day-old list is still good. */
        maxAgeHours: z.number().int().min(2).max(168).default(24),
      })
      .strict()
      .default({ mode: 'enforce', maxAgeHours: 24 }),
    /** Alarm notifications go to this address (an SNS email subscription; confirm the mail). */
    alarmEmail: z.email({ error: 'must be an email address' }).optional(),
    /** Ceiling on concurrent sync workers: keeps a burst under WeCom's and Graph's rate limits. */
    workerReservedConcurrency: z.number().int().min(2).max(100).default(5),
    apiThrottle: z
      .object({
        /** Steady-state requests per second on the callback API. */
        rate: z.number().positive().max(10_000).default(50),
        burst: z.number().int().positive().max(5_000).default(100),
      })
      .strict()
      .default({ rate: 50, burst: 100 }),
    queue: z
      .object({
        /** Deliveries before a message is parked in the DLQ. */
        maxReceiveCount: z.number().int().min(1).max(1000).default(5),
        /** Alarm when the oldest message has waited longer than this. */
        maxMessageAgeSeconds: z.number().int().min(60).default(900),
      })
      .strict()
      .default({ maxReceiveCount: 5, maxMessageAgeSeconds: 900 }),
    /** Percentage of callback requests answered 4xx (forged / stale / malformed) that alarms. */
    callback4xxAlarmPercent: z.number().min(0).max(100).default(10),
    wecomEgress: z
      .object({
        /** Run the functions that call WeCom behind a NAT gateway with one Elastic IP (WeCom's trusted IP). */
        fixedIp: z.boolean().default(false),
      })
      .strict()
      .default({ fixedIp: false }),
    logRetentionDays: z
      .number()
      .refine((n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n), {
        message: `must be one of CloudWatch Logs' retention values: ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(90),
    /** Reconcile reports expire after this many days. */
    reportRetentionDays: z.number().int().min(1).max(3650).default(365),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (!IMPLEMENTED_PROVIDERS.includes(cfg.provider)) {
      ctx.addIssue({
        code: 'custom',
        path: ['provider'],
        message: `provider '${cfg.provider}' is not implemented yet; only ${IMPLEMENTED_PROVIDERS.map((p) => `'${p}'`).join(', ')} is`,
      });
    }
    if (cfg.provider === 'ldap') {
      if (!cfg.ldap.urls?.length) {
        ctx.addIssue({ code: 'custom', path: ['ldap', 'urls'], message: "required with provider 'ldap': the directory servers, tried in order, e.g. [\"ldaps://dc1.corp.example.com\"]" });
      }
      if (!cfg.ldap.baseDn) ctx.addIssue({ code: 'custom', path: ['ldap', 'baseDn'], message: "required with provider 'ldap': where the accounts are, e.g. \"OU=People,DC=corp,DC=example,DC=com\"" });
      if (!cfg.vpc) {
        ctx.addIssue({
          code: 'custom',
          path: ['vpc'],
          message: "required with provider 'ldap': the functions that read the directory run in a VPC with a route to it (VPN or Direct Connect): { vpcId, subnetIds, securityGroupIds }",
        });
      }
      if (cfg.ldap.writes && cfg.ldap.schema === 'ad' && !cfg.ldap.startTls && cfg.ldap.urls?.some((u) => !/^ldaps:/i.test(u))) {
        ctx.addIssue({ code: 'custom', path: ['ldap', 'urls'], message: 'AD sets the initial password of a new account only over an encrypted connection: use ldaps:// URLs or ldap.startTls with ldap.writes' });
      }
    }
  });

export type DeploymentConfig = z.output<typeof deploymentConfigSchema>;

/** When the mailbox feed's upkeep runs: as configured, else by what the feed is (see schedules.subscriptions). */
export function feedSchedule(cfg: DeploymentConfig): string {
  if (cfg.schedules.subscriptions) return cfg.schedules.subscriptions;
  // LDAP pushes nothing: the uSNChanged / modifyTimestamp poll IS the feed.
  if (cfg.provider === 'ldap') return 'rate(5 minutes)';
  // Exmail pushes nothing: its operation-log poll IS the feed.
  if (cfg.provider === 'exmail') return 'rate(5 minutes)';
  return cfg.provider === 'graph' && !usesPush(cfg.graph) ? 'rate(5 minutes)' : 'rate(15 minutes)';
}
export type DeploymentConfigInput = z.input<typeof deploymentConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Where the stack deploys, as far as synth knows it. */
export interface DeploymentTarget {
  /** The stack's region; undefined for an environment-agnostic synth (deployable anywhere). */
  region?: string;
}

export interface ConfigIssue {
  path: Array<string | number>;
  message: string;
}

/** The rules that depend on the deploy region (see the file header). */
export function deploymentRegionIssues(cfg: DeploymentConfig, target: DeploymentTarget): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const region = target.region;
  const inChina = region !== undefined && isMainlandChinaRegion(region);

  const sensitive = cfg.syncProfile.fields.filter((f) => (SENSITIVE_FIELDS as readonly string[]).includes(f));
  if (!inChina && sensitive.length > 0 && !cfg.syncProfile.crossBorderApproved) {
    const where = region === undefined ? 'an unknown region (environment-agnostic synth: set the stack region, e.g. CDK_DEFAULT_REGION / --profile)' : `region ${region}`;
    issues.push({
      path: ['syncProfile', 'fields'],
      message:
        `${sensitive.join(', ')} would be processed in ${where}, outside mainland China: under PIPL that is a cross-border transfer whatever syncProfile.targetRegion says. ` +
        'Remove these fields, deploy to cn-north-1 / cn-northwest-1, or set syncProfile.crossBorderApproved: true once the transfer is approved (security assessment, certification or standard contract).',
    });
  }

  if (inChina && !cfg.apiDomain && !cfg.allowChinaWithoutCustomDomain) {
    issues.push({
      path: ['apiDomain'],
      message:
        `required in ${region}: API Gateway in the China regions serves unauthenticated requests (WeCom callbacks, Graph notifications) only for an ICP-licensed account and domain, ` +
        'and WeCom must call back a domain you own. Set apiDomain { domainName, certificateArn } for the ICP-filed domain ' +
        '(or allowChinaWithoutCustomDomain: true to deploy reconcile-only until the filing is done).',
    });
  }

  if (cfg.apiDomain && region !== undefined) {
    const m = ACM_CERTIFICATE_ARN.exec(cfg.apiDomain.certificateArn);
    if (m && (m[1] !== partitionOf(region) || m[2] !== region)) {
      issues.push({
        path: ['apiDomain', 'certificateArn'],
        message: `must be a certificate in the deploy region ${region} (partition ${partitionOf(region)}), not ${m[2]} (${m[1]}): a regional API uses a certificate from its own region`,
      });
    }
  }
  return issues;
}

function configError(source: string, issues: ConfigIssue[]): ConfigError {
  const lines = issues.map((issue) => `  - ${[CONTEXT_KEY, ...issue.path.map(String)].join('.')}: ${issue.message}`);
  return new ConfigError(`invalid wecom-mailbox-sync configuration (${source}):\n${lines.join('\n')}`);
}

/**
 * Validate a raw config object for a deployment target (default: region unknown); throws
 * ConfigError listing every bad field and why.
 */
export function parseDeploymentConfig(raw: unknown, source = `context '${CONTEXT_KEY}'`, target: DeploymentTarget = {}): DeploymentConfig {
  if (raw === undefined || raw === null) {
    throw new ConfigError(
      `wecom-mailbox-sync configuration missing: set the cdk.json context key '${CONTEXT_KEY}' or pass -c ${CONFIG_FILE_CONTEXT_KEY}=<file.json>`,
    );
  }
  const result = deploymentConfigSchema.safeParse(withProviderDefaults(raw));
  if (!result.success) throw configError(source, result.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message })));
  const issues = deploymentRegionIssues(result.data, target);
  if (issues.length > 0) throw configError(source, issues);
  // What the functions will parse at cold start must parse here, so a rule that only the
  // runtime schema knows (e.g. a read-only LDAP directory is the source) stops the synth.
  const runtimeIssues = runtimeConfigIssues(toSyncConfig(result.data));
  if (runtimeIssues.length > 0) throw configError(source, runtimeIssues);
  return result.data;
}

/** Minimal view of a construct node's context lookup, so this module does not need constructs. */
export interface ContextReader {
  tryGetContext(key: string): unknown;
}

/** Read and validate the configuration from CDK context (cdk.json or -c flags) for a deployment target. */
export function loadDeploymentConfig(node: ContextReader, cwd = process.cwd(), target: DeploymentTarget = {}): DeploymentConfig {
  const file = node.tryGetContext(CONFIG_FILE_CONTEXT_KEY);
  if (typeof file === 'string' && file.length > 0) {
    const path = resolve(cwd, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${path} (context '${CONFIG_FILE_CONTEXT_KEY}'): ${(err as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
    }
    return parseDeploymentConfig(raw, `file ${path}`, target);
  }
  let raw = node.tryGetContext(CONTEXT_KEY);
  // `cdk -c wecomMailboxSync='{"…"}'` passes a string.
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch (err) {
      throw new ConfigError(`context '${CONTEXT_KEY}' is a string but not JSON: ${(err as Error).message}`);
    }
  }
  return parseDeploymentConfig(raw, undefined, target);
}

/** The runtime settings for SYNC_CONFIG (shape fixed in the brief; parsed by functions/config/runtime.ts). */
export interface SyncConfigJson {
  provider: DeploymentConfig['provider'];
  mailDomain: string;
  addressRule: string;
  profile: DeploymentConfig['syncProfile'];
  offboarding: DeploymentConfig['offboarding'];
  onboarding: DeploymentConfig['onboarding'];
  reconcile: DeploymentConfig['reconcile'];
  deletionGuard: DeploymentConfig['deletionGuard'];
  lifecycle: DeploymentConfig['lifecycle'];
  wecom: DeploymentConfig['wecom'] & { callsPerMinute: number };
  graph: DeploymentConfig['graph'] & { notificationUrl?: string };
  exmail: DeploymentConfig['exmail'];
  google: DeploymentConfig['google'] & { notificationUrl?: string };
  ldap: DeploymentConfig['ldap'];
}

/**
 * SYNC_CONFIG content. `notificationUrl` is the deployed Graph notification endpoint; in the
 * stack it is a CloudFormation token, serialised with Stack.toJsonString.
 */
export function toSyncConfig(cfg: DeploymentConfig, notificationUrl?: string): SyncConfigJson {
  return {
    provider: cfg.provider,
    mailDomain: cfg.mailDomain,
    addressRule: cfg.addressRule,
    profile: cfg.syncProfile,
    offboarding: cfg.offboarding,
    onboarding: cfg.onboarding,
    reconcile: cfg.reconcile,
    deletionGuard: cfg.deletionGuard,
    lifecycle: cfg.lifecycle,
    // WeCom's limit is per corp; every worker container (and one more, for reconcile and the
    // CLI) gets its share, so together they stay under it.
    wecom: { ...cfg.wecom, callsPerMinute: cfg.wecom.callsPerMinute ?? Math.floor(9_000 / (cfg.workerReservedConcurrency + 1)) },
    graph: notificationUrl ? { ...cfg.graph, notificationUrl } : { ...cfg.graph },
    exmail: cfg.exmail,
    // A Google deployment's channels deliver to its events route; the stack passes one events
    // URL (…/mailbox/events/graph today), of which Google's is the sibling.
    google:
      cfg.provider === 'google' && notificationUrl
        ? { ...cfg.google, notificationUrl: notificationUrl.replace(/\/mailbox\/events\/[a-z]+$/, '/mailbox/events/google') }
        : { ...cfg.google },
    ldap: cfg.ldap,
  };
}
