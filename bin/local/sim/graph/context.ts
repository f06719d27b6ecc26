/**
 * What every resource module of the simulator gets: the tenant's state, the options, the
 * clock, the pager, and `changed()` — the one door for a user change, which both logs it for
 * the delta query and notifies the subscriptions, as Graph does.
 */
import type { Route as LoopbackRoute, RoutedRequest } from '../loopback';
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

/** Segments after `/v1.0`. */
export type SimRequest = RoutedRequest;
export type Route = LoopbackRoute<Res>;

export interface SimContext {
  state: GraphState;
  opts: SimOptions;
  now: () => Date;
  pager: Pager;
  /** A user changed: logged for delta, notified to the subscriptions on users. */
  changed(userId: string, changeType: 'updated' | 'deleted'): void;
}
