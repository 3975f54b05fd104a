// Logs: the event search with filters, free text and cursor pages; a click on an event opens its trace.
import { getJSON, url } from "../api.js";
import { h, fill, num, table, time } from "../dom.js";
import { panel } from "../panel.js";
import { link, setParams } from "../state.js";

export const title = "Logs";
const LEVELS = ["debug", "info", "warn", "error"];
const PAGE = 100;

export function mount(root, ctx0) {
  const levelBoxes = Object.fromEntries(LEVELS.map((l) => [l, h("input", { type: "checkbox", value: l, name: "level" })]));
  const levelCounts = Object.fromEntries(LEVELS.map((l) => [l, h("span", { class: "count", dataset: { level: l } })]));
  const text = h("input", { type: "search", name: "text", placeholder: "words in the message", size: 24, "aria-label": "text" });
  const service = h("input", { type: "search", name: "service", placeholder: "service, …", size: 14, "aria-label": "service" });
  const eventType = h("input", { type: "search", name: "event_type", placeholder: "event type, …", size: 14, "aria-label": "event type" });
  const kind = h("select", { name: "kind", "aria-label": "kind" }, h("option", { value: "" }, "logs + business"),
    h("option", { value: "log" }, "logs"), h("option", { value: "business" }, "business"));
  const eventIds = h("span", { class: "chips" });
  const form = h("form", { class: "toolbar filters", onsubmit: (e) => { e.preventDefault(); apply(); } },
    LEVELS.map((l) => h("label", { class: `level-box ${l}` }, levelBoxes[l], ` ${l} `, levelCounts[l])),
    text, service, eventType, kind, h("button", { type: "submit" }, "Search"), eventIds);
  Object.values(levelBoxes).forEach((b) => b.addEventListener("change", apply));
  kind.addEventListener("change", apply);

  const results = panel("events", "Events, newest first", { wide: true });
  const pager = h("div", { class: "pager" });
  results.el.append(pager);
  root.append(form, h("div", { class: "panels" }, results.el));

  let cursors = [null]; // cursor of each page seen; the last one is the page shown
  let lastQuery = "";

  function sync(params) {
    const levels = (params.get("level") || "").split(",").filter(Boolean);
    LEVELS.forEach((l) => { levelBoxes[l].checked = levels.includes(l); });
    text.value = params.get("text") || "";
    service.value = params.get("service") || "";
    eventType.value = params.get("event_type") || "";
    kind.value = params.get("kind") || "";
    const ids = (params.get("event_id") || "").split(",").filter(Boolean);
    fill(eventIds, ids.length ? h("span", { class: "chip" }, `${ids.length} event id(s) from an alert `,
      h("button", { type: "button", title: "clear", onclick: () => setParams({ event_id: null }) }, "×")) : null);
  }

  function apply() {
    setParams({
      level: LEVELS.filter((l) => levelBoxes[l].checked).join(","),
      text: text.value.trim(), service: service.value.trim(), event_type: eventType.value.trim(), kind: kind.value,
    });
  }

  function query(ctx) {
    const p = ctx.params;
    return {
      start: ctx.range.start, end: ctx.range.end, limit: PAGE,
      level: p.get("level") || "", text: p.get("text") || "", service: p.get("service") || "",
      event_type: p.get("event_type") || "", kind: p.get("kind") || "", event_id: p.get("event_id") || "",
    };
  }

  async function refresh(ctx) {
    sync(ctx.params);
    const q = query(ctx);
    const filters = JSON.stringify({ ...q, start: ctx.range.live ? ctx.params.get("range") : q.start, end: ctx.range.live ? "" : q.end });
    if (filters !== lastQuery) cursors = [null];
    else if (cursors.length > 1 && ctx.auto) return; // browsing older pages: auto-refresh leaves them alone
    lastQuery = filters;
    await load(ctx, q);
  }

  async function load(ctx, q) {
    const cursor = cursors[cursors.length - 1];
    const full = { ...q, cursor };
    let body;
    try {
      body = await getJSON("/events", full, ctx.signal);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      results.error(err);
      return;
    }
    const source = url("/events", full);
    for (const l of LEVELS) {
      const c = (body.counts || []).find((x) => x.level === l);
      fill(levelCounts[l], c ? num(c.events) : "0");
    }
    results.el.dataset.count = String(body.events.length);
    fill(pager,
      h("button", { type: "button", disabled: cursors.length < 2, onclick: () => { cursors.pop(); load(ctx, q); } }, "← Newer"),
      h("span", null, ` page ${cursors.length} `),
      h("button", { type: "button", disabled: !body.next_cursor, class: "older", onclick: () => { cursors.push(body.next_cursor); load(ctx, q); } }, "Older →"));
    if (!body.events.length) return results.empty("No event matches these filters in this range.", source);
    fill(results.content, table([
      { label: "time (UTC)", value: (e) => time(e.ts, true), class: "ts" },
      { label: "level", value: (e) => e.level ? h("span", { class: `lvl ${e.level}` }, e.level) : "" },
      { label: "service", value: (e) => e.service },
      { label: "type", value: (e) => e.kind === "business" ? `${e.operation}${e.outcome ? " · " + e.outcome : ""}` : e.event_type },
      { label: "message", value: (e) => e.kind === "business" ? businessText(e) : e.message, class: "msg" },
      { label: "trace", value: (e) => e.action_id ? h("a", { href: link("trace", e.action_id), class: "trace-link" }, e.action_id) : "" },
    ], body.events, (e, tr) => {
      tr.dataset.eventId = e.event_id;
      if (e.action_id) {
        tr.dataset.actionId = e.action_id;
        tr.classList.add("clickable");
        tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "A") location.hash = link("trace", e.action_id); });
      }
    }));
    results.ready(source);
  }

  sync(ctx0.params);
  return { refresh, destroy() {} };
}

function businessText(e) {
  const parts = [`user ${e.user_id}`];
  if (e.page) parts.push(`page ${e.page}`);
  if (e.amount !== null && e.amount !== undefined) parts.push(`${num(e.amount)} ${e.currency || ""}`);
  if (e.provider) parts.push(`provider ${e.provider}${e.attempt ? " attempt " + e.attempt : ""}`);
  if (e.error_code) parts.push(e.error_code);
  return parts.join(" · ");
}
