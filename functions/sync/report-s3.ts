/**
 * Reconcile reports in S3 (REPORT_BUCKET): `reports/<name>.csv` and `.json`, encrypted at
 * rest by the bucket's default encryption (set in the stack).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ReportFiles, ReportSink } from './report';

export class S3ReportSink implements ReportSink {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix = 'reports/',
  ) {}

  async write(name: string, files: ReportFiles): Promise<string[]> {
    const put = async (ext: 'csv' | 'json', body: string, contentType: string) => {
      const key = `${this.prefix}${name}.${ext}`;
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
      return `s3://${this.bucket}/${key}`;
    };
    return Promise.all([put('csv', files.csv, 'text/csv; charset=utf-8'), put('json', files.json, 'application/json')]);
  }
}
