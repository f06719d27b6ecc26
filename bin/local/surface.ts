/**
 * The local stack's doors. The public routes (WeCom callback, mailbox events, /healthz) answer
 * anyone: they authenticate each request themselves. The simulators (`/_sim/*`, which hand out
 * members' mobiles and create real mailbox accounts through the sync) and the operator
 * endpoints (`/_local/*`: status, dead letters, redrive, enqueue) answer only a caller on this
 * machine:
 *  - the socket's peer is a loopback address, AND
 *  - the request carries no proxy header: a tunnel or reverse proxy (ngrok, cloudflared, nginx)
 *    connects from localhost too, and adds one of these — its callers are on the internet.
 * The operator endpoints additionally want the admin token kept in <dataDir>/admin-token
 * (0600), which the CLI reads: a process of another user on the machine cannot read it.
 *
 * And the data directory itself: it holds the master key, the demo secrets and the (sealed)
 * directory; files are created 0600 and folders 0700 (umask), and fixed at every start.
 */
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';

const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-host', 'x-forwarded-proto'];

export function isLoopback(req: IncomingMessage): boolean {
  return /^(::ffff:)?127\.|^::1$/.test(req.socket.remoteAddress ?? '');
}

/** Why a request may not use a local-only route, or undefined when it may. */
export function notLocal(req: IncomingMessage): string | undefined {
  if (!isLoopback(req)) return 'loopback callers only';
  const proxied = PROXY_HEADERS.find((h) => req.headers[h] !== undefined);
  if (proxied) return `refused: a request through a proxy or tunnel (${proxied}) is not a local caller`;
  return undefined;
}

/** The admin token: created once (0600), read by the CLI from the same directory. */
export function adminToken(dataDir: string): string {
  const file = adminTokenFile(dataDir);
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
  return readFileSync(file, 'utf8').trim();
}

export function adminTokenFile(dataDir: string): string {
  return join(dataDir, 'admin-token');
}

/** Constant-time check of `Authorization: Bearer <token>`. */
export function hasAdminToken(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = createHash('sha256').update(m[1]!).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** New files of this process owner-only; everything already under `dir` made so. */
export function lockDown(dir: string): void {
  process.umask(0o077);
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) {
      if ((st.mode & 0o777) !== 0o700) chmodSync(p, 0o700);
      for (const name of readdirSync(p)) walk(join(p, name));
    } else if (st.isFile() && (st.mode & 0o777) !== 0o600) {
      chmodSync(p, 0o600);
    }
  };
  walk(dir);
}
