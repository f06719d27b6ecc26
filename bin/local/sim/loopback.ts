/**
 * What every simulator does to stand alone (tests, benchmarks): serve its `handle` on a free
 * loopback port, and close with its open connections (keep-alive clients would hold a plain
 * close() open). Inside the local stack the same `handle` is mounted under /_sim/<name>/.
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
