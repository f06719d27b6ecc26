/**
 * What the REST simulators share: serve their `handle` on a free loopback port to stand alone
 * (tests, benchmarks), closing with their open connections (keep-alive clients would hold a
 * plain close() open) — inside the local stack the same `handle` is mounted under
 * /_sim/<name>/ — and read a request and write a JSON answer the same way wherever it is mounted.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LoopbackServer {
  baseUrl: string;
  close(): Promise<void>;
}

export async function listenOnLoopback(handle: (req: IncomingMessage, res: ServerResponse, url: string) => unknown): Promise<LoopbackServer> {
  const server = createServer((req, res) => void handle(req, res, req.url ?? '/'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SimRequest {
  method: string;
  /** The path below the mount point. */
  path: string;
  query: URLSearchParams;
  /** Single-valued headers, lower-case names. */
  headers: Record<string, string>;
  /** Where the simulator is reachable as the caller addressed it (for links it hands out). */
  mount: string;
  /** JSON when the content type says so (parsed), the raw text otherwise. */
  body: unknown;
  /** The content type said JSON and the body was not. */
  badJson: boolean;
}

/** Read a whole request: `subpath` is its URL below the mount point. */
export function readRequest(req: IncomingMessage, subpath: string): Promise<SimRequest> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const full = new URL(req.url ?? '/', 'http://local');
      const sub = new URL(subpath, 'http://local');
      const prefix = full.pathname.endsWith(sub.pathname) ? full.pathname.slice(0, full.pathname.length - sub.pathname.length) : '';
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      let body: unknown = raw;
      let badJson = false;
      if ((headers['content-type'] ?? '').includes('json') && raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          badJson = true;
        }
      }
      resolve({
        method: (req.method ?? 'GET').toUpperCase(),
        path: sub.pathname,
        query: sub.search ? sub.searchParams : full.searchParams,
        headers,
        mount: `http://${req.headers.host ?? '127.0.0.1'}${prefix}`,
        body,
        badJson,
      });
    });
  });
}

/** An answer of a JSON API: a status, its headers, and a body (none for 204 and the like). */
export interface JsonAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** Write `answer`, with `contentType` (each API's own spelling) when there is a body. */
export function sendJson(res: ServerResponse, answer: JsonAnswer, contentType: string): void {
  const headers: Record<string, string> = { ...answer.headers };
  if (answer.body !== undefined) headers['content-type'] = contentType;
  res.writeHead(answer.status, headers);
  res.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
}

/** A request as a simulator's resource modules see it, once the path is split and the body parsed. */
export interface RoutedRequest {
  method: string;
  /** Path segments below the API's root, URL-decoded. */
  seg: string[];
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The JSON body as an object ({} when there is none). */
  body: Record<string, unknown>;
  /** Base URL of the mount (links are built on it). */
  base: string;
}

/** A resource module: its answer, or undefined when the request is not its route. */
export type Route<R extends JsonAnswer = JsonAnswer> = (req: RoutedRequest) => R | undefined | Promise<R | undefined>;
