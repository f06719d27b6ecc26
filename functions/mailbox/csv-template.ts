/**
 * A mailbox system's own bulk-import file, as data: its columns, which of our fields each
 * carries, and how an account becomes a row. The rules every template shares (formula
 * neutralization, phone cells, duplicate checks, UTF-8 BOM) live once in sync/csv.ts, which
 * takes a template by its `--template` name from the registry (csv-templates.ts).
 */
import type { MailboxAccount } from './directory';

export type CsvCellKind = 'text' | 'phone' | 'email';

export interface CsvColumnSpec {
  /** Canonical header, then accepted spellings. */
  names: string[];
  /** Our field (name, email, mobile, telephone, position, departments, personalEmail, address) or a key of the template's own. */
  key: string;
  kind: CsvCellKind;
  required?: boolean;
}

/** One exported cell: a value with its kind (phones are written as E.164), or '' for a column we never fill. */
export type CsvCell = { kind: 'text' | 'phone'; value: string | null | undefined } | '';

export interface MailboxCsvTemplate {
  /** The CLI's `--template` name. */
  name: string;
  /** For people and error reasons, e.g. 'the Microsoft 365 template'. */
  title: string;
  columns: readonly string[];
  spec: CsvColumnSpec[];
  /** The cells of one live account, column by column. */
  row(account: MailboxAccount): CsvCell[];
}
