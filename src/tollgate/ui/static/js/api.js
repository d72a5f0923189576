// The admin API client: JSON in and out, the session cookie as the credential, and the
// session's CSRF token on every write. Errors become ApiError with the server's message.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// The gateway's path prefix (SERVER_ROOT_PATH; "" at the root). This module is served at
// <prefix>/ui/static/js/api.js, so the prefix is whatever comes before that.
export const ROOT = new URL("../../../", import.meta.url).pathname.replace(/\/$/, "");

// A gateway path ("/ui/keys", "/key/list") as the browser reaches it.
export const at = path => ROOT + path;

const state = { csrf: "" };

export function setCsrf(token) {
  state.csrf = token || "";
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

export async function request(method, path, { params, body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD" && !init.headers["x-csrf-token"]) init.headers["x-csrf-token"] = state.csrf;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(at(path) + query(params), init);
  if (raw) return response;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.error?.message || data?.detail || `${response.status} ${response.statusText}`;
    if (response.status === 401 && path !== "/ui/auth/login") window.dispatchEvent(new Event("tollgate:signed-out"));
    throw new ApiError(typeof message === "string" ? message : JSON.stringify(message), response.status);
  }
  return data;
}

export const get = (path, params) => request("GET", path, { params });
export const post = (path, body) => request("POST", path, { body: body ?? {} });
