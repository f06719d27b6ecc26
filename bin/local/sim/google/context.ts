/**
 * What every resource module of the Google simulator shares: the options, the request shape,
 * Google's error body, and `changed()` — the one door for a user change, which notifies the
 * users.watch channels as Google does.
 */
import type { JsonAnswer, Route as LoopbackRoute, RoutedRequest } from '../loopback';
import type { GoogleState } from './state';

export interface Res extends JsonAnswer {
  /** A user write's user as it was before (recorded for the conformance probe, never sent). */
  before?: unknown;
}

export type NotifyFn = (url: string, body: string, headers: Record<string, string>) => Promise<{ status: number; body: string }>;

export interface SimOptions {
  /** The service account (the JWT's issuer) and the public half of its key (PEM). */
  clientEmail: string;
  publicKey: string;
  /** Scopes the client ID is delegated in the Admin console (domain-wide delegation). */
  delegatedScopes: string[];
  /** Directory users allowed as `sub` (administrators with user management rights). */
  admins: string[];
  /** The customer id `my_customer` stands for. */
  customerId: string;
  /** Domains a primary address may use (empty: any). */
  domains: string[];
  /** Largest page honoured (Google: 500); lower it to exercise paging with few users. */
  maxResults: number;
  tokenLifetimeSeconds: number;
  /** Longest channel (Directory API: 6 hours). */
  maxChannelTtlSeconds: number;
  /** Days a deleted user can be restored (Google: 20). */
  undeleteDays: number;
}

/** Segments after the mount ('admin', 'directory', 'v1', 'users', …). */
export type SimRequest = RoutedRequest;
export type Route = LoopbackRoute<Res>;

export type UserEvent = 'add' | 'update' | 'delete' | 'undelete' | 'makeAdmin';

export interface SimContext {
  state: GoogleState;
  opts: SimOptions;
  now: () => Date;
  /** A user changed: every live channel watching this event gets a message. */
  changed(userId: string, event: UserEvent): void;
}

/** Google's JSON error: `{error: {code, message, errors: [{message, domain, reason}], status?}}`. */
export function gErr(status: number, reason: string, message: string, o: { domain?: string; status?: string; location?: string } = {}): Res {
  return {
    status,
    body: {
      error: {
        code: status,
        message,
        errors: [{ message, domain: o.domain ?? 'global', reason, ...(o.location ? { location: o.location, locationType: 'header' } : {}) }],
        ...(o.status ? { status: o.status } : {}),
      },
    },
  };
}

export const notFound = (what = 'userKey'): Res => gErr(404, 'notFound', `Resource Not Found: ${what}`);
export const duplicate = (): Res => gErr(409, 'duplicate', 'Entity already exists.');
export const invalid = (message: string): Res => gErr(400, 'invalid', message);
