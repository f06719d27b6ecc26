/**
 * `POST /$batch`: JSON batching, 1..20 requests, each answered on its own (throttling too:
 * Graph evaluates the requests of a batch individually, so one may be 429 while the others
 * succeed). The requests run in order through the same router, without a token check of
 * their own (the batch carried one).
 */
import type { Route } from './context';
import { gErr, type Res } from './odata';

export type Dispatch = (method: string, path: string, query: URLSearchParams, headers: Record<string, string>, body: unknown, base: string) => Promise<Res & { routeKey: string }>;

export function batchRoute(dispatch: Dispatch, count: (routeKey: string) => void): Route {
  return async ({ method, seg: s, body: b, base }) => {
    if (s[0] !== '$batch' || s.length !== 1 || method !== 'POST') return undefined;
    const reqs = (b.requests ?? []) as Array<{ id: string; method: string; url: string; headers?: Record<string, string>; body?: unknown }>;
    if (!Array.isArray(reqs) || reqs.length === 0 || reqs.length > 20) {
      return gErr(400, 'BadRequest', 'Invalid batch payload: the number of requests must be between 1 and 20.');
    }
    const responses = [];
    for (const q of reqs) {
      const u = new URL(q.url.startsWith('/') ? q.url : `/${q.url}`, 'http://batch');
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(q.headers ?? {})) h[k.toLowerCase()] = v;
      const res = await dispatch(q.method.toUpperCase(), `/v1.0${u.pathname}`, u.searchParams, h, q.body, base);
      count(res.routeKey);
      responses.push({ id: q.id, status: res.status, headers: { 'content-type': 'application/json', ...res.headers }, body: res.body ?? null });
    }
    return { status: 200, body: { responses } };
  };
}
