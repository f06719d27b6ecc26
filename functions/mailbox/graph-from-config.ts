/** The Graph adapter as every entry point builds it: endpoints and domain from the runtime config, credentials from the secret. */
import type { RuntimeConfig } from '../config/runtime';
import { GraphDirectory } from './graph';

export interface GraphCredentials {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

export function graphDirectoryFromConfig(config: RuntimeConfig, creds: GraphCredentials): GraphDirectory {
  return new GraphDirectory({
    tenantId: creds.tenantId,
    clientId: creds.clientId,
    clientSecret: creds.clientSecret,
    domain: config.mailDomain,
    ...(config.graph.apiBase ? { apiBase: config.graph.apiBase } : {}),
    ...(config.graph.tokenUrl ? { tokenUrl: config.graph.tokenUrl } : {}),
  });
}
