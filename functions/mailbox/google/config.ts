/**
 * Google Workspace settings and credentials: the endpoints, the OAuth scopes (least
 * privilege, written once), the keys of the mailbox secret, and the capabilities that follow
 * from the runtime config.
 *
 * Facts relied on (developers.google.com, read 2026-12; the list with every source is in
 * docs/providers/google.md):
 * - Service account + domain-wide delegation: a JWT signed RS256 with the service account's
 *   key, `iss` = its email, `sub` = the admin it acts as, `scope` = space-separated scopes,
 *   `aud` = https://oauth2.googleapis.com/token, at most one hour long; exchanged with
 *   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` ("Using OAuth 2.0 for Server to
 *   Server Applications"). A scope not granted to the client ID in the Admin console is
 *   refused `401 unauthorized_client`.
 * - Scopes: `admin.directory.user` covers users insert / get / list / update / delete /
 *   undelete and users.watch (each method's "Authorization scopes" in the Directory API
 *   reference); nothing else is needed while `groups` is off.
 * - Directory API root: https://admin.googleapis.com/admin/directory/v1; channels.stop is
 *   `POST /admin/directory_v1/channels/stop` (note the underscore).
 */
import type { RuntimeConfig } from '../../config/runtime';
import { MailboxError } from '../directory';
import type { MailboxCapabilities, MailboxSecret } from '../provider';

export type GoogleSettings = RuntimeConfig['google'];

export const GOOGLE_API_BASE = 'https://admin.googleapis.com';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** The JWT's audience: Google's token endpoint, whatever host the request goes to (a proxy, the simulator). */
export const GOOGLE_TOKEN_AUDIENCE = GOOGLE_TOKEN_URL;
/** Least privilege: users only (insert, get, list, update, delete, undelete, watch). */
export const GOOGLE_SCOPES = ['https://www.googleapis.com/auth/admin.directory.user'] as const;

/** Does this deployment open users.watch channels? The config's word, else yes. */
export function usesPush(settings: GoogleSettings): boolean {
  return settings.changeNotifications ?? true;
}

/**
 * No groups (Google Groups is another API and another scope; the department is the
 * `organizations[].department` attribute, optionally an org unit); a recycle bin of 20 days
 * (`users.undelete`); push through users.watch channels with the scheduled catch-up behind
 * them (feed.ts), or the catch-up alone.
 */
export function googleCapabilities(settings: GoogleSettings): MailboxCapabilities {
  return { groups: false, restore: true, changes: usesPush(settings) ? 'push' : 'delta', delta: true };
}

export interface GoogleCredentials {
  /** The service account's email (`client_email` of its JSON key): the JWT's issuer. */
  clientEmail: string;
  /** Its private key, PEM (`private_key` of the JSON key). */
  privateKey: string;
  /** The administrator the service account acts as (`sub`): needs the User Management admin privileges. */
  adminEmail: string;
  /** The channel token Google echoes as X-Goog-Channel-Token (≤ 256 characters); only the push feed needs it. */
  clientState?: string;
  /** The Directory customer id (`C0…`); default: the config's `customer` (`my_customer`). */
  customerId?: string;
}

/**
 * Local runs: the env var of each secret key (the AWS secret holds the same keys as JSON).
 * `clientState` is the channel token; the key keeps the generic name because the
 * mailbox-events receiver reads `clientState` for every provider.
 */
export const GOOGLE_SECRET_ENV = {
  clientEmail: 'GOOGLE_CLIENT_EMAIL',
  privateKey: 'GOOGLE_PRIVATE_KEY',
  adminEmail: 'GOOGLE_ADMIN_EMAIL',
  clientState: 'GOOGLE_CHANNEL_TOKEN',
} as const;

const REQUIRED = ['clientEmail', 'privateKey', 'adminEmail'] as const;
/** Google's limit on a channel token. */
export const MAX_CHANNEL_TOKEN_LENGTH = 256;

/** The Google keys of the mailbox secret, or an error naming the missing ones (never a value). */
export function googleCredentials(secret: MailboxSecret): GoogleCredentials {
  const missing = REQUIRED.filter((k) => typeof secret[k] !== 'string' || !secret[k]);
  if (missing.length) throw new MailboxError(`mailbox secret lacks ${missing.join(', ')} (Google Workspace)`, false, 'MissingSecret', undefined, 'auth');
  return {
    clientEmail: secret.clientEmail!,
    // An env var or a copied JSON string often carries the PEM's newlines as "\n".
    privateKey: secret.privateKey!.replace(/\\n/g, '\n'),
    adminEmail: secret.adminEmail!,
    ...(secret.clientState ? { clientState: secret.clientState } : {}),
    ...(secret.customerId ? { customerId: secret.customerId } : {}),
  };
}

/** The org unit for a department path: the mapping of the longest matching prefix; undefined when none matches. */
export function orgUnitFor(department: string | null | undefined, orgUnits: GoogleSettings['orgUnits']): string | undefined {
  if (!department || !orgUnits) return undefined;
  let best: { len: number; ou: string } | undefined;
  for (const [path, ou] of Object.entries(orgUnits)) {
    if ((department === path || department.startsWith(path + '/')) && (!best || path.length > best.len)) best = { len: path.length, ou };
  }
  return best?.ou;
}
