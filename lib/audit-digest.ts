/**
 * Where the signed audit digests live (functions/audit/): the external anchor of the audit
 * chain, out of reach of anyone who can write the audit table.
 *
 *  - `SigningKey`: a KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY, ECDSA_SHA_256). The
 *    private half never leaves KMS; only the audit-digest function may call kms:Sign on it.
 *    Asymmetric keys cannot rotate automatically; retained, because old digests verify only
 *    with its public key.
 *  - `Bucket`: S3 with Object Lock in COMPLIANCE mode and a default retention of the audit
 *    retention plus a margin: during it no one — the account root included — can delete or
 *    overwrite a digest version, or shorten its retention. The margin keeps digests older
 *    than the retention period available: verification uses one such digest to tell records
 *    that expired by TTL from records removed (store/audit-chain.ts). After that a lifecycle
 *    rule removes them (lifecycle actions are not subject to bucket policies). The bucket
 *    policy denies deleting objects to every principal, so a digest cannot be hidden behind
 *    a delete marker (verification lists current versions) without first changing the policy
 *    or the lifecycle configuration: administrative, CloudTrail-logged acts no function role
 *    can perform. SSE-KMS under the personal-data key: digests name subjects.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Days a digest outlives the audit records it anchors. */
export const DIGEST_LOCK_MARGIN_DAYS = 31;

/** Key policy for the account on the signing key: administration and signing use, delegated to IAM. */
const SIGNING_KEY_ACCOUNT_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:CreateAlias',
  'kms:DeleteAlias',
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:EnableKey',
  'kms:GetKeyPolicy',
  'kms:GetPublicKey',
  'kms:ListAliases',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:ScheduleKeyDeletion',
  'kms:Sign',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateAlias',
  'kms:UpdateKeyDescription',
  'kms:Verify',
];

export interface AuditDigestStorageProps {
  /** The audit table's TTL retention: the lock outlasts it by DIGEST_LOCK_MARGIN_DAYS. */
  auditRetentionDays: number;
  encryptionKey: kms.IKey;
  accessLogsBucket: s3.IBucket;
  aliasPrefix: string;
}

export class AuditDigestStorage extends Construct {
  readonly bucket: s3.Bucket;
  readonly signingKey: kms.Key;
  readonly lockDays: number;

  constructor(scope: Construct, id: string, props: AuditDigestStorageProps) {
    super(scope, id);
    this.lockDays = props.auditRetentionDays + DIGEST_LOCK_MARGIN_DAYS;

    this.signingKey = new kms.Key(this, 'SigningKey', {
      description: 'wecom-mailbox-sync audit digest signing key (ECDSA P-256)',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      enableKeyRotation: false,
      alias: `${props.aliasPrefix}/audit-digest`,
      removalPolicy: RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(30),
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'AccountAdministersAndDelegatesToIam',
            principals: [new iam.AccountRootPrincipal()],
            actions: SIGNING_KEY_ACCOUNT_ACTIONS,
            resources: ['*'],
          }),
        ],
      }),
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(this.lockDays)),
      versioned: true, // Object Lock requires it
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: 'audit-digest-bucket/',
      // Lifecycle acts only once the lock has ended (COMPLIANCE: it cannot act earlier).
      lifecycleRules: [{ expiration: Duration.days(this.lockDays + 1), noncurrentVersionExpiration: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DigestsAreNeverDeleted',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
  }
}
