/**
 * What every provider adapter (WeCom, each mailbox system) throws when a call fails: enough
 * for the engine to decide retry or park without knowing which provider it was. Messages
 * name the route or API and the provider's code — never a value we sent (providers echo them).
 */
export class ProviderError extends Error {
  constructor(
    message: string,
    /** A later attempt may succeed (throttled, busy, network): the queue retries it. */
    readonly retryable: boolean,
    /** The provider's own code: a WeCom errcode, a Graph error code … */
    readonly code?: string | number,
    /** How long the provider asked us to wait (Retry-After, WeCom's block time). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}
