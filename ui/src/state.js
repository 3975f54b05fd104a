// What every panel shares: the route (page, argument, query) in the URL hash, the time range and the interval.

export const PRESETS = [
  ["15m", "Last 15 minutes", 15 * 60e3],
  ["1h", "Last hour", 3600e3],
  ["3h", "Last 3 hours", 3 * 3600e3],
  ["6h", "Last 6 hours", 6 * 3600e3],
  ["24h", "Last 24 hours", 24 * 3600e3],
  ["7d", "Last 7 days", 7 * 86400e3],
];
export const INTERVALS = [
  ["1m", 60], ["5m", 300], ["15m", 900], ["1h", 3600], ["3h", 10800], ["1d", 86400],
];
const GLOBAL = ["range", "start", "end", "interval"];

/** The route in ``location.hash``: {page, arg, params: URLSearchParams}. */
export function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?", 2);
  const [page, ...rest] = path.split("/");
  return { page: page || "overview", arg: rest.length ? decodeURIComponent(rest.join("/")) : "", params: new URLSearchParams(query || "") };
}

/** A hash for ``page`` (and ``arg``) keeping the shared range/interval, with ``extra`` query parameters. */
export function link(page, arg, extra) {
  const current = route().params;
  const params = new URLSearchParams();
  for (const key of GLOBAL) if (current.has(key)) params.set(key, current.get(key));
  for (const [key, value] of Object.entries(extra || {})) {
    params.delete(key);
    if (Array.isArray(value)) value.forEach((v) => params.append(key, v));
    else if (value !== undefined && value !== null && value !== "") params.set(key, value);
  }
  const query = params.toString();
  return `#/${page}${arg ? "/" + encodeURIComponent(arg) : ""}${query ? "?" + query : ""}`;
}

/** Set query parameters of the current route (null removes one) without leaving the page. */
export function setParams(changes) {
  const r = route();
  for (const [key, value] of Object.entries(changes)) {
    r.params.delete(key);
    if (Array.isArray(value)) value.forEach((v) => r.params.append(key, v));
    else if (value !== undefined && value !== null && value !== "") r.params.set(key, value);
  }
  const query = r.params.toString();
  location.hash = `#/${r.page}${r.arg ? "/" + encodeURIComponent(r.arg) : ""}${query ? "?" + query : ""}`;
}

/** The time range the panels query now: {startMs, endMs, start, end (ISO), live (ends now)}. */
export function timeRange(params, nowMs = Date.now()) {
  const start = Date.parse(params.get("start") || "");
  const end = Date.parse(params.get("end") || "");
  if (!Number.isNaN(start) && !Number.isNaN(end) && start < end) {
    return { startMs: start, endMs: end, start: new Date(start).toISOString(), end: new Date(end).toISOString(), live: false };
  }
  const preset = PRESETS.find((p) => p[0] === params.get("range")) || PRESETS[1];
  // whole seconds: every panel of one refresh asks for exactly the same range
  const endMs = Math.ceil(nowMs / 1000) * 1000;
  const startMs = endMs - preset[2];
  return { startMs, endMs, start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString(), live: true, preset: preset[0] };
}

/**
 * The interval an endpoint gets: the one chosen (or the smallest it allows at or above it), or for "auto"
 * the smallest allowed one giving at most ``target`` buckets over the range.
 */
export function intervalFor(params, range, allowed, target = 90) {
  const choices = INTERVALS.filter(([name]) => allowed.includes(name));
  const chosen = INTERVALS.find(([name]) => name === params.get("interval"));
  const spanS = (range.endMs - range.startMs) / 1000;
  if (chosen) {
    // never more than the API's bucket limit would allow (5000 by default)
    const fit = choices.find(([, s]) => s >= chosen[1] && spanS / s <= 5000);
    return (fit || choices[choices.length - 1])[0];
  }
  const fit = choices.find(([, s]) => spanS / s <= target);
  return (fit || choices[choices.length - 1])[0];
}

/** Seconds of an interval name. */
export function intervalSeconds(name) {
  return (INTERVALS.find(([n]) => n === name) || [null, 60])[1];
}
