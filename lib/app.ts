/**
 * Builds the CDK app: configuration from context, the stack, and cdk-nag's AWS Solutions
 * checks as a policy-validation plugin (cdk-nag 3), so every synth — CLI or test — fails
 * on an unacknowledged finding (`app.synth()` throws "Validation failed" and the details are
 * in <outdir>/policy-validation-report.json).
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Tags, Validations, type AppProps, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type DeploymentConfig, loadDeploymentConfig } from './config';
import { WecomMailboxSyncStack } from './stack';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface BuiltApp {
  app: App;
  stack: WecomMailboxSyncStack;
  config: DeploymentConfig;
}

/**
 * Where the stack deploys: `env` when given (tests), else the CDK CLI's CDK_DEFAULT_REGION (from
 * --profile / AWS_REGION) with CDK_DEFAULT_ACCOUNT when credentials are there. A known region
 * matters: it is what the cross-border and China rules are checked against (lib/config.ts),
 * and it makes the partition (aws / aws-cn) a literal in the template. Without one the synth
 * is environment-agnostic: deployable anywhere, so checked as "outside mainland China".
 */
export function deploymentEnv(env?: Environment): Environment | undefined {
  if (env) return env;
  const region = process.env.CDK_DEFAULT_REGION;
  if (!region) return undefined;
  return process.env.CDK_DEFAULT_ACCOUNT ? { account: process.env.CDK_DEFAULT_ACCOUNT, region } : { region };
}

export function buildApp(props: AppProps = {}, opts: { env?: Environment } = {}): BuiltApp {
  const app = new App(props);
  const env = deploymentEnv(opts.env);
  const config = loadDeploymentConfig(app.node, process.cwd(), { region: env?.region });
  const stack = new WecomMailboxSyncStack(app, config.stackName, {
    config,
    projectRoot: PROJECT_ROOT,
    description: 'wecom-mailbox-sync: WeCom ⇄ mailbox directory sync and offboarding',
    env,
    terminationProtection: true,
  });
  Tags.of(stack).add('app', 'wecom-mailbox-sync');
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, config };
}
