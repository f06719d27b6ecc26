/**
 * What every resource module of the simulator gets: the tenant's state, the options, the
 * clock, the pager, and `changed()` — the one door for a user change, which both logs it for
 * the delta query and notifies the subscriptions, as Graph does.
 */
import type { Pager, Res } from './odata';
import type { GraphState } from './state';

export type NotifyFn = (url: string, body: string, headers: Record<string, string>) => Promise<{ status: number; body: string }>;

export interface SimOptions {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  organizationId: string;
  /** The Microsoft cloud this tenant lives in: decides the token scope and the `@odata.id` host Graph accepts. */
  cloud: 'global' | 'china';
  pageSize: number;
  maxTop: number;
  tokenLifetimeSeconds: number;
  validationTimeoutMs: number;
}

export interface SimRequest {
  method: string;
  /** Path segments after `/v1.0`, URL-decoded. */
  seg: string[];
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** The JSON body as an object ({} when there is none). */
  body: Record<string, unknown>;
  /** Base URL of the mount (links are built on it). */
  base: string;
}

/** A resource module: its answer, or undefined when the request is not its route. */
export type Route = (req: SimRequest) => Res | undefined | Promise<Res | undefined>;

export interface SimContext {
  state: GraphState;
  opts: SimOptions;
  now: () => Date;
  pager: Pager;
  /** A user changed: logged for delta, notified to the subscriptions on users. */
  changed(userId: string, changeType: 'updated' | 'deleted'): void;
}
