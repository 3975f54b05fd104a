// Alerts: what fires now, the history of the range, and one alert's rule, key, evidence and triggering events.
import { getJSON, url } from "../api.js";
import { h, fill, table, time } from "../dom.js";
import { panel } from "../panel.js";
import { link } from "../state.js";

export const title = "Alerts";

export function mount(root) {
  const firing = panel("alerts-firing", "Firing now", { wide: true });
  const detail = panel("alert-detail", "Alert", { wide: true });
  const history = panel("alerts-history", "History (alerts overlapping the range, newest first)", { wide: true });
  const more = h("div", { class: "pager" });
  history.el.append(more);
  root.append(h("div", { class: "panels" }, firing.el, detail.el, history.el));
  let seen = new Map();

  const columns = [
    { label: "severity", value: (a) => h("span", { class: `sev ${a.severity}` }, a.severity) },
    { label: "status", value: (a) => h("span", { class: `status ${a.status}` }, a.status) },
    { label: "rule", value: (a) => a.rule },
    { label: "key", value: (a) => a.key },
    { label: "start (UTC)", value: (a) => time(a.ts_start) },
    { label: "end (UTC)", value: (a) => time(a.ts_end) },
    { label: "evidence", value: (a) => summary(a.evidence), class: "msg" },
  ];
  const decorate = (a, tr) => {
    tr.dataset.alertId = a.id;
    tr.classList.add("clickable");
    tr.addEventListener("click", () => { location.hash = link("alerts", a.id); });
  };

  async function refresh(ctx) {
    const base = { start: ctx.range.start, end: ctx.range.end };
    const fq = { ...base, status: "firing", limit: 200 };
    const hq = { ...base, limit: 200 };
    let live;
    let past;
    try {
      [live, past] = await Promise.all([getJSON("/anomalies", fq, ctx.signal), getJSON("/anomalies", hq, ctx.signal)]);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      [firing, history, detail].forEach((p) => p.error(err));
      return;
    }
    seen = new Map([...past.alerts, ...live.alerts].map((a) => [a.id, a]));
    firing.el.dataset.count = String(live.alerts.length);
    if (live.alerts.length) {
      fill(firing.content, table(columns, live.alerts, decorate));
      firing.ready(url("/anomalies", fq));
    } else firing.empty("No alert is firing in this range.", url("/anomalies", fq));
    history.el.dataset.count = String(past.alerts.length);
    fill(more, past.next_cursor ? h("span", { class: "note" }, "Showing the newest 200; narrow the range to see older ones.") : null);
    if (past.alerts.length) {
      fill(history.content, table(columns, past.alerts, decorate));
      history.ready(url("/anomalies", hq));
    } else history.empty("No alert in this range.", url("/anomalies", hq));
    showDetail(ctx.route.arg);
  }

  function showDetail(id) {
    if (!id) return detail.empty("Click an alert to see its evidence and the events that triggered it.");
    const a = seen.get(id);
    if (!a) return detail.empty(`Alert ${id} is not in the selected range; widen it.`);
    const evidence = parse(a.evidence);
    const ids = sampleIds(evidence, "event_id");
    const actions = sampleIds(evidence, "action_id");
    // the alert's own window on the Logs page: a minute either side, or (the sample events may predate the
    // window that fired) an hour before it when the evidence names events
    const before = ids.length ? 3600e3 : 60e3;
    const window = { start: new Date(Date.parse(a.ts_start) - before).toISOString(), end: new Date(Date.parse(a.ts_end) + 60e3).toISOString() };
    const logsLink = link("logs", "", { range: null, ...window, event_id: ids.join(","), level: ids.length ? null : "warn,error" });
    fill(detail.content,
      h("dl", { class: "facts" },
        h("dt", null, "rule"), h("dd", null, a.rule),
        h("dt", null, "key"), h("dd", null, a.key),
        h("dt", null, "severity"), h("dd", null, h("span", { class: `sev ${a.severity}` }, a.severity)),
        h("dt", null, "status"), h("dd", null, a.status),
        h("dt", null, "window (UTC)"), h("dd", null, `${time(a.ts_start, true)} → ${time(a.ts_end, true)}`),
        h("dt", null, "updated"), h("dd", null, time(a.updated_at, true)),
        h("dt", null, "id"), h("dd", null, h("code", null, a.id))),
      h("p", null, h("a", { href: logsLink, class: "events-link" },
        ids.length ? `Open the ${ids.length} events that triggered it` : "Open the warnings and errors of its window"),
        actions.length ? [" · traces: ", actions.slice(0, 10).map((x, i) => [i ? ", " : "", h("a", { href: link("trace", x) }, x)])] : null),
      h("h3", null, "Evidence"),
      h("pre", { class: "evidence" }, typeof evidence === "string" ? evidence : JSON.stringify(evidence, null, 2)));
    detail.el.dataset.alertId = a.id;
    detail.ready();
  }

  return { refresh, destroy() {} };
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Ids named like ``field`` anywhere in the evidence: "sample_event_ids": [...], "events": [{"event_id": …}], … */
export function sampleIds(evidence, field) {
  const out = new Set();
  const plural = new RegExp(`(^|_)${field.replace("_id", "")}(_id)?s?$|^${field}s$|^sample_${field}s$`);
  (function walk(value, key) {
    if (out.size >= 500 || value === null || value === undefined) return;
    if (Array.isArray(value)) {
      value.forEach((v) => (typeof v === "string" && key && plural.test(key) ? out.add(v) : walk(v, key)));
    } else if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) {
        if (k === field && typeof v === "string") out.add(v);
        else walk(v, k);
      }
    }
  })(evidence, "");
  return [...out];
}

function summary(text) {
  const ev = parse(text);
  if (!ev || typeof ev !== "object") return String(text || "");
  return Object.entries(ev).filter(([, v]) => typeof v !== "object").slice(0, 4).map(([k, v]) => `${k}: ${v}`).join(", ");
}
