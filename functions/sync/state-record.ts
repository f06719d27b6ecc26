/**
 * Turning a desired contact into what the state table stores, and back to what we need to
 * compare. Non-sensitive values go to `fields` in clear; personal data goes to `sensitive`
 * as ciphertext + keyed hash. The mailbox address is sealed too: the brief forbids an email
 * in clear in any stored item, and its keyed hash is what uniqueness claims and the
 * `mailbox:address:<hash>` webhook resolution use.
 *
 * A value whose keyed hash is unchanged keeps its old ciphertext: re-sealing would cost a
 * write and, now and then, a KMS call for nothing.
 */
import type { SealedValue } from '../security/ports';
import type { StateRecord } from '../store/ports';
import { SENSITIVE_FIELDS, type Contact } from '../core/model';
import type { RunContext } from './context';

/** Fields stored sealed in the state table. */
export const SEALED_AT_REST: readonly string[] = [...SENSITIVE_FIELDS, 'email'];
/** Fields whose value must be unique across people (claims on the keyed hash). */
export const UNIQUE_FIELDS = ['mobile', 'email'] as const;
export type UniqueField = (typeof UNIQUE_FIELDS)[number];

/** The canonical string form of a field value, as hashed and sealed. */
export function canonicalValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const sorted = Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)));
    return JSON.stringify(sorted);
  }
  return JSON.stringify(value);
}

export interface StoredValues {
  fields: Record<string, unknown>;
  /** field → canonical clear value, to be sealed. */
  clear: Record<string, string>;
}

/** Split a (post-policy) contact into clear fields and values to seal. Unknown fields keep the stored value. */
export function splitContact(contact: Contact, previous?: StateRecord): StoredValues {
  const fields: Record<string, unknown> = {};
  const clear: Record<string, string> = {};
  for (const [field, value] of Object.entries(contact)) {
    if (field === 'userid' || field === 'enabled' || value === undefined) continue;
    if (SEALED_AT_REST.includes(field)) {
      const text = canonicalValue(value);
      if (text !== undefined) clear[field] = text;
    } else if (value !== null) {
      fields[field] = value;
    }
  }
  // Unknown (undefined) now does not mean "gone": keep what we last synced.
  if (previous) {
    for (const [field, value] of Object.entries(previous.fields)) {
      if (!(field in fields) && (contact as unknown as Record<string, unknown>)[field] === undefined) fields[field] = value;
    }
  }
  return { fields, clear };
}

/** Seal every clear value, reusing the previous ciphertext when the keyed hash is unchanged. */
export async function sealValues(
  ctx: RunContext,
  clear: Record<string, string>,
  previous: StateRecord | undefined,
  contact: Contact,
): Promise<Record<string, SealedValue>> {
  const { cipher, stateTable } = ctx.deps;
  const out: Record<string, SealedValue> = {};
  for (const [field, value] of Object.entries(clear)) {
    const prev = previous?.sensitive[field];
    if (prev && prev.h === (await cipher.hash(field, value))) out[field] = prev;
    else out[field] = await cipher.seal(value, { table: stateTable, subject: ctx.subject, field });
  }
  // Unknown now → keep the stored sealed value; explicit null → dropped.
  if (previous) {
    for (const [field, sealed] of Object.entries(previous.sensitive)) {
      if (!(field in out) && (contact as unknown as Record<string, unknown>)[field] === undefined) out[field] = sealed;
    }
  }
  return out;
}

/** True when two stored shapes are the same (no state write needed). */
export function sameStored(a: { fields: Record<string, unknown>; sensitive: Record<string, SealedValue> }, b: StateRecord): boolean {
  if (stableJson(a.fields) !== stableJson(b.fields)) return false;
  const ka = Object.keys(a.sensitive).sort();
  const kb = Object.keys(b.sensitive).sort();
  if (ka.join() !== kb.join()) return false;
  return ka.every((k) => a.sensitive[k]!.h === b.sensitive[k]!.h);
}

export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/** A fresh record for a subject we have never stored. */
export function newRecord(ctx: RunContext, userid: string): StateRecord {
  return {
    subject: ctx.subject,
    wecomId: userid,
    provider: ctx.deps.mailbox.provider,
    status: 'active',
    fields: {},
    sensitive: {},
    lastSyncedAt: ctx.deps.now().toISOString(),
    version: 0,
  };
}

/**
 * Write the record (unless dry run); returns the stored record with its new version.
 *
 * Within one run the writes chain: a record built from what the run read earlier is written
 * on top of the version this run itself wrote last (its write-ahead intent, say), so callers
 * need not thread versions through; a write by anyone else in between still conflicts. Every
 * write but the intent's own clears the intent: once a run writes its outcome, its steps are
 * done and audited.
 */
export async function putState(ctx: RunContext, record: StateRecord, opts: { keepIntent?: boolean } = {}): Promise<StateRecord> {
  const mine = ctx.lastState?.subject === record.subject ? ctx.lastState : undefined;
  const next: StateRecord = {
    ...record,
    ...(mine && mine.version > record.version ? { version: mine.version } : {}),
    lastEventId: ctx.message.eventId,
    lastSyncedAt: ctx.deps.now().toISOString(),
  };
  if (!opts.keepIntent) {
    // The outcome clears the intent: only once every step's audit record has landed.
    await ctx.flushAudit();
    delete next.intent;
  }
  if (ctx.releaseHeld) delete next.held;
  const written = await ctx.write(() => ctx.deps.state.put(next), { ...next, version: next.version + 1 });
  ctx.lastState = written;
  return written;
}
