/**
 * The reconcile report's files: CSV parseable by csv-parse with the documented columns,
 * formula cells neutralized, no clear mobile/address even when a caller slips one into a
 * detail, and the sinks (local files 0600; S3 PutObject over the real client on loopback).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { CSV_COLUMNS, LocalReportSink, neutralizeCell, reportCsv, reportJson, reportName, type ReconcileReport } from '../../functions/sync/report';
import { S3ReportSink } from '../../functions/sync/report-s3';

const report: ReconcileReport = {
  runId: 'reconcile-1',
  startedAt: '2026-11-01T18:00:00.000Z',
  finishedAt: '2026-11-01T18:00:05.000Z',
  mode: 'report',
  counts: { wecomPeople: 2, mailboxAccounts: 2, managedAccounts: 2, departments: 1, inSync: 0, byClass: { 'fields-differ': 1, 'duplicate-mobile': 1 } },
  drift: 2,
  findings: [
    { class: 'fields-differ', subject: 'user:alice', userid: 'alice', accountId: 'a-1', fields: ['position', 'mobile'], detail: 'position: =HYPERLINK("http://evil") → Boss; mobile: +8613800138000 → ∅' },
    { class: 'duplicate-mobile', subject: 'user:bob', userid: 'bob', detail: 'shared with bob@example.com' },
  ],
};

describe('reconcile report files', () => {
  it('CSV: BOM, documented header, one row per finding, formulas neutralized, values masked', () => {
    const csv = reportCsv(report);
    expect(csv.startsWith('\ufeff')).toBe(true);
    const rows = parse(csv.slice(1)) as string[][];
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(3);
    expect(rows[1]![0]).toBe('fields-differ');
    expect(rows[1]![5]).toBe('position mobile');
    expect(csv).not.toContain('+8613800138000');
    expect(csv).not.toContain('bob@example.com');
    expect(csv).toContain('b***@example.com');
  });

  it('neutralizes every spreadsheet formula prefix', () => {
    for (const v of ['=1+1', '+1', '-2', '@SUM(A1)', '\tx', '\rx']) expect(neutralizeCell(v).startsWith("'")).toBe(true);
    expect(neutralizeCell('研发组')).toBe('研发组');
  });

  it('JSON: same findings, strings redacted', () => {
    const back = JSON.parse(reportJson(report)) as ReconcileReport;
    expect(back.findings).toHaveLength(2);
    expect(JSON.stringify(back)).not.toContain('+8613800138000');
  });

  it('file names sort by time and carry no colon', () => {
    expect(reportName(new Date('2026-11-01T18:00:00.123Z'))).toBe('2026-11-01T18-00-00.123Z');
    expect(reportName(new Date('2026-11-01T18:00:00.124Z'))).not.toBe(reportName(new Date('2026-11-01T18:00:00.123Z')));
  });

  it('local sink writes both files, owner-only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reports-'));
    try {
      const paths = await new LocalReportSink(join(dir, 'reports')).write('r1', { csv: 'a\n', json: '{}' });
      expect(paths.map((p) => p.slice(dir.length))).toEqual(['/reports/r1.csv', '/reports/r1.json']);
      expect(readFileSync(paths[0]!, 'utf8')).toBe('a\n');
      expect(statSync(paths[1]!).mode & 0o077).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('S3 sink PUTs both objects to the bucket over the real client', async () => {
    const puts: Array<{ path: string; type: string | undefined; body: string }> = [];
    const srv = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        puts.push({ path: req.url ?? '', type: req.headers['content-type'], body });
        res.writeHead(200, { etag: '"x"' }).end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const client = new S3Client({
        endpoint: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      const where = await new S3ReportSink(client, 'reports-bucket').write('r1', { csv: 'c', json: '{"j":1}' });
      expect(where).toEqual(['s3://reports-bucket/reports/r1.csv', 's3://reports-bucket/reports/r1.json']);
      expect(puts.map((p) => p.path.split('?')[0]).sort()).toEqual(['/reports-bucket/reports/r1.csv', '/reports-bucket/reports/r1.json']);
      expect(puts.find((p) => p.path.includes('.json'))!.type).toBe('application/json');
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
