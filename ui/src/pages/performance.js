// Performance: latency percentiles by operation (or log event type) and service; CPU/RAM per host beside active users.
import { getJSON, url } from "../api.js";
import { pivot, timeChart } from "../chart.js";
import { h, fill, num, duration, table, time } from "../dom.js";
import { panel } from "../panel.js";
import { intervalFor, setParams } from "../state.js";

export const title = "Performance";
const QUANTILES = ["p50", "p90", "p95", "p99"];

export function mount(root, ctx0) {
  const by = h("select", { "aria-label": "latency of", onchange: () => setParams({ by: by.value }) },
    h("option", { value: "operation" }, "business operations"), h("option", { value: "event_type" }, "log event types"));
  const q = h("select", { "aria-label": "percentile", onchange: () => setParams({ q: q.value }) }, QUANTILES.map((x) => h("option", { value: x }, x)));
  const service = h("input", { type: "search", placeholder: "service (all)", "aria-label": "service", size: 12,
    onchange: () => setParams({ service: service.value.trim() }) });
  const latency = timeChart("latency", "Latency percentile", { wide: true, unit: "ms", height: 260 });
  const latest = panel("latency-table", "Latency in the latest interval", { wide: true });
  const cpu = timeChart("cpu", "CPU % per host (average)", { unit: "%" });
  const mem = timeChart("mem", "RAM % per host (average)", { unit: "%" });
  const active = timeChart("active-users", "Active users per interval", { colors: { "active users": "#8e44ad" } });
  root.append(h("div", { class: "toolbar" }, "Latency of ", by, " percentile ", q, " ", service),
    h("div", { class: "panels" }, latency.el, latest.el, cpu.el, mem.el, active.el));
  sync(ctx0.params);

  function sync(params) {
    by.value = params.get("by") || "operation";
    q.value = QUANTILES.includes(params.get("q")) ? params.get("q") : "p95";
    service.value = params.get("service") || "";
  }

  async function refresh(ctx) {
    sync(ctx.params);
    const interval = intervalFor(ctx.params, ctx.range, ["1m", "5m", "15m", "1h", "3h", "1d"], 60);
    const dq = { start: ctx.range.start, end: ctx.range.end, interval, by: by.value, service: service.value.trim() };
    const rq = { start: ctx.range.start, end: ctx.range.end, interval, group: "host" };
    const quantile = q.value;
    await Promise.all([
      getJSON("/perf/durations", dq, ctx.signal).then((body) => {
        const rows = body.durations.map((r) => ({ ...r, series: `${r.service}/${r.name}` }));
        const { times, series } = pivot(rows, "bucket", "series", `${quantile}_ms`);
        latency.update(times, series, url("/perf/durations", dq));
        showLatest(rows, url("/perf/durations", dq));
      }).catch((err) => {
        if (err.name === "AbortError") throw err;
        latency.error(err);
        latest.error(err);
      }),
      getJSON("/perf/resources", rq, ctx.signal).then((body) => {
        const source = url("/perf/resources", rq);
        const c = pivot(body.resources, "bucket", "host", "cpu_avg");
        cpu.update(c.times, c.series, source);
        const m = pivot(body.resources, "bucket", "host", "mem_avg");
        mem.update(m.times, m.series, source);
        active.update(body.active_users.map((r) => Date.parse(r.bucket)), { "active users": body.active_users.map((r) => r.active_users) }, source);
      }).catch((err) => {
        if (err.name === "AbortError") throw err;
        [cpu, mem, active].forEach((p) => p.error(err));
      }),
    ]);
  }

  function showLatest(rows, source) {
    if (!rows.length) return latest.empty("No timed operation in this range.", source);
    const last = rows.reduce((m, r) => (r.bucket > m ? r.bucket : m), "");
    const current = rows.filter((r) => r.bucket === last).sort((a, b) => b.count - a.count);
    latest.el.dataset.bucket = last;
    fill(latest.content, h("p", { class: "note" }, `Interval starting ${time(last)} UTC; percentiles are t-digest estimates.`),
      table([
        { label: "service", value: (r) => r.service },
        { label: by.value === "operation" ? "operation" : "event type", value: (r) => r.name },
        { label: "count", value: (r) => num(r.count), class: "n" },
        { label: "avg", value: (r) => duration(r.avg_ms), class: "n" },
        ...QUANTILES.map((x) => ({ label: x, value: (r) => duration(r[`${x}_ms`]), class: "n" })),
        { label: "max", value: (r) => duration(r.max_ms), class: "n" },
      ], current));
    latest.ready(source);
  }

  return { refresh, destroy() { [latency, cpu, mem, active].forEach((c) => c.destroy()); } };
}
