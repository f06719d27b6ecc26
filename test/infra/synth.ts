/**
 * Shared by the infra tests: build the real app (lib/app.ts, same cdk.json context as the
 * CLI) in-process into a temp dir, ONCE per test file, and walk its IAM.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CfnElement, Environment, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { buildApp, PROJECT_ROOT, type BuiltApp } from '../../lib/app';

export const CDK_JSON = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
  app: string;
  context: Record<string, unknown>;
};

export interface Synthesized extends BuiltApp {
  outdir: string;
  template: Template;
  json: CfnTemplate;
  synthError?: Error;
  validationReport: { pluginReports: Array<{ pluginName: string; conclusion: string; violations: unknown[] }> };
  cleanup(): void;
}

export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: any; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
  Outputs?: Record<string, { Value: unknown }>;
}

/** `env`: the stack's account/region (default: environment-agnostic, as with no CLI profile). */
export function synth(opts: { config?: Record<string, unknown>; bundling: boolean; env?: Environment }): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'wms-infra-'));
  const context: Record<string, unknown> = { ...CDK_JSON.context };
  if (opts.config) context.wecomMailboxSync = opts.config;
  // CDK's own switch: an empty list bundles no stack (assets become placeholders).
  if (!opts.bundling) context['aws:cdk:bundling-stacks'] = [];
  const built = buildApp({ outdir, context }, { env: opts.env });
  let synthError: Error | undefined;
  try {
    built.app.synth();
  } catch (err) {
    synthError = err as Error;
  }
  const reportPath = join(outdir, 'validation-report.json');
  let validationReport: Synthesized['validationReport'] = { pluginReports: [] };
  try {
    validationReport = JSON.parse(readFileSync(reportPath, 'utf8'));
  } catch {
    /* absent when no plugin reported */
  }
  if (synthError) {
    const detail = JSON.stringify(validationReport, null, 1).slice(0, 4000);
    throw new Error(`synth failed: ${synthError.message}\n${detail}`);
  }
  const json = JSON.parse(readFileSync(join(outdir, `${built.stack.artifactId}.template.json`), 'utf8')) as CfnTemplate;
  return {
    ...built,
    outdir,
    template: Template.fromJSON(json),
    json,
    validationReport,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

export function logicalId(stack: Stack, construct: IConstruct): string {
  const child = (construct.node.defaultChild ?? construct) as CfnElement;
  return stack.getLogicalId(child);
}

/** Every logical id referenced (Ref / Fn::GetAtt) anywhere inside a value. */
export function referencedIds(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) referencedIds(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'Ref' && typeof v === 'string') out.add(v);
      else if (k === 'Fn::GetAtt' && Array.isArray(v)) out.add(String(v[0]));
      else referencedIds(v, out);
    }
  }
  return out;
}

/** Flatten a CloudFormation value to a string with <LogicalId.Attr> placeholders for references. */
export function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(flatten).join(',');
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if ('Ref' in o) return `<${String(o.Ref)}>`;
    if ('Fn::GetAtt' in o) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(flatten).join(sep);
    }
    return JSON.stringify(o);
  }
  return String(value);
}

export interface Statement {
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: unknown;
  NotResource?: unknown;
  Principal?: unknown;
  Condition?: Record<string, unknown>;
  Sid?: string;
}

export const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Identity policies: AWS::IAM::Policy documents and roles' inline policies, keyed by role logical id. */
export function identityStatements(json: CfnTemplate): Array<{ policy: string; roles: string[]; statement: Statement }> {
  const out: Array<{ policy: string; roles: string[]; statement: Statement }> = [];
  for (const [id, r] of Object.entries(json.Resources)) {
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') {
      const roles = asArray(r.Properties.Roles).map((x: any) => String(x.Ref));
      for (const s of asArray<Statement>(r.Properties.PolicyDocument.Statement)) out.push({ policy: id, roles, statement: s });
    }
    if (r.Type === 'AWS::IAM::Role') {
      for (const p of asArray<any>(r.Properties.Policies)) {
        for (const s of asArray<Statement>(p.PolicyDocument.Statement)) out.push({ policy: `${id}/${p.PolicyName}`, roles: [id], statement: s });
      }
    }
  }
  return out;
}

/** Resource policies: key policies, queue/topic/bucket policies, secret policies. */
export function resourcePolicyStatements(json: CfnTemplate): Array<{ resource: string; statement: Statement }> {
  const docs: Record<string, string> = {
    'AWS::KMS::Key': 'KeyPolicy',
    'AWS::SQS::QueuePolicy': 'PolicyDocument',
    'AWS::SNS::TopicPolicy': 'PolicyDocument',
    'AWS::S3::BucketPolicy': 'PolicyDocument',
    'AWS::SecretsManager::ResourcePolicy': 'ResourcePolicy',
  };
  const out: Array<{ resource: string; statement: Statement }> = [];
  for (const [id, r] of Object.entries(json.Resources)) {
    const key = docs[r.Type];
    if (!key) continue;
    for (const s of asArray<Statement>(r.Properties[key].Statement)) out.push({ resource: id, statement: s });
  }
  return out;
}
