/** CLI tables line up in a terminal with Chinese names (two columns per wide character). */
import { describe, expect, it } from 'vitest';
import stringWidth from 'string-width';
import { table } from '../../bin/cli/output';

function render(rows: Array<Record<string, unknown>>, columns: string[], max?: number): string[] {
  const out: string[] = [];
  table({ out: (l) => void out.push(l), err: () => undefined, tty: false }, rows, columns, max);
  return out;
}

describe('table', () => {
  it('the second column starts at the same display column whether the first holds Chinese or ASCII', () => {
    const out = render([{ name: '张三丰', dept: 'A' }, { name: 'zhang', dept: 'B' }, { name: '李', dept: 'C' }], ['name', 'dept']);
    const starts = out.slice(2).map((l, i) => stringWidth(l.slice(0, l.indexOf('ABC'[i]!))));
    expect(starts).toEqual([starts[0], starts[0], starts[0]]);
    expect(starts[0]).toBe(stringWidth('张三丰') + 2);
  });

  it('clips a long cell by display width, not by characters', () => {
    const [, , row] = render([{ dept: '技术部/研发组/平台组' }], ['dept'], 8);
    expect(row!.endsWith('…')).toBe(true);
    expect(stringWidth(row!)).toBeLessThanOrEqual(8);
  });
});
