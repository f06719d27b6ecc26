/**
 * CLI output: aligned tables for people, JSON for scripts, progress on stderr (a bar on a
 * TTY, plain lines otherwise) so `--json` on stdout stays parseable.
 *
 * Language: messages come from the one catalogue (functions/core/messages) in the locale of
 * the Io — the process's LANG / LC_ALL / LC_MESSAGES for the real terminal, English for an
 * Io a test builds without one. JSON output is never translated.
 */
import cliProgress from 'cli-progress';
import stringWidth from 'string-width';
import { isMessageKey, localeFromEnv, translator, type Locale, type Translate } from '../../functions/core/messages';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** stderr is a terminal: progress bars allowed. */
  tty: boolean;
  /** The language of messages and table headers (default English). */
  locale?: Locale;
}

export const processIo: Io = {
  out: (line) => void process.stdout.write(line + '\n'),
  err: (line) => void process.stderr.write(line + '\n'),
  tty: Boolean(process.stderr.isTTY),
  locale: localeFromEnv(process.env),
};

/** The catalogue in the Io's language. */
export function say(io: Io): Translate {
  return translator(io.locale ?? 'en');
}

/**
 * A column's header: in English the column's own name (what `--json` calls it, so a header
 * can be grepped and matched to the JSON); in another language its catalogue label.
 */
function header(io: Io, column: string): string {
  if ((io.locale ?? 'en') === 'en') return column;
  const key = `col.${column}`;
  return isMessageKey(key) ? say(io)(key) : column;
}

/** `label:` padded to `width` display columns (Chinese labels are two columns a character). */
export function labelled(label: string, width = 17): string {
  const text = `${label}:`;
  return text + ' '.repeat(Math.max(1, width - stringWidth(text)));
}

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
  const headers = columns.map((c) => header(io, c));
  const widths = columns.map((c, i) => Math.max(width(headers[i]!), ...cells.map((r) => width(r[i]!))));
  const line = (vals: string[]) => vals.map((v, i) => v + ' '.repeat(widths[i]! - width(v))).join('  ').trimEnd();
  io.out(line(headers));
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
