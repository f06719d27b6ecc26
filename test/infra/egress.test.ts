/**
 * The trusted-IP variant (wecomEgress.fixedIp) plus an alarm email: the functions that call
 * WeCom leave through one NAT gateway whose Elastic IP is an output. Bundling is skipped here
 * (stack.test.ts bundles the same handlers); cdk-nag still runs on the full tree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CALLS_WECOM, HANDLERS } from '../../lib/functions';
import { CDK_JSON, asArray, flatten, identityStatements, logicalId, synth, type Synthesized } from './synth';

let s: Synthesized;

beforeAll(() => {
  s = synth({
    bundling: false,
    config: {
      ...(CDK_JSON.context.wecomMailboxSync as Record<string, unknown>),
      wecomEgress: { fixedIp: true },
      alarmEmail: 'ops@example.com',
    },
  });
}, 60_000);
afterAll(() => s?.cleanup());

describe('fixed egress IP', () => {
  it('passes cdk-nag with VPC flow logs and no unacknowledged finding', () => {
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
    s.template.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  it('one NAT gateway using the stack’s Elastic IP, which is an output', () => {
    const eipId = logicalId(s.stack, s.stack.egressIp!);
    s.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    s.template.hasResourceProperties('AWS::EC2::NatGateway', { AllocationId: { 'Fn::GetAtt': [eipId, 'AllocationId'] } });
    expect(s.json.Outputs?.WecomEgressIp?.Value).toEqual({ Ref: eipId });
  });

  it('puts exactly the functions that call WeCom in private subnets', () => {
    for (const n of HANDLERS) {
      const p = s.json.Resources[logicalId(s.stack, s.stack.functions[n].fn)]!.Properties;
      if (CALLS_WECOM.includes(n)) {
        expect(p.VpcConfig?.SubnetIds?.length, n).toBe(2);
      } else {
        expect(p.VpcConfig, n).toBeUndefined();
      }
    }
  });

  it('their security group allows HTTPS out and nothing in', () => {
    const sgs = Object.values(s.json.Resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroup');
    expect(sgs.length).toBe(1);
    const sg = sgs[0]!.Properties;
    expect(sg.SecurityGroupIngress).toBeUndefined();
    expect(sg.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' })]);
    s.template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  it('the only new wildcard resource is the ENI statement Lambda requires, on VPC functions only', () => {
    const wild = identityStatements(s.json).filter(({ statement }) => asArray(statement.Resource).map(flatten).some((r) => r.includes('*')));
    const eni = wild.filter(({ statement }) => statement.Sid === 'VpcNetworkInterfaces');
    const others = wild.filter(({ statement }) => statement.Sid !== 'VpcNetworkInterfaces');
    // Object prefixes: reconcile's reports/, the audit digests' digests/ (dated object keys).
    expect(others.map(({ statement }) => flatten(statement.Resource)).sort()).toEqual([expect.stringMatching(/\/digests\/\*$/), expect.stringMatching(/\/reports\/\*$/)]);
    const vpcRoles = CALLS_WECOM.map((n) => logicalId(s.stack, s.stack.functions[n].role)).sort();
    expect(eni.flatMap((e) => e.roles).sort()).toEqual(vpcRoles);
    for (const { statement } of eni) {
      expect(statement.Resource).toBe('*');
      for (const a of asArray(statement.Action)) expect(a).toMatch(/^ec2:(Create|Describe|Delete|Assign|Unassign)\w+$/);
    }
  });

  it('subscribes the alarm email to the topic', () => {
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });
});
