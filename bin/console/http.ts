/**
 * The console's HTTP plumbing: security headers on every answer, form bodies, redirects.
 *
 * The Content-Security-Policy allows no inline script at all: the one script is a file of
 * ours, admitted by a per-response nonce; styles come from our stylesheet only (no `style=`
 * attributes anywhere, so `style-src 'self'` holds); forms may only post back to us; nothing
 * may frame the console.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** Headers every console answer carries, pages and files alike. */
export function baseHeaders(): Record<string, string> {
  return {
    'x-content-type-options': 'nosniff',
    // Nothing about the console (a login token in the first URL, a page's path) leaves
    // through a Referer header; same-origin requests keep theirs — and, with it, the Origin
    // header the CSRF check reads (under 'no-referrer' a browser sends `Origin: null`).
    'referrer-policy': 'same-origin',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    // Pages show personal data (masked, but still): never kept in a shared cache or on disk.
    'cache-control': 'no-store',
  };
}

export function sendHtml(res: ServerResponse, status: number, body: string, nonce: string, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(status, {
    ...baseHeaders(),
    'content-security-policy': contentSecurityPolicy(nonce),
    'content-type': 'text/html; charset=utf-8',
    ...extra,
  });
  res.end(body);
}

export function sendFile(res: ServerResponse, body: string | Buffer, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(200, { ...baseHeaders(), 'content-type': contentType, ...extra });
  res.end(body);
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...baseHeaders(), 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

/** 303: after a POST the browser GETs the new page, so a reload never repeats an action. */
export function redirect(res: ServerResponse, location: string, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { ...baseHeaders(), location, ...extra });
  res.end();
}

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
    this.name = 'BodyError';
  }
}

/** An `application/x-www-form-urlencoded` body (what a plain HTML form posts), bounded. */
export async function readForm(req: IncomingMessage, limit = 64 * 1024): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new BodyError(415, 'form body expected');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyError(413, 'body too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 1) continue;
    const name = part.slice(0, eq).trim();
    try {
      out[name] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      /* a malformed cookie is ignored */
    }
  }
  return out;
}

export function cookie(name: string, value: string, opts: { path: string; maxAgeSeconds?: number; httpOnly?: boolean }): string {
  // SameSite=Strict: no other site can make the browser send our session with a request.
  // No Secure flag: the console is plain HTTP on the loopback interface only.
  return [
    `${name}=${encodeURIComponent(value)}`,
    `Path=${opts.path}`,
    'SameSite=Strict',
    ...(opts.httpOnly === false ? [] : ['HttpOnly']),
    ...(opts.maxAgeSeconds !== undefined ? [`Max-Age=${opts.maxAgeSeconds}`] : []),
  ].join('; ');
}
