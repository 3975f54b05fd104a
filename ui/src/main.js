// The dashboard shell: navigation, the shared time range / interval / auto-refresh, sign-in, and the router.
import "./style.css";
import { getJSON, onUnauthorized, postJSON } from "./api.js";
import { h, fill, time } from "./dom.js";
import { INTERVALS, PRESETS, link, route, setParams, timeRange } from "./state.js";
import * as overview from "./pages/overview.js";
import * as business from "./pages/business.js";
import * as performance from "./pages/performance.js";
import * as logs from "./pages/logs.js";
import * as trace from "./pages/trace.js";
import * as alerts from "./pages/alerts.js";

const PAGES = { overview, business, performance, logs, trace, alerts };
const REFRESH = [5, 10, 30, 60];

const app = document.getElementById("app");
const nav = h("nav", null, Object.entries(PAGES).map(([name, page]) => h("a", { href: `#/${name}`, dataset: { page: name } }, page.title)));
const rangeSelect = h("select", { "aria-label": "time range", name: "range" },
  PRESETS.map(([value, label]) => h("option", { value }, label)), h("option", { value: "custom" }, "Custom…"));
const startInput = h("input", { type: "datetime-local", step: 1, "aria-label": "start (UTC)", name: "start" });
const endInput = h("input", { type: "datetime-local", step: 1, "aria-label": "end (UTC)", name: "end" });
const custom = h("span", { class: "custom-range" }, startInput, " → ", endInput, " UTC ",
  h("button", { type: "button", onclick: applyCustom }, "Apply"));
const intervalSelect = h("select", { "aria-label": "interval", name: "interval" },
  h("option", { value: "auto" }, "auto"), INTERVALS.map(([value]) => h("option", { value }, value)));
const refreshSelect = h("select", { "aria-label": "refresh every", name: "refresh" }, REFRESH.map((s) => h("option", { value: s }, `${s} s`)));
const pauseButton = h("button", { type: "button", class: "pause", onclick: togglePause }, "Pause");
const nowButton = h("button", { type: "button", title: "refresh now", onclick: () => refresh(false) }, "↻");
const status = h("span", { class: "refresh-status", "aria-live": "polite" });
const who = h("span", { class: "who" });
const controls = h("div", { class: "controls" },
  h("label", null, "Range ", rangeSelect), custom, h("label", null, "Interval ", intervalSelect),
  h("label", null, "Refresh ", refreshSelect), pauseButton, nowButton, status);
const main = h("main");
const login = loginForm();
fill(app, h("header", { class: "top" }, h("a", { class: "brand", href: "#/overview" }, "fleetlens"), nav, who), controls, main, login);

let current = null; // {name, arg, view}
let inflight = null;
let timer = null;
let paused = false;

rangeSelect.addEventListener("change", () => {
  if (rangeSelect.value === "custom") {
    const r = timeRange(route().params);
    startInput.value = toLocalInput(r.startMs);
    endInput.value = toLocalInput(r.endMs);
    custom.hidden = false;
  } else setParams({ range: rangeSelect.value, start: null, end: null });
});
intervalSelect.addEventListener("change", () => setParams({ interval: intervalSelect.value === "auto" ? null : intervalSelect.value }));
refreshSelect.addEventListener("change", schedule);

function applyCustom() {
  const s = Date.parse(startInput.value + "Z");
  const e = Date.parse(endInput.value + "Z");
  if (Number.isNaN(s) || Number.isNaN(e) || s >= e) {
    fill(status, "the start must be before the end");
    status.className = "refresh-status bad-text";
    return;
  }
  setParams({ range: null, start: new Date(s).toISOString(), end: new Date(e).toISOString() });
}

function toLocalInput(ms) {
  return new Date(ms).toISOString().slice(0, 19);
}

function togglePause() {
  paused = !paused;
  pauseButton.textContent = paused ? "Resume" : "Pause";
  pauseButton.classList.toggle("on", paused);
  document.body.dataset.paused = paused ? "1" : "";
  schedule();
}

function schedule() {
  clearInterval(timer);
  if (!paused) timer = setInterval(() => refresh(true), Number(refreshSelect.value) * 1000);
}

function syncControls(r) {
  const p = r.params;
  const custom_ = p.get("start") && p.get("end");
  rangeSelect.value = custom_ ? "custom" : (PRESETS.find(([v]) => v === p.get("range")) || PRESETS[1])[0];
  custom.hidden = !custom_;
  if (custom_) {
    startInput.value = toLocalInput(Date.parse(p.get("start")));
    endInput.value = toLocalInput(Date.parse(p.get("end")));
  }
  intervalSelect.value = p.get("interval") || "auto";
  const every = p.get("refresh"); // seconds, e.g. a wall screen's own rate
  if (every && Number(every) > 0 && refreshSelect.value !== every) {
    if (![...refreshSelect.options].some((o) => o.value === every)) refreshSelect.append(h("option", { value: every }, `${every} s`));
    refreshSelect.value = every;
    schedule();
  }
  nav.querySelectorAll("a").forEach((a) => {
    a.classList.toggle("active", a.dataset.page === r.page);
    a.href = link(a.dataset.page, "");
  });
}

function navigate() {
  const r = route();
  const name = PAGES[r.page] ? r.page : "overview";
  syncControls(r);
  if (!current || current.name !== name) {
    if (current) current.view.destroy();
    fill(main);
    const root = h("div", { class: `page page-${name}`, dataset: { page: name } });
    main.append(root);
    document.title = `${PAGES[name].title} · fleetlens`;
    current = { name, view: PAGES[name].mount(root, context(r, false)) };
  }
  refresh(false);
}

function context(r, auto) {
  return { route: r, params: r.params, range: timeRange(r.params), auto, signal: undefined };
}

/** Reload the current page's panels; an auto refresh is skipped while the previous one still runs. */
async function refresh(auto) {
  if (!current || !login.hidden) return;
  if (inflight) {
    if (auto) return;
    inflight.abort();
  }
  const controller = new AbortController();
  inflight = controller;
  const ctx = { ...context(route(), auto), signal: controller.signal };
  const started = performance_now();
  document.body.dataset.loading = "1";
  try {
    await current.view.refresh(ctx);
    if (inflight === controller) {
      fill(status, `updated ${time(Date.now())} UTC · ${Math.round(performance_now() - started)} ms`);
      status.className = "refresh-status";
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    }
  } catch (err) {
    if (err.name !== "AbortError") {
      fill(status, `refresh failed: ${err.message}`);
      status.className = "refresh-status bad-text";
    }
  } finally {
    if (inflight === controller) {
      inflight = null;
      document.body.dataset.loading = "";
    }
  }
}

function performance_now() {
  return window.performance.now();
}

function loginForm() {
  const token = h("input", { type: "password", name: "token", placeholder: "API token", autocomplete: "current-password", size: 40 });
  const error = h("p", { class: "bad-text" });
  const form = h("form", { class: "login-box", onsubmit: async (e) => {
    e.preventDefault();
    fill(error);
    try {
      await postJSON("/auth/login", { token: token.value.trim() });
      token.value = "";
      overlay.hidden = true;
      await whoAmI();
      navigate();
    } catch (err) {
      fill(error, err.status === 401 || err.status === 403 ? "That token is not valid." : err.message);
    }
  } }, h("h2", null, "Sign in to fleetlens"), h("p", null, "Paste an API token (", h("code", null, "fleetlens token create"), ")."),
  token, h("button", { type: "submit" }, "Sign in"), error);
  const overlay = h("div", { class: "login", hidden: true }, form);
  return overlay;
}

async function whoAmI() {
  try {
    const me = await getJSON("/auth/me");
    fill(who, `${me.name || "signed in"} (${me.role}) `, h("button", { type: "button", onclick: logout }, "Sign out"));
    return true;
  } catch (err) {
    if (err.status === 404) { fill(who); return true; } // an API without access control
    if (err.status === 401) return false;
    fill(who, h("span", { class: "bad-text" }, `auth: ${err.message}`));
    return true;
  }
}

async function logout() {
  try {
    await postJSON("/auth/logout", {});
  } finally {
    fill(who);
    login.hidden = false;
  }
}

onUnauthorized(() => {
  login.hidden = false;
  fill(who);
});

window.addEventListener("hashchange", navigate);
(async () => {
  // signed out: ask for a token first instead of firing panel requests that would all answer 401
  if (await whoAmI()) navigate();
  else login.hidden = false;
  schedule();
})();
