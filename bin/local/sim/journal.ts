/**
 * Persistence for the loopback simulators: their collections (Maps, and Sets inside or beside
 * them) journaled to `<dir>/<name>.jsonl`, one JSON line per operation, so a simulator
 * restarted on the same directory finds its directory as it left it, even after a `kill -9`.
 *
 * - Each mutation is appended synchronously before the caller goes on (the simulators answer
 *   HTTP after the mutation), so nothing acknowledged is lost when the process is killed.
 *   appendFileSync reaches the OS page cache: enough for a killed process, not for a power cut.
 * - O(1) per mutation: the changed entry (or one Set element) is written, never the whole
 *   collection. A Set held by an entry (a group's members, a tag's userids) is journaled
 *   element by element, so adding the 50,000th member does not rewrite 49,999 others.
 * - load() replays the journal, then compacts it: a snapshot is written to a temp file and
 *   renamed over the journal, so its size is the state's, not the history's. A last line
 *   torn by a kill during its write is ignored (it was never acknowledged).
 * - Without a directory, map() and set() return plain Map and Set: no cost at all for the
 *   benchmarks, which run the simulators with up to 100,000 users.
 *
 * Only Map/Set methods journal. An object changed in place after it was stored (e.g.
 * `Object.assign(users.get(id), patch)`) must be stored again with set() to be journaled.
 * A Set value is copied into a journaled Set when stored: mutate the one get() returns.
 */
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Key = string | number;

/**
 * One journal line on collection c. set/del: a Map entry. add/rm: a Set element, of a
 * top-level Set (no k) or of the Set held by Map entry k. clear: the whole Map or Set.
 */
type Op =
  | { op: 'set'; c: string; k: Key; v: unknown }
  | { op: 'del'; c: string; k: Key }
  | { op: 'add' | 'rm'; c: string; k?: Key; e: unknown }
  | { op: 'clear'; c: string; k?: Key };

export interface JournaledMapOptions {
  /** The values are Sets (e.g. tag id → userids). */
  valueIsSet?: boolean;
  /** The values hold a Set in this field (e.g. a group's `members`). */
  setField?: string;
}

/** Where a Set's operations go: its collection, and the entry holding it if any. */
type SetAddress = { c: string; k?: Key };

class JournaledSet<T> extends Set<T> {
  constructor(
    private readonly journal: SimJournal,
    private readonly address: SetAddress,
    /** False once this Set is no longer the one its entry holds (replaced or deleted). */
    private readonly current: (self: JournaledSet<T>) => boolean,
    initial: Iterable<T> = [],
  ) {
    super(); // not super(initial): Set's constructor would call our add() before the fields exist
    for (const e of initial) super.add(e);
  }

  override add(e: T): this {
    if (!this.has(e) && this.current(this)) this.journal.write({ op: 'add', ...this.address, e });
    return super.add(e);
  }

  override delete(e: T): boolean {
    if (!this.has(e)) return false;
    if (this.current(this)) this.journal.write({ op: 'rm', ...this.address, e });
    return super.delete(e);
  }

  override clear(): void {
    if (this.size && this.current(this)) this.journal.write({ op: 'clear', ...this.address });
    super.clear();
  }
}

class JournaledMap<K extends Key, V> extends Map<K, V> {
  constructor(
    private readonly journal: SimJournal,
    readonly name: string,
    private readonly o: JournaledMapOptions,
  ) {
    super();
  }

  override set(k: K, v: V): this {
    const value = this.adopt(k, v);
    this.journal.write({ op: 'set', c: this.name, k, v: this.encode(value) });
    return super.set(k, value);
  }

  override delete(k: K): boolean {
    if (!this.has(k)) return false;
    this.journal.write({ op: 'del', c: this.name, k });
    return super.delete(k);
  }

  override clear(): void {
    if (this.size) this.journal.write({ op: 'clear', c: this.name });
    super.clear();
  }

  /** The Set a value holds, if this map's values hold one. */
  setOf(v: V | undefined): Set<unknown> | undefined {
    if (v === undefined) return undefined;
    if (this.o.valueIsSet) return v as Set<unknown>;
    if (this.o.setField) return (v as Record<string, Set<unknown>>)[this.o.setField];
    return undefined;
  }

  /** JSON → value: arrays back into Sets (set() then makes them journaled). */
  decode(v: unknown): V {
    if (this.o.valueIsSet) return new Set(v as unknown[]) as V;
    if (this.o.setField) return { ...(v as object), [this.o.setField]: new Set((v as Record<string, unknown[]>)[this.o.setField]) } as V;
    return v as V;
  }

  /** Sets don't JSON-serialize: they are written as arrays. */
  encode(v: V): unknown {
    if (this.o.valueIsSet) return [...(v as Set<unknown>)];
    if (this.o.setField) return { ...(v as object), [this.o.setField]: [...this.setOf(v)!] };
    return v;
  }

  /** Swap the value's Set for a journaled copy, bound to this entry. */
  private adopt(k: K, v: V): V {
    const { valueIsSet, setField } = this.o;
    if (!valueIsSet && !setField) return v;
    const address = { c: this.name, k };
    const current = (s: JournaledSet<unknown>) => this.setOf(this.get(k)) === s;
    const set = new JournaledSet(this.journal, address, current, this.setOf(v) ?? []);
    if (valueIsSet) return set as V;
    (v as Record<string, unknown>)[setField!] = set;
    return v;
  }
}

export class SimJournal {
  private readonly file?: string;
  private readonly collections = new Map<string, JournaledMap<Key, unknown> | JournaledSet<unknown>>();
  private replaying = false;

  /** Without a directory the journal is off: plain collections, nothing written. */
  constructor(dir: string | undefined, name: string) {
    if (!dir) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = join(dir, `${name}.jsonl`);
  }

  /** A Map whose set/delete/clear are journaled (a plain Map when the journal is off). */
  map<K extends Key, V>(name: string, o: JournaledMapOptions = {}): Map<K, V> {
    if (!this.file) return new Map();
    const m = new JournaledMap<K, V>(this, name, o);
    this.collections.set(name, m as unknown as JournaledMap<Key, unknown>);
    return m;
  }

  /** A Set whose add/delete/clear are journaled (a plain Set when the journal is off). */
  set<T>(name: string): Set<T> {
    if (!this.file) return new Set();
    const s = new JournaledSet<T>(this, { c: name }, () => true);
    this.collections.set(name, s as JournaledSet<unknown>);
    return s;
  }

  /**
   * Replay the journal into the collections (create them all first), then compact it.
   * Returns false when there was nothing to load: a fresh directory, or the journal is off.
   */
  load(): boolean {
    if (!this.file) return false;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    const lines = text.split('\n');
    let applied = 0;
    this.replaying = true;
    try {
      lines.forEach((line, i) => {
        if (!line) return;
        let op: Op;
        try {
          op = JSON.parse(line) as Op;
        } catch {
          // The text after the last newline is a write a kill cut short: never acknowledged.
          if (i === lines.length - 1) return;
          // The line number only: the content is directory data (names, phone numbers).
          throw new Error(`${this.file}: line ${i + 1} is not JSON; the journal is damaged`);
        }
        this.apply(op);
        applied++;
      });
    } finally {
      this.replaying = false;
    }
    this.compact();
    return applied > 0;
  }

  /** @internal Append one operation (a no-op while replaying or when the journal is off). */
  write(op: Op): void {
    if (!this.file || this.replaying) return;
    // One write per line; the mode applies when the file is created (compaction makes it 0600 too).
    appendFileSync(this.file, JSON.stringify(op) + '\n', { mode: 0o600 });
  }

  private apply(op: Op): void {
    const c = this.collections.get(op.c);
    if (!c) throw new Error(`${this.file}: unknown collection '${op.c}'`);
    if (c instanceof JournaledSet) {
      if (op.op === 'add') c.add(op.e);
      else if (op.op === 'rm') c.delete(op.e);
      else if (op.op === 'clear') c.clear();
      return;
    }
    if (op.op === 'set') c.set(op.k, c.decode(op.v));
    else if (op.op === 'del') c.delete(op.k);
    else if (op.op === 'clear' && op.k === undefined) c.clear();
    else {
      // An element of the Set held by entry k (skipped if the entry is gone).
      const s = c.setOf(c.get(op.k!));
      if (!s) return;
      if (op.op === 'add') s.add(op.e);
      else if (op.op === 'rm') s.delete(op.e);
      else s.clear();
    }
  }

  /** Snapshot → temp file → fsync → rename over the journal: a kill at any point leaves one whole file. */
  private compact(): void {
    const file = this.file!;
    const tmp = `${file}.tmp`;
    rmSync(tmp, { force: true }); // a leftover of a kill during an earlier compaction
    const fd = openSync(tmp, 'w', 0o600);
    try {
      let chunk = '';
      const put = (op: Op) => {
        chunk += JSON.stringify(op) + '\n';
        if (chunk.length >= 1 << 20) {
          writeFileSync(fd, chunk);
          chunk = '';
        }
      };
      for (const [name, c] of this.collections) {
        if (c instanceof JournaledSet) for (const e of c) put({ op: 'add', c: name, e });
        // Replaying a set line is how an entry is made; its Sets are encoded in it.
        else for (const [k, v] of c) put({ op: 'set', c: name, k, v: c.encode(v) });
      }
      writeFileSync(fd, chunk);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }
}
