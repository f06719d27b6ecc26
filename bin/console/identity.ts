/**
 * Who the operator is, for the audit records their decisions write. Never a name typed into
 * a form: locally the OS user running the process (as the CLI records it), against a deployed
 * stack the IAM principal the AWS credentials belong to (sts:GetCallerIdentity — it needs no
 * permission and cannot be spoofed by the caller).
 */
import { userInfo } from 'node:os';
import type { CliTarget } from '../cli/target';

/** The OS user (WECOM_SYNC_OPERATOR overrides it, for shared service accounts and tests). */
export function osUser(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WECOM_SYNC_OPERATOR) return env.WECOM_SYNC_OPERATOR;
  try {
    return userInfo().username;
  } catch {
    return 'unknown'; // no passwd entry (containers)
  }
}

/** The ARN of the IAM principal behind the current AWS credentials. */
export async function awsPrincipal(region?: string): Promise<string> {
  const { STSClient, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
  const sts = new STSClient(region ? { region } : {});
  try {
    const out = await sts.send(new GetCallerIdentityCommand({}));
    if (!out.Arn) throw new Error('GetCallerIdentity returned no ARN');
    return out.Arn;
  } finally {
    sts.destroy();
  }
}

/**
 * `<tool>:<who>`: e.g. `console:alice` locally, `console:arn:aws:sts::123456789012:assumed-role/Ops/alice`
 * against a stack. The tool prefix says where a decision was taken.
 */
export async function operatorIdentity(target: Pick<CliTarget, 'kind'>, tool: 'cli' | 'console', opts: { region?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const who = target.kind === 'stack' ? await awsPrincipal(opts.region) : osUser(opts.env);
  return `${tool}:${who}`;
}
