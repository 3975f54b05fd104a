// Small DOM and formatting helpers shared by the pages.

/** Create an element: h("div", {class: "x", onclick: f, dataset: {a: 1}, style: {left: "2%"}}, child, "text", [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    // CSSOM, not a style attribute: the API's Content-Security-Policy (style-src 'self') forbids inline styles
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && key !== "list" && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the children of ``el``. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const NUM = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const INT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** A number for people: grouped thousands, at most 2 decimals; "–" for null. */
export function num(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (digits !== undefined) return Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return Number.isInteger(value) ? INT.format(value) : NUM.format(value);
}

/** A percentage of a 0..1 ratio. */
export function pct(ratio) {
  return ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(2)} %`;
}

/** ``2026-11-22 10:15:00.123`` (UTC) of an ISO string or epoch ms. */
export function time(value, withMs = false) {
  if (value === null || value === undefined) return "–";
  const iso = new Date(value).toISOString();
  return iso.slice(0, 10) + " " + iso.slice(11, withMs ? 23 : 19);
}

/** Milliseconds as "12 ms", "1.2 s". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${num(Math.round(ms * 10) / 10)} ms`;
}

/** A table: columns [{label, value(row), class?}], rows; onRow(row, tr) decorates each row. */
export function table(columns, rows, onRow) {
  const head = h("tr", null, columns.map((c) => h("th", { class: c.class }, c.label)));
  const body = rows.map((row) => {
    const tr = h("tr", null, columns.map((c) => h("td", { class: c.class }, c.value(row))));
    if (onRow) onRow(row, tr);
    return tr;
  });
  return h("table", { class: "grid" }, h("thead", null, head), h("tbody", null, body));
}
