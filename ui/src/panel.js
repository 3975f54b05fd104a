// A panel: title, content, and its state for people and tests (data-state: loading | ready | empty | error).
import { h, fill } from "./dom.js";

/**
 * A panel named ``id`` (data-panel). ``content`` is the element that shows data; ``message`` replaces it
 * while loading, when the range holds nothing, or when the API failed.
 */
export function panel(id, title, opts = {}) {
  const content = h("div", { class: "panel-content" });
  const message = h("div", { class: "panel-message" }, "Loading…");
  const tools = h("div", { class: "panel-tools" });
  const el = h("section", { class: `panel ${opts.wide ? "wide" : ""} ${opts.class || ""}`, dataset: { panel: id, state: "loading" } },
    h("header", null, h("h2", null, title), tools),
    opts.note ? h("p", { class: "note" }, opts.note) : null,
    message, content);
  return {
    el, content, tools,
    /** Mark the panel loaded with data from ``source`` (the API URL, for tests and curious users). */
    ready(source) {
      el.dataset.state = "ready";
      if (source) el.dataset.source = source;
      message.hidden = true;
      content.hidden = false;
    },
    /** Nothing to show in this range. */
    empty(text, source) {
      el.dataset.state = "empty";
      if (source) el.dataset.source = source;
      fill(message, text || "No data in this range.");
      message.className = "panel-message empty";
      message.hidden = false;
      content.hidden = true;
    },
    /** The API failed: say why; keep what was shown before hidden. */
    error(err) {
      el.dataset.state = "error";
      const status = err && err.status ? ` (HTTP ${err.status})` : "";
      fill(message, h("strong", null, "Could not load"), `${status}: ${(err && err.message) || err}`);
      message.className = "panel-message error";
      message.hidden = false;
      content.hidden = true;
    },
  };
}

/** A small number tile: label, value, optional detail; data-value holds the raw number. */
export function stat(id, label) {
  const value = h("div", { class: "stat-value" }, "–");
  const detail = h("div", { class: "stat-detail" });
  const el = h("div", { class: "stat", dataset: { stat: id, state: "loading" } }, h("div", { class: "stat-label" }, label), value, detail);
  return {
    el,
    set(raw, text, note, tone) {
      el.dataset.state = "ready";
      el.dataset.value = raw === null || raw === undefined ? "" : String(raw);
      el.className = `stat ${tone || ""}`;
      fill(value, text);
      fill(detail, note || "");
    },
    error(err) {
      el.dataset.state = "error";
      el.className = "stat bad";
      fill(value, "error");
      fill(detail, (err && err.message) || String(err));
    },
  };
}
