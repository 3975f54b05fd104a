// Time-series charts (uPlot) inside panels. The plotted numbers are also kept in data-series (JSON) so
// that a test, or a person with dev tools, can compare them with the API's answer.
import uPlot from "uplot";
import { h } from "./dom.js";
import { panel } from "./panel.js";

const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export const PALETTE = ["#2f7ed8", "#e4572e", "#29a36a", "#f3a712", "#8e44ad", "#17becf", "#d62783", "#7f7f7f",
  "#bcbd22", "#1f3a93", "#a0522d", "#2e8b57"];

/**
 * A panel with a time chart. ``update(times, series, source)``: ``times`` epoch ms, ``series`` a map
 * label → values (null for gaps). Series may change between updates (e.g. hosts appearing).
 */
export function timeChart(id, title, opts = {}) {
  const p = panel(id, title, { ...opts, class: "chart-panel" });
  const holder = h("div", { class: "chart" });
  p.content.append(holder);
  let plot = null;
  let labels = [];

  const resize = new ResizeObserver(() => {
    if (plot && holder.clientWidth) plot.setSize({ width: holder.clientWidth, height: opts.height || 220 });
  });
  resize.observe(holder);

  function build(times, series) {
    if (plot) plot.destroy();
    labels = Object.keys(series);
    const config = {
      width: Math.max(holder.clientWidth, 300),
      height: opts.height || 220,
      scales: { x: { time: true } },
      axes: [{}, { values: (_u, ticks) => ticks.map((v) => (opts.unit ? `${COMPACT.format(v)} ${opts.unit}` : COMPACT.format(v))), size: 64 }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      series: [{}, ...labels.map((label, i) => ({
        label,
        stroke: (opts.colors && opts.colors[label]) || PALETTE[i % PALETTE.length],
        width: 1.5,
        fill: opts.fill || opts.bars ? ((opts.colors && opts.colors[label]) || PALETTE[i % PALETTE.length]) + (opts.bars ? "aa" : "22") : undefined,
        paths: opts.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
        points: { show: times.length < 60 },
        spanGaps: false,
      }))],
    };
    plot = new uPlot(config, [times.map((t) => t / 1000), ...labels.map((l) => series[l])], holder);
  }

  return {
    ...p,
    update(times, series, source) {
      const data = { t: times.map((t) => new Date(t).toISOString()), ...series };
      p.el.dataset.series = JSON.stringify(data);
      const hasPoints = times.length > 0 && Object.values(series).some((v) => v.some((x) => x !== null && x !== 0));
      if (!hasPoints && !opts.showZeros) {
        p.empty(opts.emptyText, source);
        return;
      }
      p.ready(source);
      const same = plot && labels.length === Object.keys(series).length && labels.every((l) => l in series);
      if (same) plot.setData([times.map((t) => t / 1000), ...labels.map((l) => series[l])]);
      else build(times, series);
    },
    destroy() {
      resize.disconnect();
      if (plot) plot.destroy();
    },
  };
}

/** Rows (with a time column ``key``) grouped into one series per ``by`` value of ``field``: {times, series}. */
export function pivot(rows, key, by, field) {
  const times = [...new Set(rows.map((r) => Date.parse(r[key])))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const series = {};
  for (const row of rows) {
    const name = row[by];
    if (!(name in series)) series[name] = new Array(times.length).fill(null);
    series[name][index.get(Date.parse(row[key]))] = row[field];
  }
  const sorted = Object.fromEntries(Object.keys(series).sort().map((k) => [k, series[k]]));
  return { times, series: sorted };
}
