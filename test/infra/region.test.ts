/** lib/region.ts: mainland China and partitions, and the synth warning when region-info lacks the runtime. */
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { Fact, FactName } from 'aws-cdk-lib/region-info';
import { describe, expect, it } from 'vitest';
import { checkRegionSupport, concreteRegion, isMainlandChinaRegion, partitionOf } from '../../lib/region';

describe('regions', () => {
  it('mainland China is the aws-cn partition; Hong Kong is not', () => {
    expect(['cn-north-1', 'cn-northwest-1'].map(isMainlandChinaRegion)).toEqual([true, true]);
    expect(['ap-east-1', 'us-east-1', 'eu-west-1'].map(isMainlandChinaRegion)).toEqual([false, false, false]);
    expect([partitionOf('cn-north-1'), partitionOf('cn-northwest-1'), partitionOf('ap-east-1')]).toEqual(['aws-cn', 'aws-cn', 'aws']);
  });

  it('knows the region only when the stack has one', () => {
    expect(concreteRegion(new Stack(new App(), 'A'))).toBeUndefined();
    expect(concreteRegion(new Stack(new App(), 'B', { env: { region: 'cn-north-1' } }))).toBe('cn-north-1');
  });

  it('warns at synth when the region’s newest Node.js runtime (region-info) is older than the functions’', () => {
    Fact.register({ region: 'xx-test-1', name: FactName.LATEST_NODE_RUNTIME, value: 'nodejs22.x' }, true);
    const old = new Stack(new App(), 'Old', { env: { region: 'xx-test-1' } });
    checkRegionSupport(old, 'nodejs24.x');
    Annotations.fromStack(old).hasWarning('*', Match.stringLikeRegexp('region xx-test-1: aws-cdk-lib lists nodejs22.x .* older than nodejs24.x'));
    const current = new Stack(new App(), 'Cn', { env: { region: 'cn-northwest-1' } });
    checkRegionSupport(current, 'nodejs24.x');
    Annotations.fromStack(current).hasNoWarning('*', Match.anyValue());
  });
});
