// Calls to the fleetlens API: same origin, the session cookie, JSON; errors carry status and message.

export class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

const listeners = new Set();

/** Called with no argument whenever the API answers 401 (the page then asks to sign in). */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

/** ``path`` with query parameters (arrays repeat the parameter; empty values are left out). */
export function url(path, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.set(key, value);
  }
  const query = search.toString();
  return query ? `${path}?${query}` : path;
}

/** GET a JSON endpoint; throws ApiError (status 0: no answer) or an AbortError when ``signal`` aborts. */
export async function getJSON(path, params, signal) {
  return request("GET", url(path, params), undefined, signal);
}

/** POST JSON; resolves to the JSON body or null (204). */
export async function postJSON(path, body) {
  return request("POST", path, body);
}

async function request(method, target, body, signal) {
  let response;
  try {
    response = await fetch(target, {
      method,
      credentials: "same-origin",
      signal,
      headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "the fleetlens API did not answer; is it running?");
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.status === 401) listeners.forEach((fn) => fn());
  if (!response.ok) {
    const message = (data && (data.error || data.detail)) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, typeof message === "string" ? message : JSON.stringify(message), data && data.param);
  }
  return data;
}
