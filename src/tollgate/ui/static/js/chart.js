// A small SVG chart: daily values stacked per series (spend per key, team, user or model).
// Colours are SVG presentation attributes, not style attributes, so the page's strict CSP holds.

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
export const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#7f7f7f"];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// series: [{ label, daily: number[] }], days: ["YYYY-MM-DD", ...]
export function stackedBars(days, series, { format = String, title = "Chart" } = {}) {
  const width = 720, height = 240, left = 64, bottom = 28, top = 12, right = 8;
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + (s.daily[i] || 0), 0));
  const max = Math.max(...totals, 0);
  const plotW = width - left - right, plotH = height - top - bottom;
  const step = plotW / Math.max(days.length, 1);
  const barW = Math.max(1, step * 0.8);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": `${title}: ${days.length} days, highest day ${format(max)}` });
  chart.append(svg("line", { x1: left, y1: top + plotH, x2: width - right, y2: top + plotH, stroke: "#888" }));
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH - fraction * plotH;
    chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format(max * fraction)));
    if (fraction) chart.append(svg("line", { x1: left, y1: y, x2: width - right, y2: y, stroke: "#ddd" }));
  }
  days.forEach((d, i) => {
    let y = top + plotH;
    const x = left + i * step + (step - barW) / 2;
    series.forEach((s, k) => {
      const value = s.daily[i] || 0;
      if (!value || !max) return;
      const barH = (value / max) * plotH;
      y -= barH;
      chart.append(svg("rect", { x, y, width: barW, height: Math.max(barH, 0.5), fill: COLORS[k % COLORS.length] },
        svg("title", {}, `${d} · ${s.label}: ${format(value)}`)));
    });
  });
  const every = Math.max(1, Math.ceil(days.length / 6));
  days.forEach((d, i) => {
    if (i % every) return;
    chart.append(svg("text", { x: left + i * step + step / 2, y: height - 8, "text-anchor": "middle", class: "axis" },
      d.slice(5)));
  });
  const legend = h("ul", { class: "legend" }, series.map((s, k) =>
    h("li", {}, swatch(COLORS[k % COLORS.length]), s.label)));
  return h("figure", { class: "chart-box" }, chart, legend);
}

function swatch(color) {
  const box = svg("svg", { viewBox: "0 0 10 10", width: 10, height: 10, "aria-hidden": "true" });
  box.append(svg("rect", { width: 10, height: 10, fill: color }));
  return box;
}
