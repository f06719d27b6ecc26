/**
 * What a mailbox provider IS to the rest of the product: one descriptor per system
 * (`functions/mailbox/<provider>/index.ts`), found by name through the registry
 * (`functions/mailbox/providers.ts`). Handlers, the CLI and the local stack ask the
 * descriptor for everything provider-specific — the directory adapter, its capabilities,
 * health probes, the change feed's upkeep, the push receiver — so none of them names a
 * provider. Adding one (Google next) is a folder plus a registry line; the contract it must
 * keep is `MailboxDirectory` (directory.ts) and test/mailbox/conformance.ts.
 */
import type { MailboxProviderName, RuntimeConfig } from '../config/runtime';
import type { HttpRequest, HttpResponse } from '../core/http';
import type { Subject } from '../core/model';
import type { SyncMessage } from '../queue/messages';
import type { InboxEntry } from '../store/ports';
import type { MailboxDirectory } from './directory';

/**
 * How changes made in the mailbox system reach us:
 * - `push`: the system posts notifications to `/mailbox/events/<provider>`; the scheduled upkeep
 *   keeps the channel alive (a subscription to create and renew) and, when `delta` is true,
 *   catches up on what a lost notification would have said;
 * - `delta`: no push; the scheduled upkeep reads what changed since a stored cursor;
 * - `poll`: no push and no server-side delta; the scheduled upkeep polls what changed since a
 *   high-water mark the adapter keeps in the cursor (LDAP: uSNChanged / modifyTimestamp) and
 *   finds deletions by comparing ids (`feed.known`); where even that is missing, the scheduled
 *   reconcile (a full comparison) is the feed.
 * Whatever the kind, an event is only "subject X may have changed": the worker re-reads X.
 */
export type ChangeFeedKind = 'push' | 'delta' | 'poll';

export interface MailboxCapabilities {
  /** Department groups: `ensureGroup` / `setGroupMembership` do something. */
  groups: boolean;
  /** A recycle bin: `delete` is soft and `findDeleted` / `restore` bring a rehire's account back. */
  restore: boolean;
  /** The primary change feed of this deployment. */
  changes: ChangeFeedKind;
  /** An incremental read exists (the `delta` feed itself, or the catch-up behind `push`). */
  delta: boolean;
  /** Absent or true: the adapter writes. false: a read-only directory (LDAP without `writes`): every write is refused (`invalid`, code ReadOnly), so the engine must not plan one. */
  writes?: boolean;
}

/**
 * The mailbox secret (JSON in MAILBOX_SECRET_ARN; locally env vars): the provider's own
 * credentials plus `webhookSecret`, which signs the generic webhook of every provider.
 */
export type MailboxSecret = { webhookSecret: string } & Record<string, string>;

/** Where the delta feed keeps its cursor between scheduled runs. */
export interface FeedCursorStore {
  get(): Promise<string | undefined>;
  put(cursor: string): Promise<void>;
}

export interface MailboxConnectOptions {
  fetch?: typeof fetch;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** Retries of a throttled call inside the adapter before it gives up (the queue retries after). */
  maxRetries?: number;
  /** What the change feed needs beyond the adapter: its cursor and the queue (the scheduled upkeep). */
  feed?: {
    cursor?: FeedCursorStore;
    enqueue?: (messages: SyncMessage[]) => Promise<void>;
    /** The ids of this provider's accounts the product believes exist (state records' targetIds): a polling feed reports those gone from the directory. */
    known?: () => AsyncIterable<string>;
  };
}

/** A push channel as the upkeep left it (Graph: the subscription on users). */
export interface PushChannelStatus {
  subscriptionId: string;
  created: boolean;
  renewed: boolean;
  ok: boolean;
  expiresAt: string;
  /** Duplicates or unfixable channels deleted. */
  removed: string[];
}

export interface FeedUpkeepResult {
  kind: ChangeFeedKind;
  /** push: the channel after create / renew / recreate. */
  subscription?: PushChannelStatus;
  /** delta: what the catch-up read queued; `full` when the cursor had expired (or there was none) and the read started over. */
  caughtUp?: { changed: number; full: boolean };
  /** Why part of the upkeep did not run (e.g. no cursor store wired). */
  skipped?: string;
}

export interface ChangeFeed {
  readonly kind: ChangeFeedKind;
  /** The scheduled run: keep the push channel alive, and/or catch up from the cursor. */
  upkeep(): Promise<FeedUpkeepResult>;
  /** The worker got a message on `mailbox:<provider>:subscription` (a lifecycle notice): renew, recreate or catch up. */
  onLifecycle(message: SyncMessage): Promise<void>;
}

/** One named health check (e.g. `graph-token`, `graph-subscription`). Throwing = failed, with the (redacted) error. */
export interface MailboxHealthProbe {
  name: string;
  run(now: Date): Promise<MailboxProbeResult>;
}

export interface MailboxProbeResult {
  ok: boolean;
  detail: string;
  /** The push channel, when this probe looked at it (`null`: there is none). */
  subscription?: { id: string; expiresAt: string; hoursLeft: number } | null;
}

/** A deployment's provider, built once per container from the runtime config and the secret. */
export interface MailboxConnection {
  directory: MailboxDirectory;
  capabilities: MailboxCapabilities;
  health(options?: { minSubscriptionHours?: number }): MailboxHealthProbe[];
  feed: ChangeFeed;
}

/** A lifecycle notice of the push channel, as the receiver passed it on. */
export interface LifecycleNotification {
  lifecycleEvent: string;
  subscriptionId: string;
  subscriptionExpirationDateTime?: string;
}

export interface NotificationContext {
  /** The secret the system echoes in every notification (Graph: the subscription's clientState). */
  clientState: string;
  now: Date;
  /** Width of the receipt-time bucket in dedupe keys of notifications that carry no id. */
  dedupeBucketMs: number;
}

/** What the receiver does with one request to `/mailbox/events/<provider>`. */
export type NotificationParse =
  /** Answer as is, record nothing (a validation handshake, a refusal). */
  | { kind: 'answer'; response: HttpResponse }
  /** Record these entries (one per notification) and enqueue their subjects; pass the lifecycle notices on. */
  | { kind: 'events'; entries: InboxEntry[]; lifecycle: LifecycleNotification[] };

/** The push receiver's provider half: parse and authenticate, no network, no storage (mailbox/receive.ts does those). */
export interface NotificationReceiver {
  parse(req: HttpRequest, ctx: NotificationContext): NotificationParse;
}

export interface MailboxProvider {
  readonly name: MailboxProviderName;
  /** For people: 'Microsoft 365 (Microsoft Graph)'. */
  readonly title: string;
  /** What this deployment can do; may depend on the config (Graph: the cloud). */
  capabilities(config: RuntimeConfig): MailboxCapabilities;
  /** Local runs: the env var holding each key of the secret (`webhookSecret` is MAILBOX_WEBHOOK_SECRET for all). */
  readonly secretEnv: Readonly<Record<string, string>>;
  /** The adapter and its extras for this deployment. Throws naming a missing secret key, never a value. */
  create(config: RuntimeConfig, secret: MailboxSecret, options?: MailboxConnectOptions): MailboxConnection;
  /** The push receiver; absent when the system cannot push. */
  readonly notifications?: NotificationReceiver;
}

/** The subject of a provider's feed upkeep messages (lifecycle notices): resolved by sync/resolve.ts for any provider. */
export function feedSubject(provider: string): Subject {
  return `mailbox:${provider}:subscription`;
}
