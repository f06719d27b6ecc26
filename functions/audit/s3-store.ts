/**
 * DigestStore on S3: one object per digest, `digests/<ISO createdAt>.json`, in a bucket with
 * Object Lock in COMPLIANCE mode and a default retention longer than the audit retention
 * (lib/audit-digest.ts): no one, the account root included, can delete or overwrite a digest
 * version before its retention ends.
 *
 * put: PutObject with `If-None-Match: *` — S3 refuses (412) to write a key that exists, so a
 * second write of a name fails instead of stacking a newer version on top of it. The object
 * inherits the bucket's default lock retention (sending x-amz-object-lock-* headers would
 * need s3:PutObjectRetention on the role as well, for nothing the default does not give).
 * A SHA-256 checksum travels with the body: S3 requires an integrity checksum for writes
 * to a bucket with Object Lock.
 *
 * Reading: keys sort by time, so the newest digest at or before a time is the last key of a
 * listing that starts a little before it. The listing starts 2 days back, then 45, then at
 * the beginning: normally one ListObjectsV2 page, and still correct when the job stopped
 * for weeks. Listings show current versions: hiding a digest behind a delete marker needs
 * s3:DeleteObject, which no function has and the bucket policy denies.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DigestExistsError, type DigestStore, type StoredDigest } from './ports';

export const DIGEST_PREFIX = 'digests/';
const DAY_MS = 86_400_000;
const WINDOWS_DAYS = [2, 45, Infinity];

export class S3DigestStore implements DigestStore {
  private readonly now: () => Date;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    opts: { now?: () => Date } = {},
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  latest(): Promise<StoredDigest | undefined> {
    return this.newestUpTo(this.now(), `${DIGEST_PREFIX}\uffff`);
  }

  atOrBefore(time: Date): Promise<StoredDigest | undefined> {
    return this.newestUpTo(time, `${DIGEST_PREFIX}${time.toISOString()}.json`);
  }

  async put(name: string, body: string): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: `${DIGEST_PREFIX}${name}`,
          Body: body,
          ContentType: 'application/json',
          IfNoneMatch: '*',
          ChecksumAlgorithm: 'SHA256',
        }),
      );
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // 412: the key exists; 409: a concurrent conditional write of the same key won.
      if (status === 412 || status === 409 || (err as Error).name === 'PreconditionFailed') throw new DigestExistsError(name);
      throw err;
    }
  }

  private async newestUpTo(time: Date, bound: string): Promise<StoredDigest | undefined> {
    for (const days of WINDOWS_DAYS) {
      const startAfter = Number.isFinite(days) ? `${DIGEST_PREFIX}${new Date(time.getTime() - days * DAY_MS).toISOString()}` : undefined;
      const key = await this.lastKey(startAfter, bound);
      if (key) return { name: key.slice(DIGEST_PREFIX.length), body: await this.read(key) };
    }
    return undefined;
  }

  /** The last key after `startAfter` and <= `bound`. */
  private async lastKey(startAfter: string | undefined, bound: string): Promise<string | undefined> {
    let last: string | undefined;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: DIGEST_PREFIX,
          ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}),
        }),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        if (o.Key > bound) return last;
        last = o.Key;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return last;
  }

  private async read(key: string): Promise<string> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!out.Body) throw new Error(`audit digest ${key} has no body`);
    return out.Body.transformToString('utf8');
  }
}
