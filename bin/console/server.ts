/**
 * A server of the console's own, for `wecom-sync console` (and the browser tests): bound to
 * 127.0.0.1 only, and — like the local stack's operator doors (bin/local/surface.ts) —
 * answering only a caller on this machine that did not come through a proxy or tunnel.
 * Nothing is deployed and no port is opened to the network: the console reaches the stack
 * with the operator's own credentials, from the operator's machine.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { notLocal } from '../local/surface';
import type { OperatorConsole } from './app';

export interface ConsoleServer {
  /** e.g. http://127.0.0.1:41234 */
  origin: string;
  port: number;
  close(): Promise<void>;
}

export async function serveConsole(opts: { console: OperatorConsole; port?: number; host?: '127.0.0.1' | '::1' }): Promise<ConsoleServer> {
  const { console: app } = opts;
  const host = opts.host ?? '127.0.0.1';
  const server: Server = createServer((req, res) => {
    const refused = notLocal(req);
    if (refused) return void res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' }).end(refused);
    const path = new URL(req.url ?? '/', 'http://console.invalid').pathname;
    if (path === '/' || path === '') return void res.writeHead(303, { location: `${app.basePath}/` }).end();
    if (path === app.basePath || path.startsWith(`${app.basePath}/`)) return void app.handle(req, res);
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://${host === '::1' ? '[::1]' : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
