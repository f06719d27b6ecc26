/**
 * A loopback S3 (REST-XML, path-style) with just what the audit digest store uses, so its
 * tests run the real @aws-sdk/client-s3 (signing, serialisation, checksums, error parsing):
 *  - PutObject, honouring `If-None-Match: *` (412 PreconditionFailed when the key exists, as
 *    S3's conditional writes do) and decoding an aws-chunked body;
 *  - GetObject (404 NoSuchKey);
 *  - ListObjectsV2 with prefix, start-after, continuation tokens and max-keys.
 * Every request is recorded (method, key, query, headers) for assertions.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Request {
  method: string;
  bucket: string;
  key: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
}

export interface LoopbackS3 {
  endpoint: string;
  bucket: string;
  objects: Map<string, Buffer>;
  requests: S3Request[];
  /** Page size of ListObjectsV2 (default 1000, as S3). */
  maxKeys: number;
  close(): Promise<void>;
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function sendXml(res: ServerResponse, status: number, xml: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': randomUUID(), ...headers });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`);
}

const error = (res: ServerResponse, status: number, code: string, message: string) =>
  sendXml(res, status, `<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>${randomUUID()}</RequestId></Error>`);

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  if (!String(req.headers['content-encoding'] ?? '').includes('aws-chunked')) return raw;
  // aws-chunked: "<hex size>[;chunk-signature=…]\r\n<data>\r\n" … "0\r\n" then trailers.
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!size) break;
    out.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

export async function startLoopbackS3(bucket = 'audit-digests'): Promise<LoopbackS3> {
  const state = { bucket, objects: new Map<string, Buffer>(), requests: [] as S3Request[], maxKeys: 1000 } as LoopbackS3;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://s3.local');
    const [, b = '', ...rest] = url.pathname.split('/');
    const key = rest.map(decodeURIComponent).join('/');
    const query = Object.fromEntries(url.searchParams);
    state.requests.push({ method: req.method ?? '', bucket: decodeURIComponent(b), key, query, headers: { ...req.headers } });
    if (decodeURIComponent(b) !== state.bucket) return error(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');

    if (req.method === 'PUT' && key) {
      const body = await readBody(req);
      if (req.headers['if-none-match'] === '*' && state.objects.has(key)) {
        return error(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      }
      state.objects.set(key, body);
      res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"`, 'x-amz-request-id': randomUUID() });
      return res.end();
    }
    if (req.method === 'GET' && key) {
      const body = state.objects.get(key);
      if (!body) return error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), etag: `"${createHash('md5').update(body).digest('hex')}"` });
      return res.end(body);
    }
    if (req.method === 'GET' && !key && query['list-type'] === '2') {
      const prefix = query.prefix ?? '';
      const after = query['continuation-token'] ? Buffer.from(query['continuation-token'], 'base64url').toString('utf8') : (query['start-after'] ?? '');
      const max = Math.min(Number(query['max-keys'] ?? state.maxKeys), state.maxKeys);
      const keys = [...state.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
      const page = keys.slice(0, max);
      const truncated = keys.length > page.length;
      const contents = page
        .map((k) => `<Contents><Key>${xmlEscape(k)}</Key><LastModified>${new Date().toISOString()}</LastModified><ETag>"x"</ETag><Size>${state.objects.get(k)!.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`)
        .join('');
      const next = truncated ? `<NextContinuationToken>${Buffer.from(page.at(-1)!, 'utf8').toString('base64url')}</NextContinuationToken>` : '';
      return sendXml(
        res,
        200,
        `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xmlEscape(state.bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`,
      );
    }
    return error(res, 501, 'NotImplemented', `${req.method} ${url.pathname} is not simulated`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
