/**
 * Health of the integration's outside world: can we still get a WeCom token with BOTH
 * secrets (contacts-sync and self-built app), a Graph token, and is the Graph subscription
 * alive for more than a day? Plus queue depths when wired. Used by the scheduled health
 * function (which turns failures into an ERROR log line and a metric for the alarms) and by
 * the CLI's `status`.
 *
 * Every probe is bounded by a timeout and its error text is redacted: a token, secret or
 * address never reaches the result.
 */
import { redactText } from '../core/redact';

export interface HealthSubscription {
  id: string;
  resource: string;
  expirationDateTime: string;
  notificationUrl?: string;
}

export interface HealthDeps {
  /** One probe per WeCom secret ('contacts', 'app'): resolves when gettoken works. */
  wecomTokens: Record<string, () => Promise<void>>;
  /** Resolves when the Graph token endpoint grants a token. */
  graphToken?: () => Promise<void>;
  /** Graph subscriptions (the call itself also proves the token works). */
  listSubscriptions?: () => Promise<HealthSubscription[]>;
  /** When set, only subscriptions delivering here count. */
  notificationUrl?: string;
  queueDepth?: () => Promise<{ queue: number; deadLetters: number }>;
  now: () => Date;
  /** Minimum remaining subscription lifetime (default 24 h). */
  minSubscriptionHours?: number;
  /** Per-probe timeout (default 10 s). */
  timeoutMs?: number;
}

export interface HealthCheck {
  name: string;
  ok: boolean;
  /** 'warn' checks never make the whole result fail (e.g. parked messages). */
  severity: 'error' | 'warn';
  detail: string;
}

export interface HealthResult {
  ok: boolean;
  checkedAt: string;
  checks: HealthCheck[];
  subscription?: { id: string; expiresAt: string; hoursLeft: number } | null;
  queue?: { depth: number; deadLetters: number };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`${what} timed out after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const why = (err: unknown) => redactText(err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 300);

export async function checkHealth(deps: HealthDeps): Promise<HealthResult> {
  const timeout = deps.timeoutMs ?? 10_000;
  const now = deps.now();
  const checks: HealthCheck[] = [];
  const result: HealthResult = { ok: true, checkedAt: now.toISOString(), checks };

  const probe = async (name: string, fn: () => Promise<void>, okDetail: string) => {
    try {
      await withTimeout(fn(), timeout, name);
      checks.push({ name, ok: true, severity: 'error', detail: okDetail });
    } catch (err) {
      checks.push({ name, ok: false, severity: 'error', detail: why(err) });
    }
  };

  await Promise.all([
    ...Object.entries(deps.wecomTokens).map(([secret, fn]) => probe(`wecom-token:${secret}`, fn, 'gettoken ok')),
    ...(deps.graphToken ? [probe('graph-token', deps.graphToken, 'token ok')] : []),
    (async () => {
      if (!deps.listSubscriptions) return;
      const minHours = deps.minSubscriptionHours ?? 24;
      try {
        const subs = await withTimeout(deps.listSubscriptions(), timeout, 'list subscriptions');
        const ours = subs
          .filter((s) => /^\/?users$/i.test(s.resource) && (!deps.notificationUrl || s.notificationUrl === deps.notificationUrl))
          .sort((a, b) => Date.parse(b.expirationDateTime) - Date.parse(a.expirationDateTime));
        const best = ours[0];
        if (!best) {
          result.subscription = null;
          checks.push({ name: 'graph-subscription', ok: false, severity: 'error', detail: 'no subscription on /users: mailbox changes are not being notified' });
          return;
        }
        const hoursLeft = (Date.parse(best.expirationDateTime) - now.getTime()) / 3_600_000;
        result.subscription = { id: best.id, expiresAt: best.expirationDateTime, hoursLeft: Math.round(hoursLeft * 10) / 10 };
        checks.push(
          hoursLeft > minHours
            ? { name: 'graph-subscription', ok: true, severity: 'error', detail: `expires in ${Math.round(hoursLeft)} h` }
            : { name: 'graph-subscription', ok: false, severity: 'error', detail: `expires in ${Math.max(0, Math.round(hoursLeft))} h (< ${minHours} h): renewal is not working` },
        );
      } catch (err) {
        checks.push({ name: 'graph-subscription', ok: false, severity: 'error', detail: why(err) });
      }
    })(),
    (async () => {
      if (!deps.queueDepth) return;
      try {
        const q = await withTimeout(deps.queueDepth(), timeout, 'queue depth');
        result.queue = { depth: q.queue, deadLetters: q.deadLetters };
        checks.push({
          name: 'dead-letters',
          ok: q.deadLetters === 0,
          severity: 'warn',
          detail: q.deadLetters === 0 ? 'no parked messages' : `${q.deadLetters} parked message(s): inspect with \`wecom-sync dlq list\``,
        });
      } catch (err) {
        checks.push({ name: 'queue', ok: false, severity: 'error', detail: why(err) });
      }
    })(),
  ]);

  checks.sort((a, b) => a.name.localeCompare(b.name));
  result.ok = checks.every((c) => c.ok || c.severity === 'warn');
  return result;
}

// ------------------------------------------------------------------ probes over HTTP

/**
 * WeCom `gettoken` with one secret, bypassing any client's token cache: the point is to learn
 * whether the secret (and our egress IP: errcode 60020) still works right now.
 */
export function wecomTokenProbe(apiBase: string, corpId: string, secret: string, fetchFn: typeof fetch = fetch): () => Promise<void> {
  return async () => {
    const url = `${apiBase.replace(/\/+$/, '')}/cgi-bin/gettoken?corpid=${encodeURIComponent(corpId)}&corpsecret=${encodeURIComponent(secret)}`;
    const res = await fetchFn(url);
    const body = (await res.json().catch(() => ({}))) as { errcode?: number; errmsg?: string; access_token?: string };
    if (res.ok && (body.errcode ?? 0) === 0 && body.access_token) return;
    // errmsg may quote the caller's IP (60020): useful, and not personal data; the secret is never in it.
    throw new Error(`gettoken failed: http ${res.status} errcode ${body.errcode ?? '?'} ${(body.errmsg ?? '').slice(0, 160)}`);
  };
}

/** Graph client-credentials token request (the same as the adapter's, without its cache). */
export function graphTokenProbe(tokenUrl: string, clientId: string, clientSecret: string, fetchFn: typeof fetch = fetch): () => Promise<void> {
  return async () => {
    const res = await fetchFn(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: 'https://graph.microsoft.com/.default' }).toString(),
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string; error?: string };
    if (res.ok && body.access_token) return;
    throw new Error(`Graph token request failed: http ${res.status} ${typeof body.error === 'string' ? body.error : ''}`.trim());
  };
}
