/**
 * Health of the integration's outside world: can we still get a WeCom token with BOTH
 * secrets (contacts-sync and self-built app), and do the mailbox provider's own checks pass
 * (its token, its push channel: `connection.health()`, e.g. mailbox/graph/health.ts)? Plus
 * queue depths when wired. Used by the scheduled health function (which turns failures into
 * an ERROR log line and a metric for the alarms) and by the CLI's `status`.
 *
 * Every probe is bounded by a timeout and its error text is redacted: a token, secret or
 * address never reaches the result.
 */
import { redactText } from '../core/redact';
import type { MailboxHealthProbe } from '../mailbox/provider';

export interface HealthDeps {
  /** One probe per WeCom secret ('contacts', 'app'): resolves when gettoken works. */
  wecomTokens: Record<string, () => Promise<void>>;
  /** The mailbox provider's checks, each under its own name (Graph: graph-token, graph-subscription). */
  mailbox?: MailboxHealthProbe[];
  queueDepth?: () => Promise<{ queue: number; deadLetters: number }>;
  now: () => Date;
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
    ...(deps.mailbox ?? []).map(async (p) => {
      try {
        const r = await withTimeout(p.run(now), timeout, p.name);
        if (r.subscription !== undefined) result.subscription = r.subscription;
        checks.push({ name: p.name, ok: r.ok, severity: 'error', detail: r.detail });
      } catch (err) {
        checks.push({ name: p.name, ok: false, severity: 'error', detail: why(err) });
      }
    }),
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

