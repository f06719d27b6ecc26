/**
 * HTML built from tagged templates that escape every interpolated value: a name typed by a
 * WeCom admin (`<script>`, quotes) is text on the page, never markup. Only `Html` values —
 * produced by `html` itself or, deliberately, by `raw` for markup we wrote — pass through.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (value === undefined || value === null || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Markup we wrote ourselves (e.g. an SVG chart assembled from numbers). Never user data. */
export function raw(markup: string): Html {
  return new Html(markup);
}
