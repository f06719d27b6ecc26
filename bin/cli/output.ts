/**
 * CLI output: aligned tables for people, JSON for scripts, progress on stderr (a bar on a
 * TTY, plain lines otherwise) so `--json` on stdout stays parseable.
 */
import cliProgress from 'cli-progress';
import stringWidth from 'string-width';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** stderr is a terminal: progress bars allowed. */
  tty: boolean;
}

export const processIo: Io = {
  out: (line) => void process.stdout.write(line + '\n'),
  err: (line) => void process.stderr.write(line + '\n'),
  tty: Boolean(process.stderr.isTTY),
};

/** Terminal columns: East Asian wide characters (姓名, 技术部) take two, combining marks none. */
const width = (s: string): number => stringWidth(s);

function clip(s: string, max: number): string {
  if (width(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (width(out + ch) > max - 1) break;
    out += ch;
  }
  return out + '…';
}

export function table(io: Io, rows: Array<Record<string, unknown>>, columns: string[], maxWidth = 60): void {
  if (!rows.length) return;
  const cell = (v: unknown) => clip(v === undefined || v === null ? '' : Array.isArray(v) ? v.join(' ') : String(v), maxWidth);
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(width(c), ...cells.map((r) => width(r[i]!))));
  const line = (vals: string[]) => vals.map((v, i) => v + ' '.repeat(widths[i]! - width(v))).join('  ').trimEnd();
  io.out(line(columns));
  io.out(line(widths.map((w) => '-'.repeat(w))));
  for (const r of cells) io.out(line(r));
}

export interface Progress {
  update(label: string, done: number, total?: number): void;
  stop(): void;
}

export function progress(io: Io): Progress {
  if (io.tty) {
    const bar = new cliProgress.SingleBar(
      { format: '{label} [{bar}] {value}/{total}', stream: process.stderr, clearOnComplete: true, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    let current = '';
    return {
      update(label, done, total) {
        if (!started || label !== current) {
          if (started) bar.stop();
          bar.start(total ?? done, done, { label });
          started = true;
          current = label;
        }
        if (total !== undefined) bar.setTotal(total);
        bar.update(done, { label });
      },
      stop: () => (started ? bar.stop() : undefined),
    };
  }
  // Not a TTY: a line every few seconds per phase.
  let last = 0;
  let lastLabel = '';
  return {
    update(label, done, total) {
      const now = Date.now();
      if (label === lastLabel && now - last < 2_000 && done !== total) return;
      last = now;
      lastLabel = label;
      io.err(`${label}: ${done}${total !== undefined ? `/${total}` : ''}`);
    },
    stop: () => undefined,
  };
}
