/**
 * A minimal line chart as SVG text: enough to show how time grows with workers or workload size,
 * with no plotting dependency for the benchmark.
 */

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

export function lineChart(options: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xTicks?: { x: number; label: string }[];
  /** A logarithmic y axis (for values that differ by orders of magnitude, e.g. bytes sent); y must be > 0. */
  yLog?: boolean;
  /** Formats a y tick's label (default: the number). */
  yFormat?: (y: number) => string;
}): string {
  const width = 640;
  const height = 400;
  const margin = { left: 70, right: 150, top: 40, bottom: 50 };
  const all = options.series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const ys = all.map((p) => p.y).filter((y) => !options.yLog || y > 0);
  const yMax = Math.max(...ys, 1e-9) * 1.1;
  // On a log axis: from the power of ten at or below the smallest value to the one above the largest.
  const logMin = Math.floor(Math.log10(Math.min(...ys, yMax)));
  const logMax = Math.max(logMin + 1, Math.ceil(Math.log10(yMax)));
  const plotHeight = height - margin.top - margin.bottom;
  const px = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * (width - margin.left - margin.right);
  const py = (y: number) =>
    options.yLog
      ? height - margin.bottom - ((Math.log10(y) - logMin) / (logMax - logMin)) * plotHeight
      : height - margin.bottom - (y / yMax) * plotHeight;
  const yBase = options.yLog ? 10 ** logMin : 0;
  const label = options.yFormat ?? ((y: number) => (y >= 10 ? y.toFixed(0) : y.toFixed(2)));
  const esc = (t: string) => t.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title)}</text>`,
    `<line x1="${margin.left}" y1="${py(yBase)}" x2="${width - margin.right}" y2="${py(yBase)}" stroke="black"/>`,
    `<line x1="${margin.left}" y1="${py(yBase)}" x2="${margin.left}" y2="${margin.top}" stroke="black"/>`,
    `<text x="${(margin.left + width - margin.right) / 2}" y="${height - 12}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text x="16" y="${height / 2}" text-anchor="middle" transform="rotate(-90 16 ${height / 2})">${esc(options.yLabel)}</text>`,
  ];
  const yTicks = options.yLog
    ? Array.from({ length: logMax - logMin + 1 }, (_, i) => 10 ** (logMin + i))
    : Array.from({ length: 6 }, (_, i) => (yMax / 5) * i);
  for (const y of yTicks) {
    parts.push(`<text x="${margin.left - 6}" y="${py(y) + 4}" text-anchor="end">${esc(label(y))}</text>`);
    parts.push(
      `<line x1="${margin.left}" y1="${py(y)}" x2="${width - margin.right}" y2="${py(y)}" stroke="#ddd"/>`,
    );
  }
  const ticks = options.xTicks ?? [...new Set(xs)].map((x) => ({ x, label: String(x) }));
  for (const t of ticks)
    parts.push(`<text x="${px(t.x)}" y="${py(yBase) + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  options.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const points = [...s.points].filter((p) => !options.yLog || p.y > 0).sort((a, b) => a.x - b.x);
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map((p) => `${px(p.x)},${py(p.y)}`).join(" ")}"/>`,
    );
    for (const p of points) parts.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3" fill="${color}"/>`);
    parts.push(
      `<rect x="${width - margin.right + 10}" y="${margin.top + i * 18}" width="12" height="3" fill="${color}"/>`,
    );
    parts.push(`<text x="${width - margin.right + 26}" y="${margin.top + i * 18 + 5}">${esc(s.name)}</text>`);
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
