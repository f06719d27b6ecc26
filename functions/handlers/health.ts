/**
 * Scheduled Lambda (EventBridge, every 15 min): checkHealth (sync/health.ts) with AWS wiring.
 * A failed check becomes an ERROR log line and a `HealthCheckFailed` EMF metric (dimension
 * `check`), which is what the alarms watch; the structured result is returned. Never throws
 * for a failed check: a failing dependency is a result, not a crash of this function.
 */
import middy from '@middy/core';
import { log } from '../core/log';
import { checkHealth, type HealthDeps, type HealthResult } from '../sync/health';

/** What the handler needs to publish failures (a Powertools Metrics in AWS, a fake in tests). */
export interface FailureMetrics {
  failed(check: string): void;
  flush(): void;
}

export interface HealthHandlerDeps {
  healthDeps: () => Promise<HealthDeps>;
  metrics: () => Promise<FailureMetrics>;
}

export function createHealthHandler(deps: HealthHandlerDeps) {
  return middy(async (): Promise<HealthResult> => {
    const [d, metrics] = await Promise.all([deps.healthDeps(), deps.metrics()]);
    const result = await checkHealth(d);
    for (const c of result.checks) {
      if (c.ok) continue;
      if (c.severity === 'error') {
        log.error('health check failed', { check: c.name, detail: c.detail });
        metrics.failed(c.name);
      } else {
        log.warn('health check warning', { check: c.name, detail: c.detail });
      }
    }
    metrics.flush();
    log.info('health', { ok: result.ok, checks: result.checks.map((c) => `${c.name}:${c.ok ? 'ok' : 'FAILED'}`) });
    return result;
  });
}

/** EMF metrics: namespace WecomMailboxSync, metric HealthCheckFailed, dimension check. */
export async function powertoolsFailureMetrics(): Promise<FailureMetrics> {
  const { Metrics, MetricUnit } = await import('@aws-lambda-powertools/metrics');
  const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'WecomMailboxSync', serviceName: 'health' });
  return {
    failed: (check) => {
      // One metric object per check, so each failure keeps its own dimension.
      const single = metrics.singleMetric();
      single.addDimension('check', check);
      single.addMetric('HealthCheckFailed', MetricUnit.Count, 1);
      metrics.addMetric('HealthCheckFailed', MetricUnit.Count, 1);
    },
    flush: () => metrics.publishStoredMetrics(),
  };
}

async function awsHealthDeps(): Promise<HealthDeps> {
  const [{ loadWecomApiSecret }, { awsMailbox }, { wecomTokenProbe }, { SQSClient, GetQueueAttributesCommand }] = await Promise.all([
    import('../wecom/api-secret'),
    import('./mailbox'),
    import('../sync/health'),
    import('@aws-sdk/client-sqs'),
  ]);
  const [w, { config, provider, secret }] = await Promise.all([
    loadWecomApiSecret(),
    awsMailbox(),
  ]);
  // One try per probe: the health check wants to know how things are now, not after backoff.
  const mailbox = provider.create(config, secret, { maxRetries: 1 });
  const sqs = new SQSClient(process.env.SQS_ENDPOINT ? { endpoint: process.env.SQS_ENDPOINT } : {});
  const depth = async (url: string | undefined) => {
    if (!url) return 0;
    const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }));
    return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
  };
  return {
    wecomTokens: {
      contacts: wecomTokenProbe(config.wecom.apiBase, w.corpId, w.contactsSecret),
      app: wecomTokenProbe(config.wecom.apiBase, w.corpId, w.appSecret),
    },
    mailbox: mailbox.health(),
    ...(process.env.QUEUE_URL ? { queueDepth: async () => ({ queue: await depth(process.env.QUEUE_URL), deadLetters: await depth(process.env.DLQ_URL) }) } : {}),
    now: () => new Date(),
  };
}

let wired: Promise<HealthDeps> | undefined;
export const handler = createHealthHandler({
  healthDeps: () => {
    wired ??= awsHealthDeps();
    wired.catch(() => (wired = undefined));
    return wired;
  },
  metrics: powertoolsFailureMetrics,
});
