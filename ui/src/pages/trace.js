// Trace: the waterfall of one action_id across services, and its events in time order.
import { getJSON, url } from "../api.js";
import { PALETTE } from "../chart.js";
import { h, fill, duration, table, time } from "../dom.js";
import { panel } from "../panel.js";
import { link } from "../state.js";

export const title = "Trace";

export function mount(root, ctx0) {
  const input = h("input", { type: "search", name: "action_id", placeholder: "action_id", size: 36, "aria-label": "action id" });
  const form = h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) location.hash = link("trace", input.value.trim()); } },
    "Trace of ", input, h("button", { type: "submit" }, "Open"));
  const waterfall = panel("waterfall", "Waterfall by service", { wide: true });
  const events = panel("trace-events", "Events of the action", { wide: true });
  root.append(form, h("div", { class: "panels" }, waterfall.el, events.el));

  async function refresh(ctx) {
    const id = ctx.route.arg;
    input.value = id;
    if (!id) {
      waterfall.empty("Give an action_id, or click an event on the Logs page.");
      events.empty("No action chosen.");
      return;
    }
    let body;
    const source = url(`/trace/${encodeURIComponent(id)}`, { limit: 2000 });
    try {
      body = await getJSON(source, null, ctx.signal);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      if (err.status === 404) {
        waterfall.empty(`The store holds no event of action ${id}.`, source);
        events.empty("Nothing to show.", source);
      } else {
        waterfall.error(err);
        events.error(err);
      }
      return;
    }
    const t0 = Math.min(...body.spans.map((s) => Date.parse(s.first_ts)));
    const t1 = Math.max(...body.spans.map((s) => Date.parse(s.last_ts)));
    const total = Math.max(t1 - t0, 1);
    const colors = Object.fromEntries(body.spans.map((s, i) => [s.service, PALETTE[i % PALETTE.length]]));
    waterfall.el.dataset.spans = JSON.stringify(body.spans.map((s) => ({ service: s.service, events: s.events, duration_ms: s.duration_ms })));
    fill(waterfall.content,
      h("p", { class: "note" }, `${body.events.length} events over ${duration(t1 - t0)}, starting ${time(t0, true)} UTC`,
        body.truncated ? " (truncated: only the first events are listed)" : ""),
      h("div", { class: "waterfall" }, body.spans.map((s) => {
        const left = ((Date.parse(s.first_ts) - t0) / total) * 100;
        const width = Math.max(((Date.parse(s.last_ts) - Date.parse(s.first_ts)) / total) * 100, 0.4);
        const marks = body.events.filter((e) => e.service === s.service).map((e) =>
          h("span", { class: `mark ${e.level === "error" || e.outcome === "failure" ? "err" : ""}`, title: `${time(e.ts, true)} ${e.event_type || e.operation}`,
            style: { left: `${((Date.parse(e.ts) - t0) / total) * 100}%` } }));
        return h("div", { class: "wf-row", dataset: { service: s.service } },
          h("div", { class: "wf-label" }, s.service, s.errors ? h("span", { class: "lvl error" }, `${s.errors} err`) : null),
          h("div", { class: "wf-track" },
            h("div", { class: "wf-bar", style: { left: `${left}%`, width: `${width}%`, background: colors[s.service] } }),
            marks),
          h("div", { class: "wf-dur" }, `${duration(s.duration_ms)} · ${s.events} ev`));
      })));
    waterfall.ready(source);
    fill(events.content, table([
      { label: "+ms", value: (e) => String(Date.parse(e.ts) - t0), class: "n" },
      { label: "service", value: (e) => h("span", { class: "svc", style: { borderColor: colors[e.service] } }, e.service) },
      { label: "host", value: (e) => e.host },
      { label: "level", value: (e) => e.level ? h("span", { class: `lvl ${e.level}` }, e.level) : "" },
      { label: "what", value: (e) => e.kind === "business" ? `${e.operation}${e.outcome ? " · " + e.outcome : ""}` : e.event_type },
      { label: "duration", value: (e) => duration(e.duration_ms), class: "n" },
      { label: "message / detail", value: (e) => e.message || [e.provider, e.amount !== null ? e.amount : null, e.error_code].filter((x) => x !== null && x !== "").join(" · "), class: "msg" },
    ], body.events, (e, tr) => { tr.dataset.eventId = e.event_id; }));
    events.ready(source);
  }

  input.value = ctx0.route.arg;
  return { refresh, destroy() {}, ownRange: true };
}
