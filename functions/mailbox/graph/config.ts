/**
 * Which Microsoft cloud a Graph deployment talks to, and everything that follows from it: the
 * token service, the Graph service root, the token scope, the host of `@odata.id`
 * references, and the default change feed. One table, so the scope is written once.
 *
 * Facts (Microsoft Learn, read 2026; details and the gaps we could not confirm in
 * docs/mailbox-adapters.md):
 * - Endpoints per cloud: "Microsoft Graph national cloud deployments" (learn.microsoft.com/graph/deployments):
 *   token service https://login.microsoftonline.com (global), https://login.chinacloudapi.cn
 *   (Azure China operated by 21Vianet); Graph https://graph.microsoft.com and
 *   https://microsoftgraph.chinacloudapi.cn. Tokens of one cloud are not accepted by another.
 * - Scope: "Access national cloud deployments with the Microsoft Graph SDKs"
 *   (learn.microsoft.com/graph/sdks/national-clouds): a scope that contains the Graph domain
 *   MUST use the domain of the cloud's Graph root; client credentials use `<root>/.default`.
 *   Entra answers a mismatch with `invalid_scope` (the simulator does the same).
 * - Delta query: "available for customers hosted on the public cloud and Microsoft Graph China
 *   operated by 21Vianet" (learn.microsoft.com/graph/delta-query-overview, National clouds).
 * - Change notifications: Create subscription is listed for every cloud, but support "varies
 *   across different resources on each national cloud deployment" and no page confirms the
 *   `users` resource in 21Vianet. So `china` reads changes by the scheduled delta read unless
 *   `graph.changeNotifications: true` says the operator checked their tenant.
 */
import type { RuntimeConfig } from '../../config/runtime';
import { MailboxError } from '../directory';
import type { MailboxCapabilities, MailboxSecret } from '../provider';

export type GraphCloudName = RuntimeConfig['graph']['cloud'];

export interface GraphCloud {
  name: GraphCloudName;
  title: string;
  /** Entra token service root. */
  loginHost: string;
  /** Graph service root: the API, the resource the token is for, and the host of `@odata.id` references. */
  graphHost: string;
  /** Change notifications on users are the default feed (else the scheduled delta read). */
  push: boolean;
}

/** Record over the config's enum: adding a cloud to runtime.ts without a profile here does not compile. */
export const GRAPH_CLOUDS: Readonly<Record<GraphCloudName, GraphCloud>> = {
  global: {
    name: 'global',
    title: 'Microsoft 365 (global)',
    loginHost: 'https://login.microsoftonline.com',
    graphHost: 'https://graph.microsoft.com',
    push: true,
  },
  china: {
    name: 'china',
    title: 'Microsoft 365 operated by 21Vianet',
    loginHost: 'https://login.chinacloudapi.cn',
    graphHost: 'https://microsoftgraph.chinacloudapi.cn',
    push: false,
  },
};

export function graphCloud(cloud: GraphCloudName | GraphCloud | undefined): GraphCloud {
  if (cloud === undefined) return GRAPH_CLOUDS.global;
  return typeof cloud === 'string' ? GRAPH_CLOUDS[cloud] : cloud;
}

/** The app-only (client credentials) scope: always the cloud's Graph root, whatever host the requests go to. */
export function graphScope(cloud: GraphCloud): string {
  return `${cloud.graphHost}/.default`;
}

/** The cloud's token endpoint for a tenant. */
export function graphTokenUrl(cloud: GraphCloud, tenantId: string): string {
  return `${cloud.loginHost}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
}

/** A directory object as Graph names it in a `$ref` body: on the cloud's host, not the transport's. */
export function directoryObjectRef(cloud: GraphCloud, id: string): string {
  return `${cloud.graphHost}/v1.0/directoryObjects/${id}`;
}

/** Does this deployment use change notifications? The config's word, else the cloud's default. */
export function usesPush(settings: RuntimeConfig['graph']): boolean {
  return settings.changeNotifications ?? graphCloud(settings.cloud).push;
}

export function graphCapabilities(settings: RuntimeConfig['graph']): MailboxCapabilities {
  return { groups: true, restore: true, changes: usesPush(settings) ? 'push' : 'delta', delta: true };
}

export interface GraphCredentials {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Echoed by Graph in every notification (≤ 128 characters); only the push feed needs it. */
  clientState?: string;
}

/** Local runs: the env var of each secret key (the AWS secret holds the same keys as JSON). */
export const GRAPH_SECRET_ENV = {
  tenantId: 'GRAPH_TENANT_ID',
  clientId: 'GRAPH_CLIENT_ID',
  clientSecret: 'GRAPH_CLIENT_SECRET',
  clientState: 'GRAPH_CLIENT_STATE',
} as const;

const REQUIRED = ['tenantId', 'clientId', 'clientSecret'] as const;

/** The Graph keys of the mailbox secret, or an error naming the missing ones (never a value). */
export function graphCredentials(secret: MailboxSecret): GraphCredentials {
  const missing = REQUIRED.filter((k) => typeof secret[k] !== 'string' || !secret[k]);
  if (missing.length) throw new MailboxError(`mailbox secret lacks ${missing.join(', ')} (Microsoft Graph)`, false, 'MissingSecret', undefined, 'auth');
  return {
    tenantId: secret.tenantId!,
    clientId: secret.clientId!,
    clientSecret: secret.clientSecret!,
    ...(secret.clientState ? { clientState: secret.clientState } : {}),
  };
}
