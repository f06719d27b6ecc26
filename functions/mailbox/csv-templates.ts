/**
 * The bulk-import templates by `--template` name, as providers.ts lists the adapters: the one
 * place that knows every provider's template (the contract, csv-template.ts, knows none).
 */
import type { MailboxCsvTemplate } from './csv-template';
import { m365Template } from './graph/csv';

/** A provider with an import file adds its template here. */
export const MAILBOX_CSV_TEMPLATES: Readonly<Record<string, MailboxCsvTemplate>> = {
  m365: m365Template,
};
