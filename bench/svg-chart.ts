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
}): string {
  const width = 640;
  const height = 400;
  const margin = { left: 70, right: 150, top: 40, bottom: 50 };
  const all = options.series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const yMax = Math.max(...all.map((p) => p.y), 1e-9) * 1.1;
  const px = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * (width - margin.left - margin.right);
  const py = (y: number) => height - margin.bottom - (y / yMax) * (height - margin.top - margin.bottom);
  const esc = (t: string) => t.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title)}</text>`,
    `<line x1="${margin.left}" y1="${py(0)}" x2="${width - margin.right}" y2="${py(0)}" stroke="black"/>`,
    `<line x1="${margin.left}" y1="${py(0)}" x2="${margin.left}" y2="${margin.top}" stroke="black"/>`,
    `<text x="${(margin.left + width - margin.right) / 2}" y="${height - 12}" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text x="16" y="${height / 2}" text-anchor="middle" transform="rotate(-90 16 ${height / 2})">${esc(options.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const y = (yMax / 5) * i;
    parts.push(
      `<text x="${margin.left - 6}" y="${py(y) + 4}" text-anchor="end">${y >= 10 ? y.toFixed(0) : y.toFixed(2)}</text>`,
    );
    parts.push(
      `<line x1="${margin.left}" y1="${py(y)}" x2="${width - margin.right}" y2="${py(y)}" stroke="#ddd"/>`,
    );
  }
  const ticks = options.xTicks ?? [...new Set(xs)].map((x) => ({ x, label: String(x) }));
  for (const t of ticks)
    parts.push(`<text x="${px(t.x)}" y="${py(0) + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  options.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const points = [...s.points].sort((a, b) => a.x - b.x);
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
