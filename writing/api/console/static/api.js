// The API client: the admin key (sessionStorage), JSON with exact 64-bit ids, the error shape.
// Importable anywhere (node's tests included): nothing here touches the browser until it is called.

const KEY_STORAGE = "writing.console.adminKey";

// -- the admin key: sessionStorage only (never a cookie, never localStorage) --------------------------
export function getKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE) || "";
  } catch (_e) {
    return "";
  }
}

export function setKey(key) {
  try {
    if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
    else window.sessionStorage.removeItem(KEY_STORAGE);
  } catch (_e) {
    /* storage disabled: the key lasts until the page is left */
  }
}

// -- JSON with exact 64-bit ids -----------------------------------------------------------------------
// Passage and answer ids go up to 2^63: JSON.parse would round them. Integer literals longer than 15
// digits are turned into strings before parsing (outside string literals only).
export function parseJSON(text) {
  let out = "";
  let i = 0;
  let last = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // a string literal: skip it whole, escapes included
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 92) i += 2;
        else if (d === 34) {
          i++;
          break;
        } else i++;
      }
      continue;
    }
    if (c === 45 || (c >= 48 && c <= 57)) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) i++;
        else break;
      }
      const lit = text.slice(start, i);
      if (/^-?\d{16,}$/.test(lit) && !Number.isSafeInteger(Number(lit))) {
        out += text.slice(last, start) + '"' + lit + '"';
        last = i;
      }
      continue;
    }
    i++;
  }
  return JSON.parse(last === 0 ? text : out + text.slice(last));
}

// -- the API client -----------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = detail && detail.type;
    this.code = detail && detail.code;
    this.param = detail && detail.param;
  }
}

const AUTH_HINT = "需要管理密钥：请在页面顶部的“管理密钥 (ADMIN_API_KEYS)”中填写管理员密钥并保存，然后重试。";

/**
 * Calls the API. options: query (object; empty values are left out), body (object: JSON; string: sent
 * as is with contentType), headers, raw (return {data, headers, status}). Throws ApiError with the
 * server's error.message.
 */
export async function api(method, path, options = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(options.query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = new Headers(options.headers || {});
  const key = getKey();
  if (key) headers.set("Authorization", "Bearer " + key);
  headers.set("Accept", "application/json");
  let body;
  if (options.body !== undefined) {
    if (typeof options.body === "string") {
      body = options.body;
      headers.set("Content-Type", options.contentType || "text/plain; charset=utf-8");
    } else {
      body = JSON.stringify(options.body);
      headers.set("Content-Type", "application/json");
    }
  }
  let resp;
  try {
    // no cache mode: "no-store"/"reload" would add Cache-Control: no-cache, which the service reads as
    // "do not look up" (a BYPASS); the API sends nothing a browser would cache
    resp = await fetch(url.toString(), { method, headers, body, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "无法连接服务：" + (e && e.message ? e.message : String(e)));
  }
  let text = "";
  try {
    text = await resp.text();
  } catch (e) {
    throw new ApiError(resp.status, "读取响应失败：" + (e && e.message ? e.message : String(e)));
  }
  let data = null;
  if (text) {
    try {
      data = parseJSON(text);
    } catch (_e) {
      data = text;
    }
  }
  if (!resp.ok) {
    const err = data && typeof data === "object" && data.error ? data.error : {};
    let message = typeof err.message === "string" && err.message ? err.message : `HTTP ${resp.status}`;
    if (resp.status === 401 || resp.status === 403) message = AUTH_HINT + "（" + message + "）";
    else if (resp.status === 404 && !err.message) message = `接口不存在：${method} ${url.pathname}（HTTP 404）`;
    throw new ApiError(resp.status, message, err);
  }
  return options.raw ? { data, headers: resp.headers, status: resp.status } : data;
}
