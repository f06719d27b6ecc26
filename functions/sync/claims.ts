/**
 * Uniqueness of mobile and mailbox address across people, on keyed hashes (the clear value
 * is never stored). The first person to claim a value owns it; a second person with the same
 * value gets that field refused (and audited), the rest of their profile still syncs.
 * A claim is released when its holder's value changes or the holder is deleted.
 */
import type { StateRecord } from '../store/ports';
import type { RunContext } from './context';
import { UNIQUE_FIELDS, type UniqueField } from './state-record';

export function isUniqueField(field: string): field is UniqueField {
  return (UNIQUE_FIELDS as readonly string[]).includes(field);
}

/** Claim `value` for the run's subject. Returns undefined when granted, else the other owner. */
export async function claim(ctx: RunContext, field: UniqueField, value: string): Promise<string | undefined> {
  // A dry run must not take claims; it reports as if granted.
  if (ctx.dryRun) return undefined;
  const hash = await ctx.deps.cipher.hash(field, value);
  const owner = await ctx.deps.state.claimUnique(field, hash, ctx.subject);
  return owner === ctx.subject ? undefined : owner;
}

/** Release the claims the previous state held on values that are no longer the person's. */
export async function releaseChanged(ctx: RunContext, previous: StateRecord | undefined, nextHashes: Record<string, string | undefined>): Promise<void> {
  if (!previous || ctx.dryRun) return;
  for (const field of UNIQUE_FIELDS) {
    const old = previous.sensitive[field]?.h;
    if (old && field in nextHashes && nextHashes[field] !== old) await ctx.deps.state.releaseUnique(field, old, ctx.subject);
  }
}

/** Release every claim the person holds (they were deleted). */
export async function releaseAll(ctx: RunContext, previous: StateRecord | undefined): Promise<void> {
  if (!previous || ctx.dryRun) return;
  for (const field of UNIQUE_FIELDS) {
    const old = previous.sensitive[field]?.h;
    if (old) await ctx.deps.state.releaseUnique(field, old, ctx.subject);
  }
}
