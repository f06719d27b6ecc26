/**
 * One contract, two stores: the in-memory RunStore and the reconcile table on dynalite (the
 * real DynamoDB client). Overwrites never double, pages come in DynamoDB's key order (which
 * `compareKeys` reproduces for merges), and the versioned checkpoint lets one writer through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../bin/local/dynalite';
import { VersionConflictError } from '../../functions/store/ports';
import { compareKeys, MemoryRunStore, type RunStore } from '../../functions/store/run-store';
import { DynamoRunStore } from '../../functions/store/run-store-dynamo';
import { afterGroup, SEP } from '../../functions/sync/reconcile/keys';

let dyn: LocalDynamo;
beforeAll(async () => {
  dyn = await startDynalite();
});
afterAll(async () => {
  await dyn?.close();
});

let n = 0;
const stores: Array<[string, () => RunStore]> = [
  ['memory', () => new MemoryRunStore()],
  ['dynamo (dynalite)', () => new DynamoRunStore(dyn.client, dyn.tables.reconcile!)],
];

describe.each(stores)('RunStore: %s', (_name, make) => {
  it('an item written twice is one item with the last value; pages resume after a key', async () => {
    const s = make();
    const pk = `run${++n}#w#0`;
    await s.put(Array.from({ length: 60 }, (_, i) => ({ pk, sk: `k${String(i).padStart(3, '0')}`, value: { i } })));
    await s.put([{ pk, sk: 'k007', value: { i: 'again' } }]);
    const all: unknown[] = [];
    let after: string | undefined;
    for (;;) {
      const p = await s.page<{ i: unknown }>(pk, { ...(after ? { after } : {}), limit: 25 });
      all.push(...p.items.map((x) => x.value.i));
      if (!p.more) break;
      after = p.items.at(-1)!.sk;
    }
    expect(all).toHaveLength(60);
    expect(all[7]).toBe('again');
    expect(await s.get(pk, 'k059')).toEqual({ i: 59 });
    expect(await s.get(pk, 'nope')).toBeUndefined();
  });

  it('keys come in DynamoDB order (UTF-8 bytes), which compareKeys reproduces; a group resumes after its last member', async () => {
    const s = make();
    const pk = `run${++n}#m#0`;
    const keys = ['b', 'a', `a${SEP}2`, `a${SEP}1`, 'ab', 'A', 'é', '中', '😀', 'ｚ', 'a\u007f', 'a!'];
    await s.put(keys.map((sk) => ({ pk, sk, value: 1 })));
    const page = await s.page(pk, { limit: 100 });
    const got = page.items.map((i) => i.sk);
    expect(got).toEqual([...keys].sort(compareKeys));
    expect(got.indexOf('😀')).toBeGreaterThan(got.indexOf('ｚ')); // above U+FFFF sorts after every BMP character
    const rest = await s.page(pk, { after: afterGroup('a'), limit: 100 });
    expect(rest.items.map((i) => i.sk)).toEqual(got.filter((k) => compareKeys(k, afterGroup('a')) > 0));
    expect(rest.items[0]!.sk).toBe('a!');
  });

  it('the versioned item: created once, advanced only from the version read; the second writer gets VersionConflictError', async () => {
    const s = make();
    const pk = `run${++n}#job`;
    expect(await s.putVersioned(pk, 'job', { step: 1 }, 0)).toBe(1);
    await expect(s.putVersioned(pk, 'job', { step: 1 }, 0)).rejects.toBeInstanceOf(VersionConflictError);
    const read = (await s.getVersioned<{ step: number }>(pk, 'job'))!;
    expect(read).toEqual({ value: { step: 1 }, version: 1 });
    const both = await Promise.allSettled([s.putVersioned(pk, 'job', { step: 2 }, read.version), s.putVersioned(pk, 'job', { step: 2 }, read.version)]);
    expect(both.filter((b) => b.status === 'fulfilled')).toHaveLength(1);
    expect((both.find((b) => b.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
    expect((await s.getVersioned(pk, 'job'))!.version).toBe(2);
  });
});
