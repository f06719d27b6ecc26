/**
 * The layers of functions/ read top to bottom — handlers → sync → adapters (wecom, mailbox)
 * → queue, audit, config → store → security → core — and an import never points up. Walked
 * from the source text, like the drivers test of a plugin registry: a new upward import
 * fails here with the file and the line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../functions');
const RANK: Record<string, number> = { core: 0, security: 1, store: 2, queue: 3, audit: 3, config: 3, wecom: 4, mailbox: 4, sync: 5, handlers: 6 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string) => relative(ROOT, file).split('/')[0]!;

describe('functions/ layering', () => {
  it('every folder has a rank, and no file imports from a higher layer', () => {
    const all = files(ROOT);
    const upward: string[] = [];
    for (const file of all) {
      const from = layerOf(file);
      expect(RANK[from], `${relative(ROOT, file)}: folder without a layer`).toBeDefined();
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const m = /\bfrom\s+'(\.{1,2}\/[^']+)'|import\(\s*'(\.{1,2}\/[^']+)'\s*\)/.exec(line);
          const spec = m?.[1] ?? m?.[2];
          if (!spec) return;
          const to = layerOf(resolve(dirname(file), spec));
          if (RANK[to]! > RANK[from]!) upward.push(`${relative(ROOT, file)}:${i + 1} imports ${spec} (${from} → ${to})`);
        });
    }
    expect(all.length).toBeGreaterThan(50);
    expect(upward).toEqual([]);
  });
});
