/**
 * What a page handler gets and gives back. Handlers load through the CliTarget (the same
 * ports as the CLI), act, and answer with a page, a redirect or a download; the router
 * (../app.ts) turns that into HTTP with the security headers.
 */
import type { CliTarget } from '../../cli/target';
import type { Html } from '../html';
import type { PageContext, Section } from '../layout';

export interface Services {
  target(): Promise<CliTarget>;
  /** The identity recorded in audit records for this console's actions. */
  operator(): Promise<string>;
  now(): Date;
}

export type Outcome =
  | { kind: 'page'; title: string; section?: Section; body: Html; status?: number }
  | { kind: 'redirect'; to: string }
  | { kind: 'download'; filename: string; contentType: string; body: string }
  | { kind: 'not-found' };

export interface Request {
  ctx: PageContext;
  services: Services;
  /** Path segments after the section, e.g. ['<ref>', 'plans', '<id>']. */
  params: string[];
  /** The query string (never personal data: filters and names of reports only). */
  query: URLSearchParams;
  /** The form of a POST (CSRF already checked). */
  form?: URLSearchParams;
}

export const page = (title: string, section: Section | undefined, body: Html, status?: number): Outcome => ({
  kind: 'page',
  title,
  ...(section ? { section } : {}),
  body,
  ...(status ? { status } : {}),
});

export const redirectTo = (to: string): Outcome => ({ kind: 'redirect', to });
