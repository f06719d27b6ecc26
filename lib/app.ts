/**
 * Builds the CDK app: configuration from context, the stack, and cdk-nag's AWS Solutions
 * checks as a policy-validation plugin (cdk-nag 3), so every synth — CLI or test — fails
 * on an unacknowledged finding (`app.synth()` throws "Validation failed" and the details are
 * in <outdir>/policy-validation-report.json).
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Tags, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type DeploymentConfig, loadDeploymentConfig } from './config';
import { WecomMailboxSyncStack } from './stack';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface BuiltApp {
  app: App;
  stack: WecomMailboxSyncStack;
  config: DeploymentConfig;
}

export function buildApp(props: AppProps = {}): BuiltApp {
  const app = new App(props);
  const config = loadDeploymentConfig(app.node);
  const stack = new WecomMailboxSyncStack(app, config.stackName, {
    config,
    projectRoot: PROJECT_ROOT,
    description: 'wecom-mailbox-sync: WeCom ⇄ mailbox directory sync and offboarding',
    // Environment-agnostic unless the CLI provides an account/region.
    env:
      process.env.CDK_DEFAULT_ACCOUNT && process.env.CDK_DEFAULT_REGION
        ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
        : undefined,
    terminationProtection: true,
  });
  Tags.of(stack).add('app', 'wecom-mailbox-sync');
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, config };
}
