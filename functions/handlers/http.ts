/**
 * Converters between API Gateway HTTP API (v2) events and the HTTP shape the domain
 * receivers speak (core/http.ts). The local dev server builds the
 * same API Gateway events, so the deployed and local paths run identical handler code.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { HttpRequest, HttpResponse } from '../core/http';


export function fromApiGateway(event: APIGatewayProxyEventV2): HttpRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) headers[k.toLowerCase()] = v;
  const body = event.body ? (event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body) : '';
  return {
    method: event.requestContext?.http?.method ?? 'GET',
    path: event.rawPath ?? event.requestContext?.http?.path ?? '/',
    query: { ...(event.queryStringParameters ?? {}) },
    headers,
    body,
    sourceIp: event.requestContext?.http?.sourceIp,
  };
}

export function toApiGateway(res: HttpResponse): APIGatewayProxyStructuredResultV2 {
  return { statusCode: res.statusCode, headers: res.headers ?? {}, body: res.body, isBase64Encoded: false };
}
