/**
 * The HTTP API's custom domain: an API Gateway v2 regional DomainName with the configured ACM
 * certificate (TLS 1.2), and an ApiMapping of the $default stage at the domain's root, so
 * `https://<domainName>/wecom/callback` is the callback URL.
 *
 * Why it exists: in the AWS China regions every public endpoint needs an ICP filing for its
 * domain, and API Gateway there serves unauthenticated requests (WeCom and Graph cannot sign
 * theirs with SigV4) only for ICP-licensed accounts and domains (docs.amazonaws.cn, "Amazon API
 * Gateway" in Getting Started with AWS in China). The filed domain is what WeCom is given.
 * Elsewhere it is optional: a stable URL that survives an API replacement.
 *
 * DNS stays outside the stack (the domain's DNS is often not in Route 53, and in China it
 * usually lives with the ICP access provider): the `ApiDomainTarget` output is the regional
 * hostname to point a CNAME at.
 */
import { CfnOutput } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import { Construct } from 'constructs';

export interface ApiCustomDomainProps {
  api: apigw.IHttpApi;
  stage: apigw.IHttpStage;
  domainName: string;
  certificateArn: string;
}

export class ApiCustomDomain extends Construct {
  readonly domain: apigw.DomainName;
  /** https://<domainName>, no trailing slash. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: ApiCustomDomainProps) {
    super(scope, id);
    this.domain = new apigw.DomainName(this, 'DomainName', {
      domainName: props.domainName,
      certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn),
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
    });
    new apigw.ApiMapping(this, 'Mapping', { api: props.api, domainName: this.domain, stage: props.stage });
    this.url = `https://${props.domainName}`;
    new CfnOutput(scope, 'ApiDomainTarget', {
      value: this.domain.regionalDomainName,
      description: `Point a CNAME for ${props.domainName} at this hostname (the ICP-filed domain in China)`,
    });
  }
}
