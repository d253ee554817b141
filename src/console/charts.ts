/**
 * Server-rendered SVG charts for the console: no script (the console's CSP allows none), no outside
 * service. Each chart is an image with a title and a label saying what it shows; the numbers
 * themselves are always in a table beside it (views/console-dashboard.eta), so nobody needs the
 * picture to get them. Colours are attributes, not style, so the strict CSP leaves them alone.
 */

const escapeXml = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

const BAR_COLOR = '#1a5fb4';
const TRACK_COLOR = '#e6e9ef';
const AXIS_COLOR = '#8a8f98';
const WIDTH = 400;

export interface Bar {
  label: string;
  value: number;
  /** The value as people read it: "62.5% (5 / 8)", "1,204". */
  text: string;
}

export interface ChartText {
  /** The chart's name (the SVG <title>). */
  title: string;
  /** What it shows in one sentence, for screen readers (aria-label). */
  summary: string;
}

function frame(text: ChartText, height: number, body: string): string {
  return (
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="100%" role="img" aria-label="${escapeXml(text.summary)}" focusable="false">` +
    `<title>${escapeXml(text.title)}</title>${body}</svg>`
  );
}

/**
 * Horizontal bars, one per row: the label above its bar, the value at the bar's right end. `max` is
 * the full length (1 for shares; the largest value by default). Labels above rather than beside the
 * bars keep them readable when the chart is shrunk to a phone's width.
 */
export function barChart(bars: readonly Bar[], text: ChartText, max = Math.max(1, ...bars.map((b) => b.value))): string {
  const row = 40;
  const barTop = 20;
  const barHeight = 14;
  const track = WIDTH - 4;
  const body = bars
    .map((bar, i) => {
      const y = i * row;
      const length = Math.max(0, Math.min(1, bar.value / max)) * track;
      return (
        `<text x="0" y="${y + 14}" font-size="13" fill="currentColor">${escapeXml(bar.label)}</text>` +
        `<text x="${WIDTH}" y="${y + 14}" font-size="13" fill="currentColor" text-anchor="end" font-weight="bold">${escapeXml(bar.text)}</text>` +
        `<rect x="0" y="${y + barTop}" width="${track}" height="${barHeight}" rx="3" fill="${TRACK_COLOR}"/>` +
        `<rect x="0" y="${y + barTop}" width="${length.toFixed(1)}" height="${barHeight}" rx="3" fill="${BAR_COLOR}"/>`
      );
    })
    .join('');
  return frame(text, Math.max(row, bars.length * row), body);
}

export interface Point {
  /** The x-axis label (a day). */
  label: string;
  /** 0 to 1. */
  value: number;
}

/**
 * A share over time (0 to 100%): one line through the points in order, gridlines at 0, 50 and
 * 100%, the first and last labels under the axis. A single point is drawn as a dot.
 */
export function shareLineChart(points: readonly Point[], text: ChartText, percent: (value: number) => string): string {
  const height = 200;
  const left = 44;
  const top = 10;
  const plotHeight = 150;
  const plotWidth = WIDTH - left - 8;
  const x = (i: number) => left + (points.length > 1 ? (i / (points.length - 1)) * plotWidth : plotWidth / 2);
  const y = (value: number) => top + (1 - Math.max(0, Math.min(1, value))) * plotHeight;
  const grid = [0, 0.5, 1]
    .map(
      (v) =>
        `<line x1="${left}" x2="${WIDTH - 8}" y1="${y(v)}" y2="${y(v)}" stroke="${AXIS_COLOR}" stroke-width="${v === 0 ? 1 : 0.5}"/>` +
        `<text x="${left - 6}" y="${y(v) + 4}" font-size="12" fill="currentColor" text-anchor="end">${escapeXml(percent(v))}</text>`,
    )
    .join('');
  const line = points.length > 1 ? `<polyline fill="none" stroke="${BAR_COLOR}" stroke-width="2" points="${points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')}"/>` : '';
  const last = points.at(-1);
  const dot = last ? `<circle cx="${x(points.length - 1).toFixed(1)}" cy="${y(last.value).toFixed(1)}" r="3.5" fill="${BAR_COLOR}"/>` : '';
  const labels = points.length
    ? `<text x="${left}" y="${height - 10}" font-size="12" fill="currentColor">${escapeXml(points[0]!.label)}</text>` +
      (points.length > 1 ? `<text x="${WIDTH - 8}" y="${height - 10}" font-size="12" fill="currentColor" text-anchor="end">${escapeXml(last!.label)}</text>` : '')
    : '';
  return frame(text, height, grid + line + dot + labels);
}
