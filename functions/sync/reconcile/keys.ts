/**
 * Where a reconcile run keeps what it has seen (store/run-store.ts), under its run id:
 *
 *   <run>#job               job      the checkpoint and lease (one versioned item)
 *   <run>#job               audit#<action>   the run's own audit record is being appended (auditOnce)
 *   <run>#w#<s>             userid   one compact record per WeCom member (records.ts)
 *   <run>#m#<s>             employeeId ␁ seq ␁ accountId   one per linked mailbox account (seq: listing order)
 *   <run>#b#<s>             userid ␁ seq ␁ accountId       unlinked accounts in scope (mailbox source), by derived userid
 *   <run>#h#<field>#<s>     keyed hash ␁ userid      mobile / email of each member, for duplicates
 *   <run>#sh#<s>            userid ␁ field           a unique field another member shares (not field drift)
 *   <run>#f#<class>#<s>     subject ␁ discriminator  the findings
 *   <run>#r#<s>             subject  people a repair acts on, with their findings and results
 *
 * <s> is a shard: partitions stay small, and the WeCom, mailbox, birth and shared partitions
 * of one shard hold the same userids, so the join reads four sorted partitions side by side.
 *
 * ␁ (U+0001) sorts before every character a key can hold, so `a␁x` < `a!…` < `ab…`: the
 * items of one userid are contiguous and come in the order of the member partition's keys.
 * A key resumes after a whole group with `afterGroup(key)`.
 */
export const SEP = '\u0001';

/** Control characters (never in a WeCom userid) folded into one, so no key holds a separator. */
export function keyPart(id: string): string {
  return id.replace(/[\u0000-\u001f]/g, '\u007f');
}

/** The key just above every key of group `key` and below the next group's. */
export function afterGroup(key: string): string {
  return key + '\u0002';
}

/** The group (userid, hash or subject) a composite key belongs to. */
export function groupOf(sk: string): string {
  const i = sk.indexOf(SEP);
  return i < 0 ? sk : sk.slice(0, i);
}

/** FNV-1a: a cheap, stable spread of keys over shards. */
export function shardOf(key: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

export const JOB_SK = 'job';

export const part = {
  job: (run: string) => `${run}#job`,
  wecom: (run: string, s: number) => `${run}#w#${s}`,
  mailbox: (run: string, s: number) => `${run}#m#${s}`,
  births: (run: string, s: number) => `${run}#b#${s}`,
  hashes: (run: string, field: string, s: number) => `${run}#h#${field}#${s}`,
  shared: (run: string, s: number) => `${run}#sh#${s}`,
  findings: (run: string, cls: string, s: number) => `${run}#f#${cls}#${s}`,
  repairs: (run: string, s: number) => `${run}#r#${s}`,
};
