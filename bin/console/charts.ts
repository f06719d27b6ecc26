/**
 * Bar charts as inline SVG: no chart library, no script, nothing the CSP has to allow. Colours
 * come from CSS classes in the stylesheet (a `style` attribute would be blocked by the CSP).
 * Each segment carries a <title>, so hovering (or a screen reader) gives the exact count.
 *
 * Axis labels that are times carry `data-time`: the page script rewrites them in the
 * viewer's time zone; without the script the UTC text stays.
 */
import { html, type Html } from './html';

export interface Segment {
  value: number;
  /** CSS class giving the colour, e.g. 's-update'. */
  cls: string;
  title: string;
}

export interface Bar {
  /** The axis label (shown for every `labelEvery`-th bar). */
  label: string;
  /** The label is a time: ISO text and how to format it ('hour' | 'day' | 'date' | 'datetime'). */
  time?: { iso: string; fmt: 'hour' | 'day' | 'date' | 'datetime' };
  segments: Segment[];
}

export interface ChartOptions {
  title: string;
  bars: Bar[];
  width?: number;
  height?: number;
  labelEvery?: number;
}

const n = (x: number) => (Math.round(x * 10) / 10).toString();

export function barChart(o: ChartOptions): Html {
  const width = o.width ?? 640;
  const height = o.height ?? 180;
  const pad = { left: 36, right: 8, top: 10, bottom: 26 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(1, ...o.bars.map((b) => b.segments.reduce((s, x) => s + x.value, 0)));
  const slot = plotW / Math.max(1, o.bars.length);
  // A few bars stay bars, not slabs: at most 48 units wide, centred in their slot.
  const barW = Math.min(48, Math.max(2, slot * 0.7));
  const every = o.labelEvery ?? 1;

  const bars = o.bars.map((b, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let y = pad.top + plotH;
    const rects = b.segments
      .filter((s) => s.value > 0)
      .map((s) => {
        const h = (s.value / max) * plotH;
        y -= h;
        return html`<rect class="${s.cls}" x="${n(x)}" y="${n(y)}" width="${n(barW)}" height="${n(h)}"><title>${s.title}</title></rect>`;
      });
    const label =
      i % every === 0
        ? html`<text class="axis" x="${n(x + barW / 2)}" y="${n(height - 8)}" text-anchor="middle"${b.time ? html` data-time="${b.time.iso}" data-fmt="${b.time.fmt}"` : ''}>${b.label}</text>`
        : '';
    return html`${rects}${label}`;
  });

  return html`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${o.title}" xmlns="http://www.w3.org/2000/svg">
<title>${o.title}</title>
<line class="grid" x1="${pad.left}" y1="${pad.top}" x2="${width - pad.right}" y2="${pad.top}"/>
<line class="baseline" x1="${pad.left}" y1="${pad.top + plotH}" x2="${width - pad.right}" y2="${pad.top + plotH}"/>
<text class="axis" x="${pad.left - 4}" y="${pad.top + 4}" text-anchor="end">${max}</text>
<text class="axis" x="${pad.left - 4}" y="${pad.top + plotH}" text-anchor="end">0</text>
${bars}
</svg>`;
}

export function legend(items: Array<{ cls: string; label: string }>): Html {
  return html`<ul class="legend">${items.map((i) => html`<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class="${i.cls}" width="10" height="10"/></svg>${i.label}</li>`)}</ul>`;
}
