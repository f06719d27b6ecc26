/**
 * The HTTP shape the domain receivers speak (WeCom callback, mailbox events), independent of
 * how requests arrive: API Gateway in Lambda (handlers/http.ts converts), node:http locally.
 */
export interface HttpRequest {
  method: string;
  path: string;
  /** Decoded query parameters (API Gateway has already URL-decoded them). */
  query: Record<string, string | undefined>;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  body: string;
  /** Source IP, when known. */
  sourceIp?: string;
}

export interface HttpResponse {
  statusCode: number;
  headers?: Record<string, string>;
  body: string;
}

export function text(statusCode: number, body: string): HttpResponse {
  return { statusCode, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

export function json(statusCode: number, value: unknown): HttpResponse {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}
