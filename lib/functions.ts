/**
 * One NodejsFunction per handler, each with its own role, log group and sizing.
 *
 * Sizing (memory buys CPU on Lambda, and CPU is what shortens a cold start):
 *
 * | function       | memory  | timeout | why                                                                |
 * |----------------|---------|---------|--------------------------------------------------------------------|
 * | wecom-callback | 512 MB  | 5 s     | WeCom wants the GET verification answered within 1 s, cold start   |
 * |                |         |         | and secret fetch included: the extra CPU of 512 MB keeps init well |
 * |                |         |         | under that; POSTs are retried by WeCom after 5 s, so never longer. |
 * | mailbox-events | 1769 MB | 5 s     | Graph wants 2xx within 3 s (validation within 10 s) or it retries, |
 * |                |         |         | and posts up to 1,000 notifications at once: 2,000 conditional     |
 * |                |         |         | DynamoDB writes + 100 SQS batches, bounded-parallel, which is      |
 * |                |         |         | CPU-bound in the SDK (0.9–1.3 s of one core measured, see          |
 * |                |         |         | test/bench/graph-receiver.bench.ts). 1,769 MB is one full vCPU; at |
 * |                |         |         | 512 MB (~0.3 vCPU) the same batch would need 3–4 s. A small POST   |
 * |                |         |         | still takes tens of ms, so the price per call barely moves.       |
 * | sync-worker    | 512 MB  | 60 s    | a batch of ≤ 10 subjects, a few API calls each (user/get, Graph    |
 * |                |         |         | PATCH) with bounded retries; SQS visibility = 6 × this.            |
 * | reconcile      | 1024 MB | 15 min  | one chunk of a reconcile run: pages of both directories to the     |
 * |                |         |         | reconcile table, checkpointed; stops ~2 min before the timeout and |
 * |                |         |         | continues through its queue (memory: pages, not the directory).    |
 * | subscriptions  | 256 MB  | 60 s    | a handful of Graph calls (renew / recreate subscriptions, delta).  |
 * | grace-deleter  | 512 MB  | 5 min   | deletes due after the grace period, batched (≤ 200 ids per WeCom   |
 * |                |         |         | batchdelete), each audited.                                         |
 * | health         | 256 MB  | 60 s    | token fetches, queue depths: small and I/O bound.                  |
 * | inbox-sweeper  | 256 MB  | 60 s    | a Query of the inbox's pending index, then enqueue + mark what a   |
 * |                |         |         | receiver left pending (normally nothing); ≤ 1,000 items a run.    |
 * | audit-digest   | 512 MB  | 5 min   | hourly: one byDay Query for the hour's records, a HMAC per record, |
 * |                |         |         | one KMS Sign, one PutObject of the snapshot (~100 B per subject). |
 * |                |         |         | The first run walks the retention window (~400 Queries), and the   |
 * |                |         |         | snapshot of 10,000 subjects is ~1 MB of JSON: memory and time for  |
 * |                |         |         | that once, not for the hourly run.                                 |
 * | wecom-callback-| 256 MB  | 30 s    | hourly: gettoken + getcallbackip (a few dozen ranges) and one      |
 * | ips            |         |         | PutItem; small and I/O bound, 10 s per WeCom call at most.         |
 *
 * Bundling: local esbuild (no Docker), minified ESM for node24 (`esbuildOptions` below, which
 * test/bench/callback.bench.ts builds too); the receivers with code splitting (`SPLIT`);
 * source maps shipped but not enabled at run time (`SOURCE_MAPS`). Where the AWS SDK comes
 * from is decided per function (`RUNTIME_SDK` below), from measurements (`npm run bench --
 * callback`, Node 24 on this machine; figures in the README):
 *   - the two internet-facing receivers take the SDK FROM THE RUNTIME: ~125 KB bundles, and
 *     with splitting no SDK module is read at INIT. They use only stable, long-lived commands
 *     (PutItem/GetItem/UpdateItem, SendMessageBatch, GetSecretValue), so drift of the
 *     runtime's SDK version is a small risk.
 *   - the sync worker and reconcile take it from the runtime too: it is the only way under
 *     their size limits (≤ 600 KB and ≤ 1 MB; 941 KB and 1,158 KB with the SDK bundled, of
 *     which ~500 KB is SDK, and the rest libphonenumber's full metadata and zod, which the
 *     product needs). Their commands are the same stable ones plus KMS Decrypt/GenerateDataKey
 *     and S3 PutObject; the cost is a version we do not pin.
 *   - every other function BUNDLES the SDK: the version we test is the version we run, and
 *     esbuild tree-shakes the modular v3 clients to the commands each imports; these are not
 *     latency-bound (queue/schedule triggered) and stay under 1 MB.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { RemovalPolicy } from 'aws-cdk-lib';
import type { BuildOptions } from 'esbuild';
import { Construct } from 'constructs';

export const HANDLERS = [
  'wecom-callback',
  'mailbox-events',
  'sync-worker',
  'reconcile',
  'subscriptions',
  'grace-deleter',
  'health',
  'inbox-sweeper',
  'audit-digest',
  'wecom-callback-ips',
] as const;
export type HandlerName = (typeof HANDLERS)[number];

/** Functions that take @aws-sdk/* from the Lambda runtime instead of bundling it (see above). */
export const RUNTIME_SDK: ReadonlySet<HandlerName> = new Set<HandlerName>(['wecom-callback', 'mailbox-events', 'sync-worker', 'reconcile']);

export interface FunctionSizing {
  memoryMb: number;
  timeout: Duration;
}

export const SIZING: Record<HandlerName, FunctionSizing> = {
  'wecom-callback': { memoryMb: 512, timeout: Duration.seconds(5) },
  'mailbox-events': { memoryMb: 1769, timeout: Duration.seconds(5) },
  'sync-worker': { memoryMb: 512, timeout: Duration.seconds(60) },
  reconcile: { memoryMb: 1024, timeout: Duration.minutes(15) },
  subscriptions: { memoryMb: 256, timeout: Duration.seconds(60) },
  'grace-deleter': { memoryMb: 512, timeout: Duration.minutes(5) },
  health: { memoryMb: 256, timeout: Duration.seconds(60) },
  'inbox-sweeper': { memoryMb: 256, timeout: Duration.seconds(60) },
  'audit-digest': { memoryMb: 512, timeout: Duration.minutes(5) },
  'wecom-callback-ips': { memoryMb: 256, timeout: Duration.seconds(30) },
};

/** Handlers that call WeCom's API and therefore need the trusted egress IP when it is on. */
export const CALLS_WECOM: readonly HandlerName[] = ['sync-worker', 'reconcile', 'grace-deleter', 'health', 'wecom-callback-ips'];

/**
 * Handlers that call the mailbox directory (its API, or LDAP): with `vpc` configured (required
 * for provider ldap) they run in that VPC, which routes to the company network. Not the
 * receivers: they only parse and enqueue.
 */
export const CALLS_MAILBOX: readonly HandlerName[] = ['sync-worker', 'reconcile', 'subscriptions', 'grace-deleter', 'health'];

/** nodejs24.x; the constructor fallback keeps this file working on an aws-cdk-lib without the constant. */
export const RUNTIME: lambda.Runtime =
  (lambda.Runtime as unknown as Record<string, lambda.Runtime | undefined>).NODEJS_24_X ??
  new lambda.Runtime('nodejs24.x', lambda.RuntimeFamily.NODEJS, { supportsInlineCode: true });

export const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * Handlers bundled with code splitting, so that their dynamic imports stay dynamic: the
 * imported modules become chunk files, read at the first invocation. Without splitting,
 * esbuild inlines a dynamically imported module and hoists ITS static imports of external
 * packages (the runtime's SDK clients) to the top of the bundle: the "lazy" clients were
 * loaded at INIT all the same. The receivers are where deferring matters (a cold GET
 * verification has 1 s); elsewhere the first invocation needs every module anyway.
 */
export const SPLIT: ReadonlySet<HandlerName> = new Set<HandlerName>(['wecom-callback', 'mailbox-events']);

/**
 * Source maps are shipped beside the code (to decode a minified stack trace offline: the
 * positions in the log are positions in the shipped file) but not enabled at run time
 * (`--enable-source-maps` makes Node read and parse every map at load; see the README's
 * Decisions for the measurement).
 */
export const SOURCE_MAPS = { ship: true, enableAtRuntime: false } as const;

/**
 * esbuild's options for a handler in esbuild's API shape: what the deployment bundles
 * (NodejsFunction's run below, then the split run for SPLIT handlers), and what
 * test/bench/callback.bench.ts builds to measure it. Output: `index.mjs` (+ `chunks/`).
 */
/** The esbuild `define` that keeps one mailbox adapter in a bundle (functions/mailbox/providers.ts). */
export const BUNDLED_PROVIDER_DEFINE = 'process.env.WECOM_SYNC_BUNDLED_PROVIDER';

export function esbuildOptions(name: HandlerName, provider?: string): BuildOptions & { external: string[]; target: string; mainFields: string[] } {
  return {
    ...(provider ? { define: { [BUNDLED_PROVIDER_DEFINE]: JSON.stringify(provider) } } : {}),
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    external: RUNTIME_SDK.has(name) ? ['@aws-sdk/*'] : [],
    sourcemap: SOURCE_MAPS.ship,
    sourcesContent: false,
    ...(SPLIT.has(name) ? { splitting: true, entryNames: 'index', chunkNames: 'chunks/[name]-[hash]', outExtension: { '.js': '.mjs' } } : {}),
  };
}

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * The split build as a shell command for NodejsFunction's afterBundling hook: NodejsFunction
 * runs esbuild with `--outfile`, which code splitting cannot use, so the hook builds the same
 * entry again with `--splitting --outdir` over the same output directory (index.mjs replaced,
 * chunks/ added). Same options as esbuildOptions(name).
 */
function splitBuildCommand(name: HandlerName, provider: string, entry: string, projectRoot: string, inputDir: string, outputDir: string): string {
  const o = esbuildOptions(name, provider);
  const args = [
    join(inputDir, 'node_modules', '.bin', 'esbuild'),
    '--bundle',
    join(inputDir, relative(projectRoot, entry)),
    `--outdir=${outputDir}`,
    '--splitting',
    `--entry-names=${o.entryNames}`,
    `--chunk-names=${o.chunkNames}`,
    '--out-extension:.js=.mjs',
    `--format=${o.format}`,
    `--platform=${o.platform}`,
    `--target=${o.target}`,
    '--minify',
    `--main-fields=${o.mainFields.join(',')}`,
    `--banner:js=${ESM_REQUIRE_BANNER}`,
    ...o.external.map((e) => `--external:${e}`),
    ...Object.entries(o.define ?? {}).map(([k, v]) => `--define:${k}=${v}`),
    ...(o.sourcemap ? ['--sourcemap', '--sources-content=false'] : []),
    '--log-level=warning',
  ];
  return args.map(shellQuote).join(' ');
}

export function handlerEntry(projectRoot: string, name: HandlerName): string {
  return join(projectRoot, 'functions', 'handlers', `${name}.ts`);
}

export interface SyncFunctionProps {
  projectRoot: string;
  name: HandlerName;
  /** The deployment's mailbox provider: the only adapter bundled (BUNDLED_PROVIDER_DEFINE). */
  provider: string;
  environment: Record<string, string>;
  logRetention: logs.RetentionDays;
  logRemovalPolicy: RemovalPolicy;
  reservedConcurrentExecutions?: number;
  vpc?: { vpc: ec2.IVpc; subnets: ec2.SubnetSelection; securityGroups: ec2.ISecurityGroup[] };
}

/**
 * A handler's function with an explicit role (no AWS managed policies: its only permission at
 * birth is writing to its own log group) and an explicit log group with retention.
 */
export class SyncFunction extends Construct {
  readonly fn: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: SyncFunctionProps) {
    super(scope, id);
    const entry = handlerEntry(props.projectRoot, props.name);
    if (!existsSync(entry)) throw new Error(`handler entry ${entry} does not exist`);
    const sizing = SIZING[props.name];

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `wecom-mailbox-sync ${props.name}`,
    });
    // logs:CreateLogStream + PutLogEvents on this function's log group only.
    this.logGroup.grantWrite(this.role);

    this.fn = new nodejs.NodejsFunction(this, 'Function', {
      entry,
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      runtime: RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: sizing.memoryMb,
      timeout: sizing.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      description: `wecom-mailbox-sync: ${props.name}`,
      environment: { ...props.environment, ...(SOURCE_MAPS.enableAtRuntime ? { NODE_OPTIONS: '--enable-source-maps' } : {}) },
      ...(props.vpc
        ? { vpc: props.vpc.vpc, vpcSubnets: props.vpc.subnets, securityGroups: props.vpc.securityGroups }
        : {}),
      bundling: {
        minify: true,
        sourceMap: SOURCE_MAPS.ship,
        sourcesContent: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        // Spelled out rather than left to bundleAwsSDK and a feature flag: the split run uses the same list.
        externalModules: esbuildOptions(props.name).external,
        define: esbuildOptions(props.name, props.provider).define,
        forceDockerBundling: false,
        ...(SPLIT.has(props.name)
          ? {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling: (inputDir: string, outputDir: string) => [splitBuildCommand(props.name, props.provider, entry, props.projectRoot, inputDir, outputDir)],
              },
            }
          : {}),
      },
    });
  }
}
