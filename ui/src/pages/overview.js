// Overview: ingest rate, consumer lag, error rate, active alerts.
import { getJSON, url } from "../api.js";
import { timeChart } from "../chart.js";
import { h, fill, num, pct, table, time } from "../dom.js";
import { panel, stat } from "../panel.js";
import { intervalFor, link } from "../state.js";

export const title = "Overview";

export function mount(root) {
  const stats = {
    rate: stat("ingest-rate", "Ingested now (events/s)"),
    lag: stat("lag", "Consumer lag (messages)"),
    errors: stat("error-rate", "Error rate (logs, range)"),
    alerts: stat("active-alerts", "Active alerts"),
    events: stat("events", "Events in range"),
  };
  const ingested = timeChart("ingested", "Ingested per second", { fill: true });
  const errorRate = timeChart("error-rate-chart", "Error rate (% of log lines at level error)", {
    unit: "%", colors: { "error %": "#e4572e" }, emptyText: "No log lines in this range.",
  });
  const alerts = panel("active-alerts-list", "Firing alerts", { wide: true });
  root.append(h("div", { class: "stats" }, Object.values(stats).map((s) => s.el)),
    h("div", { class: "panels" }, ingested.el, errorRate.el, alerts.el));

  async function refresh(ctx) {
    const interval = intervalFor(ctx.params, ctx.range, ["1m", "5m", "15m", "1h", "3h", "1d"]);
    const ingestQ = { start: ctx.range.start, end: ctx.range.end, interval };
    const alertQ = { start: ctx.range.start, end: ctx.range.end, status: "firing", limit: 100 };
    await Promise.all([
      getJSON("/stats/ingest", ingestQ, ctx.signal).then((body) => {
        const live = body.live;
        stats.rate.set(live.rate_per_s, num(live.rate_per_s), live.source === "worker" ? "from the running ingest worker" : "stored, last minute of event time");
        stats.lag.set(live.lag, live.lag === null ? "unknown" : num(live.lag),
          live.lag === null ? "no ingest worker in this process" : "entries not yet acknowledged", live.lag > 10000 ? "warn" : "");
        stats.errors.set(body.totals.error_rate, pct(body.totals.error_rate), `${num(body.totals.errors)} of ${num(body.totals.logs)} log lines`,
          body.totals.error_rate > 0.05 ? "bad" : "");
        stats.events.set(body.totals.events, num(body.totals.events), `+ ${num(body.totals.metrics)} metric samples`);
        const times = body.buckets.map((b) => Date.parse(b.bucket));
        const per = body.interval_s;
        ingested.update(times, {
          "events/s": body.buckets.map((b) => b.events / per),
          "metric samples/s": body.buckets.map((b) => b.metrics / per),
        }, url("/stats/ingest", ingestQ));
        errorRate.update(times, { "error %": body.buckets.map((b) => (b.logs ? (100 * b.errors) / b.logs : null)) }, url("/stats/ingest", ingestQ));
      }).catch((err) => {
        if (err.name === "AbortError") throw err;
        [stats.rate, stats.lag, stats.errors, stats.events].forEach((s) => s.error(err));
        ingested.error(err);
        errorRate.error(err);
      }),
      getJSON("/anomalies", alertQ, ctx.signal).then((body) => {
        const firing = body.alerts;
        stats.alerts.set(firing.length, num(firing.length) + (body.next_cursor ? "+" : ""), firing.length ? "see Alerts" : "all quiet",
          firing.length ? "bad" : "good");
        if (!firing.length) return alerts.empty("No alert is firing in this range.", url("/anomalies", alertQ));
        fill(alerts.content, table([
          { label: "severity", value: (a) => h("span", { class: `sev ${a.severity}` }, a.severity) },
          { label: "rule", value: (a) => a.rule },
          { label: "key", value: (a) => a.key },
          { label: "since", value: (a) => time(a.ts_start) },
          { label: "", value: (a) => h("a", { href: link("alerts", a.id) }, "details") },
        ], firing, (a, tr) => { tr.dataset.alertId = a.id; }));
        alerts.ready(url("/anomalies", alertQ));
      }).catch((err) => {
        if (err.name === "AbortError") throw err;
        stats.alerts.error(err);
        alerts.error(err);
      }),
    ]);
  }

  return { refresh, destroy() { ingested.destroy(); errorRate.destroy(); } };
}
