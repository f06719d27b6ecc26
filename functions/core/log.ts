/**
 * The one logger. Structured JSON (Powertools), and every attribute and message passes
 * through `redact` first, so a mobile number, email, token or key cannot reach CloudWatch
 * in clear even when a caller is careless.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { redact, redactText } from './redact';

const base = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'wecom-mailbox-sync',
  logLevel: (process.env.LOG_LEVEL as 'INFO' | undefined) ?? (process.env.VITEST ? 'SILENT' : 'INFO'),
});

type Attrs = Record<string, unknown>;

export const log = {
  debug: (msg: string, attrs: Attrs = {}) => base.debug(redactText(msg), redact(attrs) as Attrs),
  info: (msg: string, attrs: Attrs = {}) => base.info(redactText(msg), redact(attrs) as Attrs),
  warn: (msg: string, attrs: Attrs = {}) => base.warn(redactText(msg), redact(attrs) as Attrs),
  error: (msg: string, attrs: Attrs = {}) => base.error(redactText(msg), redact(attrs) as Attrs),
};
