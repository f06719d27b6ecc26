/**
 * What the stack needs to know about the region it deploys to: partition, mainland China or
 * not, and the facts aws-cdk-lib ships for it (region-info, generated from AWS's own data).
 *
 * Partition-awareness itself is CDK's: the stack never writes an ARN or a service hostname by
 * hand (ARNs come from resources, `Aws.PARTITION`, `Aws.URL_SUFFIX`; service principals are
 * `<service>.amazonaws.com` in every partition, aws-cdk-lib region-info `Default.servicePrincipal`).
 * This module adds the checks CloudFormation would only fail at deploy time
 * (`checkRegionSupport`), as synth warnings.
 *
 * Found in aws-cdk-lib 2.276 region-info for cn-north-1 and cn-northwest-1: partition `aws-cn`,
 * domain suffix `amazonaws.com.cn`, latest Node.js runtime `nodejs24.x`, and an arm64 Lambda
 * Insights layer published there (so arm64 Lambda exists in both China regions).
 */
import { Annotations, Token, type Stack } from 'aws-cdk-lib';
import { Fact, FactName, RegionInfo } from 'aws-cdk-lib/region-info';

/** cn-north-1 (Beijing), cn-northwest-1 (Ningxia): partition aws-cn. Hong Kong (ap-east-1) is not mainland China. */
export function isMainlandChinaRegion(region: string): boolean {
  return region.startsWith('cn-');
}

/** 'aws', 'aws-cn', … for a concrete region name. */
export function partitionOf(region: string): string {
  return RegionInfo.get(region).partition ?? (isMainlandChinaRegion(region) ? 'aws-cn' : 'aws');
}

/** The stack's region when synth knows it (env given), undefined when it is a deploy-time token. */
export function concreteRegion(stack: Stack): string | undefined {
  return Token.isUnresolved(stack.region) ? undefined : stack.region;
}

/** Warn at synth when region-info says the region lacks what the functions need. */
export function checkRegionSupport(stack: Stack, runtimeName: string): void {
  const region = concreteRegion(stack);
  if (!region) return;
  const latest = Fact.find(region, FactName.LATEST_NODE_RUNTIME);
  if (latest && nodeMajor(latest) < nodeMajor(runtimeName)) {
    Annotations.of(stack).addWarning(
      `region ${region}: aws-cdk-lib lists ${latest} as its newest Node.js Lambda runtime, older than ${runtimeName} the functions use; CloudFormation will refuse the functions until ${runtimeName} is available there.`,
    );
  }
}

function nodeMajor(runtime: string): number {
  return Number(/^nodejs(\d+)/.exec(runtime)?.[1] ?? 0);
}
