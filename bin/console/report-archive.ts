/**
 * Reading reconcile reports back: the other half of `ReportSink` (functions/sync/report.ts),
 * for the console's Reports page. Local reports are files in `.data/reports/`; a deployed
 * stack's are objects under `reports/` in its report bucket, read with the operator's own
 * AWS credentials (s3:ListBucket, s3:GetObject).
 *
 * A report is addressed by its name (`reportName()`: an ISO time with ':' → '-'); anything
 * else is refused before it reaches a path or an object key.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ReportArchive {
  /** Report names, newest first. */
  list(): Promise<string[]>;
  /** The report's file of that kind, or undefined when there is none. */
  read(name: string, kind: 'json' | 'csv'): Promise<string | undefined>;
}

const NAME = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d{1,3})?Z$/;

export function isReportName(name: string): boolean {
  return NAME.test(name);
}

/** When the run started, from its name. */
export function reportTime(name: string): string {
  return name.replace(/T(\d{2})-(\d{2})-(\d{2})/, 'T$1:$2:$3');
}

const newestFirst = (names: Iterable<string>) => [...new Set(names)].filter(isReportName).sort().reverse();

export class LocalReportArchive implements ReportArchive {
  constructor(private readonly dir: string) {}

  async list(): Promise<string[]> {
    let files: string[];
    try {
      files = await readdir(this.dir);
    } catch {
      return []; // no reconcile has run yet
    }
    return newestFirst(files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)));
  }

  async read(name: string, kind: 'json' | 'csv'): Promise<string | undefined> {
    if (!isReportName(name)) return undefined;
    try {
      return await readFile(join(this.dir, `${name}.${kind}`), 'utf8');
    } catch {
      return undefined;
    }
  }
}

export class S3ReportArchive implements ReportArchive {
  constructor(
    private readonly bucket: string,
    private readonly region?: string,
    private readonly prefix = 'reports/',
  ) {}

  private client?: Promise<import('@aws-sdk/client-s3').S3Client>;
  private s3() {
    return (this.client ??= import('@aws-sdk/client-s3').then(({ S3Client }) => new S3Client(this.region ? { region: this.region } : {})));
  }

  async list(): Promise<string[]> {
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const s3 = await this.s3();
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of page.Contents ?? []) if (o.Key?.endsWith('.json')) names.push(o.Key.slice(this.prefix.length, -'.json'.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return newestFirst(names);
  }

  async read(name: string, kind: 'json' | 'csv'): Promise<string | undefined> {
    if (!isReportName(name)) return undefined;
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      const out = await (await this.s3()).send(new GetObjectCommand({ Bucket: this.bucket, Key: `${this.prefix}${name}.${kind}` }));
      return await out.Body?.transformToString('utf8');
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }
}
