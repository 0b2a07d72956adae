// The web console (served at /console): one script, no build step, no framework, no library.
// Sections: shared helpers (API client, DOM building, formatting), SVG charts, then one block per page
// (试验台 playground, 语料 corpus, 已存答案 answers, 反馈 feedback, 统计 stats, 校准 calibration) and the
// entry (admin key form, hash routing). Every value shown is untrusted text: the DOM is built with
// createElement and textContent only, never innerHTML. The CSP allows no inline script or style.
// One file on purpose: every extra request costs more than the bytes it saves on a loaded server.
(() => {
  "use strict";

  // ==== shared helpers: the API client (admin key, error shape, exact int64 ids), DOM building, the status area, formatting ===
  // Shared helpers of the console: the API client (admin key, error shape, exact int64 ids), DOM
  // building (createElement + textContent only: every value shown is untrusted text), the status area
  // and formatting. No innerHTML anywhere.

  const KEY_STORAGE = "writing.console.adminKey";

  // -- the admin key: sessionStorage only (never a cookie, never localStorage) ---------------------------
  function getKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (_e) {
      return "";
    }
  }

  function setKey(key) {
    try {
      if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
      else window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (_e) {
      /* storage disabled: the key lasts until the page is left */
    }
  }

  // -- JSON with exact 64-bit ids ----------------------------------------------------------------------
  // Passage and answer ids go up to 2^63: JSON.parse would round them. Integer literals longer than 15
  // digits are turned into strings before parsing (outside string literals only).
  function parseJSON(text) {
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

  // -- the API client ------------------------------------------------------------------------------------
  class ApiError extends Error {
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
  async function api(method, path, options = {}) {
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

  // -- the status area -----------------------------------------------------------------------------------
  let statusTimer = null;

  function showStatus(message, kind = "info") {
    const el = document.getElementById("status");
    if (!el) return;
    if (statusTimer) {
      clearTimeout(statusTimer);
      statusTimer = null;
    }
    el.textContent = "";
    el.className = "status " + kind;
    el.dataset.kind = kind;
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.append(h("span", { class: "status-text", testid: "status-text" }, message));
    el.append(
      h("button", { type: "button", class: "status-close", title: "关闭", "aria-label": "关闭", on: { click: clearStatus } }, "×")
    );
    el.hidden = false;
    if (kind === "ok") statusTimer = setTimeout(clearStatus, 6000);
  }

  function clearStatus() {
    const el = document.getElementById("status");
    if (!el) return;
    el.hidden = true;
    el.textContent = "";
    el.dataset.kind = "";
  }

  function showError(err) {
    const message = err instanceof Error ? err.message : String(err);
    showStatus(message, "error");
  }

  /** Wraps an event handler: a thrown error or a rejected promise is shown, never left unhandled. */
  function guard(fn) {
    return (...args) => {
      try {
        const r = fn(...args);
        if (r && typeof r.then === "function") r.catch(showError);
      } catch (e) {
        showError(e);
      }
    };
  }

  /** Disables the button while the async action runs. */
  function busy(button, fn) {
    return guard(async (...args) => {
      if (button.disabled) return;
      button.disabled = true;
      button.classList.add("busy");
      try {
        await fn(...args);
      } finally {
        button.disabled = false;
        button.classList.remove("busy");
      }
    });
  }

  // -- DOM building --------------------------------------------------------------------------------------
  /**
   * h("div", {class, testid, data: {...}, on: {click: fn}, ...properties or attributes}, ...children).
   * Children: nodes, or anything else as text (null/undefined/false are skipped).
   */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "testid") el.dataset.testid = v;
        else if (k === "data") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
        else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
        else if (k === "text") el.textContent = String(v);
        else if (k === "value" || k === "checked" || k === "disabled" || k === "selected" || k === "hidden") el[k] = v;
        else if (k === "style") throw new Error("inline style attributes are not allowed (CSP)");
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else if (c instanceof Node) el.append(c);
      else el.append(document.createTextNode(String(c)));
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  /** A labelled form field: label text, then the control. */
  function field(label, control, hint) {
    return h("label", { class: "field" }, h("span", { class: "field-label" }, label), control, hint ? h("span", { class: "hint" }, hint) : null);
  }

  function table(headers, testid) {
    const tbody = h("tbody");
    const t = h("table", { class: "grid", testid }, h("thead", null, h("tr", null, headers.map((x) => h("th", null, x)))), tbody);
    return { table: t, tbody };
  }

  /** A long text shown shortened, with a toggle to see all of it. */
  function longText(text, max = 80) {
    const s = text == null ? "" : String(text);
    if (s.length <= max) return h("span", { class: "text" }, s);
    const short = s.slice(0, max) + "…";
    const span = h("span", { class: "text" }, short);
    let open = false;
    const toggle = h(
      "button",
      {
        type: "button",
        class: "link",
        on: {
          click: () => {
            open = !open;
            span.textContent = open ? s : short;
            toggle.textContent = open ? "收起" : "展开";
          },
        },
      },
      "展开"
    );
    return h("span", { class: "longtext" }, span, " ", toggle);
  }

  // -- formatting ----------------------------------------------------------------------------------------
  function fmtNum(v, digits = 3) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    if (typeof v !== "number") return String(v);
    return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  }

  function fmtPct(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    return (v * 100).toFixed(1) + "%";
  }

  function fmtMs(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    return (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + " ms";
  }

  /** Unix seconds (or milliseconds, when it is obviously so) to a local date-time string. */
  function fmtTime(ts) {
    if (!ts) return "—";
    const ms = ts > 1e12 ? ts : ts * 1000;
    const d = new Date(ms);
    const p = (x) => String(x).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  /** How long ago, in Chinese: "3 分钟前". */
  function fmtAgo(ts) {
    if (!ts) return "从未";
    const ms = ts > 1e12 ? ts : ts * 1000;
    let s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return `${Math.floor(s)} 秒前`;
    s /= 60;
    if (s < 60) return `${Math.floor(s)} 分钟前`;
    s /= 60;
    if (s < 48) return `${Math.floor(s)} 小时前`;
    s /= 24;
    if (s < 60) return `${Math.floor(s)} 天前`;
    return `${Math.floor(s / 30)} 个月前`;
  }

  function num(input) {
    const s = String(input.value || "").trim();
    if (s === "") return null;
    const v = Number(s);
    return Number.isFinite(v) ? v : NaN;
  }

  /**
   * Previous / next over a cursor-paginated list (stored answers, feedback): state.cursors holds the
   * cursor of each page seen, state.index the page shown, state.next the server's next_cursor.
   */
  function cursorPager(els, state, loadPage) {
    els.prev.addEventListener(
      "click",
      busy(els.prev, async () => {
        if (state.index > 0) state.index--;
        await loadPage();
      })
    );
    els.next.addEventListener(
      "click",
      busy(els.next, async () => {
        if (state.next === null) return;
        state.cursors = state.cursors.slice(0, state.index + 1);
        state.cursors.push(state.next);
        state.index++;
        await loadPage();
      })
    );
  }

  function confirmed(message) {
    return window.confirm(message);
  }

  // ==== SVG charts drawn with createElementNS: lines over a numeric x axis (gaps, vertical markers) and horizontal bars ===
  // built on first use by the pages that draw (a function, not an IIFE: V8 compiles it only then)
  function chartKit() {
    // Small SVG charts drawn with createElementNS (no library): lines over a numeric x axis (with gaps for
    // missing values and vertical markers), and horizontal bars. Colours come from CSS classes s0..s7.


    const NS = "http://www.w3.org/2000/svg";

    function s(tag, attrs, text) {
      const el = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (v !== undefined && v !== null) el.setAttribute(k, String(v));
      }
      if (text !== undefined) el.textContent = String(text);
      return el;
    }

    function niceTicks(min, max, count) {
      if (!(max > min)) {
        const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
        min -= pad;
        max += pad;
      }
      const raw = (max - min) / Math.max(1, count);
      const mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || raw;
      const lo = Math.floor(min / step) * step;
      const hi = Math.ceil(max / step) * step;
      const ticks = [];
      for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
      return { lo, hi, ticks };
    }

    function legend(series, markers) {
      const items = series.map((se, i) =>
        h("span", { class: "legend-item" }, h("span", { class: "swatch " + (se.cls || "s" + i) + (se.dashed ? " dashed" : "") }), se.name)
      );
      for (const m of markers || []) {
        items.push(h("span", { class: "legend-item" }, h("span", { class: "swatch marker " + (m.cls || "") }), m.label));
      }
      return h("div", { class: "legend" }, items);
    }

    function frame(title, testid, svg, legendEl, empty) {
      return h(
        "figure",
        { class: "chart", testid: testid || "chart" },
        h("figcaption", null, title),
        svg,
        empty ? h("p", { class: "muted chart-empty" }, empty) : null,
        legendEl
      );
    }

    /**
     * A line chart. opts: title, xs (numbers), series [{name, values (number|null per x), cls, dashed}],
     * yMin, yMax (auto when undefined), yFormat, xFormat, markers [{x, label, cls}], spanGaps (join the
     * points around a missing value instead of breaking the line), testid.
     */
    function lineChart(opts) {
      const W = opts.width || 640;
      const H = opts.height || 240;
      const m = { l: 56, r: 16, t: 12, b: 34 };
      const xs = opts.xs || [];
      const series = opts.series || [];
      const yFormat = opts.yFormat || ((v) => String(v));
      const xFormat = opts.xFormat || ((v) => String(v));
      const values = series.flatMap((se) => se.values.filter((v) => v !== null && v !== undefined && Number.isFinite(v)));
      const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": opts.title || "" });
      const hasData = values.length > 0 && xs.length > 0;

      let yLo = opts.yMin !== undefined ? opts.yMin : Math.min(0, ...(values.length ? values : [0]));
      let yHi = opts.yMax !== undefined ? opts.yMax : Math.max(...(values.length ? values : [1]));
      const yt = niceTicks(yLo, yHi, 4);
      if (opts.yMin === undefined) yLo = yt.lo;
      if (opts.yMax === undefined) yHi = yt.hi;
      if (!(yHi > yLo)) yHi = yLo + 1;
      const markerXs = (opts.markers || []).map((mk) => mk.x).filter((x) => Number.isFinite(x));
      let xLo = Math.min(...(xs.length ? xs : [0]), ...markerXs);
      let xHi = Math.max(...(xs.length ? xs : [1]), ...markerXs);
      if (opts.xMin !== undefined) xLo = opts.xMin;
      if (opts.xMax !== undefined) xHi = opts.xMax;
      if (!(xHi > xLo)) {
        xLo -= 0.5;
        xHi += 0.5;
      }
      const px = (x) => m.l + ((x - xLo) / (xHi - xLo)) * (W - m.l - m.r);
      const py = (y) => H - m.b - ((y - yLo) / (yHi - yLo)) * (H - m.t - m.b);

      // axes and grid
      const grid = s("g", { class: "grid-lines" });
      for (const t of yt.ticks) {
        if (t < yLo - 1e-9 || t > yHi + 1e-9) continue;
        grid.append(s("line", { x1: m.l, x2: W - m.r, y1: py(t), y2: py(t) }));
        grid.append(s("text", { x: m.l - 6, y: py(t) + 4, class: "tick y" }, yFormat(t)));
      }
      const nx = Math.min(6, Math.max(1, xs.length));
      const xticks = opts.xTicks || Array.from({ length: nx + 1 }, (_, i) => xLo + ((xHi - xLo) * i) / nx);
      for (const t of xticks) {
        grid.append(s("text", { x: px(t), y: H - m.b + 18, class: "tick x" }, xFormat(t)));
      }
      grid.append(s("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
      grid.append(s("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
      svg.append(grid);

      // markers (vertical lines)
      for (const mk of opts.markers || []) {
        if (!Number.isFinite(mk.x)) continue;
        const g = s("g", { class: "marker " + (mk.cls || "") });
        g.append(s("line", { x1: px(mk.x), x2: px(mk.x), y1: m.t, y2: H - m.b }));
        g.append(s("text", { x: px(mk.x) + 4, y: m.t + 12 }, mk.label));
        svg.append(g);
      }

      // the lines, broken where a value is missing
      series.forEach((se, i) => {
        const cls = se.cls || "s" + i;
        const g = s("g", { class: "series " + cls + (se.dashed ? " dashed" : ""), "data-series": se.name });
        let d = "";
        let run = [];
        const dots = xs.length <= 80;
        const flush = () => {
          if (run.length === 1 || dots) {
            for (const [cx, cy] of run) g.append(s("circle", { cx, cy, r: 2.5 }));
          }
          run = [];
        };
        xs.forEach((x, j) => {
          const v = se.values[j];
          if (v === null || v === undefined || !Number.isFinite(v)) {
            if (!opts.spanGaps) flush(); // a gap: the line breaks (spanGaps: it joins the points around it)
            return;
          }
          const p = [px(x), py(Math.min(yHi, Math.max(yLo, v)))];
          d += (run.length ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1) + " ";
          run.push(p);
        });
        flush();
        if (d) g.prepend(s("path", { d: d.trim() }));
        const t = s("title", {}, se.name);
        g.append(t);
        svg.append(g);
      });

      return frame(opts.title, opts.testid, svg, legend(series, opts.markers), hasData ? null : "此时间段没有数据");
    }

    /** Horizontal bars. opts: title, bars [{label, value}], format, testid. */
    function barChart(opts) {
      const bars = opts.bars || [];
      const W = opts.width || 640;
      const rowH = 24;
      const m = { l: 170, r: 70, t: 8, b: 8 };
      const H = m.t + m.b + Math.max(1, bars.length) * rowH;
      const format = opts.format || ((v) => String(v));
      const max = Math.max(1e-9, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
      const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg bars", role: "img", "aria-label": opts.title || "" });
      bars.forEach((b, i) => {
        const y = m.t + i * rowH;
        const v = Number.isFinite(b.value) ? b.value : 0;
        const w = ((W - m.l - m.r) * v) / max;
        const g = s("g", { class: "bar " + (b.cls || "s" + (i % 8)), "data-label": b.label });
        g.append(s("text", { x: m.l - 8, y: y + rowH / 2 + 4, class: "tick y" }, b.label));
        g.append(s("rect", { x: m.l, y: y + 4, width: Math.max(v > 0 ? 1 : 0, w).toFixed(1), height: rowH - 8 }));
        g.append(s("text", { x: m.l + w + 6, y: y + rowH / 2 + 4, class: "tick value" }, format(b.value)));
        svg.append(g);
      });
      return frame(opts.title, opts.testid, svg, null, bars.length ? null : opts.empty || "没有数据");
    }

    /** A clock-time label for unix seconds; withSeconds for short windows (where minutes repeat). */
    function clockLabel(ts, withSeconds) {
      const d = new Date(ts > 1e12 ? ts : ts * 1000);
      const p = (x) => String(x).padStart(2, "0");
      return p(d.getHours()) + ":" + p(d.getMinutes()) + (withSeconds ? ":" + p(d.getSeconds()) : "");
    }
    return { lineChart, barChart, clockLabel };
  }

  // ==== 试验台 playground: POST /v1/explain, and a real POST /v1/generate ======================================
  function playgroundPage() {
    // 试验台: why a prompt hits or misses (POST /v1/explain), and a real request (POST /v1/generate) with
    // the same Cache-Control and threshold override.


    const TIER_NAMES = { curated: "精选语料 (curated)", generated: "已存答案 (generated)" };
    let els = null;

    function cacheControl() {
      const d = [];
      if (els.noCache.checked) d.push("no-cache");
      if (els.noStore.checked) d.push("no-store");
      return d.join(", ");
    }

    function readForm() {
      const prompt = els.prompt.value;
      if (!prompt.trim()) throw new Error("请输入提示词 (prompt)。");
      const topK = num(els.topK);
      if (topK !== null && (!Number.isInteger(topK) || topK < 1 || topK > 10)) throw new Error("top_k 须为 1 到 10 的整数。");
      const threshold = num(els.threshold);
      const answerThreshold = num(els.answerThreshold);
      for (const [name, v] of [["阈值", threshold], ["答案缓存阈值", answerThreshold]]) {
        if (v !== null && !(v > 0 && v <= 1)) throw new Error(`${name}须在 (0, 1] 之间，例如 0.85。`);
      }
      const tenant = els.tenant.value.trim() || null;
      return { prompt, topK: topK === null ? 5 : topK, threshold, answerThreshold, tenant };
    }

    function simBar(similarity, threshold) {
      const fill = h("div", { class: "simbar-fill" });
      const bar = h("div", { class: "simbar", title: `相似度 ${fmtNum(similarity, 4)} / 阈值 ${fmtNum(threshold, 4)}` }, fill);
      const v = Math.max(0, Math.min(1, Number(similarity) || 0));
      fill.style.width = (v * 100).toFixed(2) + "%";
      if (Number.isFinite(threshold)) {
        const mark = h("div", { class: "simbar-mark", testid: "threshold-mark" });
        mark.style.left = (Math.max(0, Math.min(1, threshold)) * 100).toFixed(2) + "%";
        bar.append(mark);
      }
      if (similarity >= threshold) bar.classList.add("above");
      return h("div", { class: "simcell" }, bar, h("span", { class: "simval" }, fmtNum(similarity, 4)));
    }

    function guardCell(guard) {
      if (guard === null || guard === undefined) return h("span", { class: "muted" }, "—（未检查）");
      const [verdict, ...rest] = String(guard).split(":");
      const reason = rest.join(":");
      const cls = verdict === "pass" ? "ok" : verdict === "rejected" ? "bad" : "warn";
      const label = verdict === "pass" ? "通过" : verdict === "rejected" ? "拒绝" : verdict === "would-reject" ? "将拒绝（影子）" : verdict;
      return h("span", { class: "badge " + cls, title: String(guard) }, label, reason ? "：" + reason : "");
    }

    function renderTier(tier) {
      const name = TIER_NAMES[tier.tier] || tier.tier;
      const head = h(
        "h3",
        null,
        name,
        " ",
        h("span", { class: "muted" }, `阈值 threshold = ${fmtNum(tier.threshold, 4)}`),
        tier.skipped ? h("span", { class: "badge warn" }, "已跳过：" + tier.skipped) : null
      );
      const rows = (tier.candidates || []).map((c, i) =>
        h(
          "tr",
          {
            testid: "candidate",
            class: (c.chosen ? "chosen " : "") + (c.above_threshold ? "above" : "below"),
            data: { id: String(c.id), tier: tier.tier, chosen: c.chosen ? "true" : "false" },
          },
          h("td", null, String(i + 1), c.chosen ? h("span", { class: "badge chosen-badge", testid: "chosen" }, "选中") : null),
          h("td", { class: "mono" }, String(c.id)),
          h("td", null, tier.tier === "curated" ? h("span", { class: "mono" }, String(c.biz_id ?? "")) : longText(c.prompt || "", 40)),
          h("td", null, simBar(c.similarity, tier.threshold)),
          h("td", null, c.above_threshold ? h("span", { class: "badge ok" }, "≥ 阈值") : h("span", { class: "badge" }, "< 阈值")),
          h("td", null, guardCell(c.guard)),
          h("td", null, c.blocked ? h("span", { class: "badge bad", testid: "blocked" }, "已屏蔽") : h("span", { class: "muted" }, "否")),
          tier.tier === "generated"
            ? h("td", null, c.serves_context === false ? h("span", { class: "badge warn" }, "否") : h("span", { class: "muted" }, "是"))
            : null,
          h("td", { class: "content" }, longText(c.content || "", 60))
        )
      );
      const body = rows.length
        ? h(
            "table",
            { class: "grid candidates" },
            h(
              "thead",
              null,
              h("tr", null, ["#", "id", tier.tier === "curated" ? "biz_id" : "存储的提示词", "相似度", "阈值", "二次检查 (guard)", "屏蔽", tier.tier === "generated" ? "上下文适用" : null, "内容"]
                  .filter((x) => x !== null)
                  .map((x) => h("th", null, x)))
            ),
            h("tbody", null, rows)
          )
        : h("p", { class: "muted" }, "没有候选。");
      return h("div", { class: "tier card", testid: "tier-" + tier.tier }, head, body);
    }

    function renderExplain(r) {
      const out = clear(els.explainOut);
      const decision = String(r.decision || "");
      out.append(
        h(
          "div",
          { class: "decision-row" },
          h("span", { class: "decision " + decision.toLowerCase(), testid: "decision" }, decision),
          r.bypass_reason ? h("span", { class: "badge warn" }, "bypass_reason: " + r.bypass_reason) : null,
          h("span", { class: "muted" }, "HIT_GUARD = " + (r.guard_mode || "—"))
        )
      );
      let served;
      if (r.served) {
        const sv = r.served;
        served = h(
          "div",
          { class: "card served", testid: "served", data: { id: String(sv.id), tier: sv.tier } },
          h("h3", null, "将返回的内容"),
          h(
            "p",
            { class: "muted" },
            `来源：${TIER_NAMES[sv.tier] || sv.tier} · id ${sv.id}`,
            sv.biz_id !== undefined && sv.biz_id !== null && sv.biz_id !== "" ? ` · biz_id ${sv.biz_id}` : "",
            ` · 相似度 ${fmtNum(sv.similarity, 4)}`
          ),
          sv.prompt ? h("p", { class: "muted" }, "存储的提示词：", longText(sv.prompt, 120)) : null,
          h("pre", { class: "answer" }, sv.content || "")
        );
      } else {
        served = h(
          "div",
          { class: "card served", testid: "served" },
          h("h3", null, "将返回的内容"),
          h("p", { class: "llm" }, r.would_call_llm === false ? "不会调用 LLM" : "将调用 LLM")
        );
      }
      out.append(served);
      const t = r.timings_ms || {};
      const stages = [
        ["嵌入 embed", t.embed],
        ["检索 search", t.search],
        ["答案缓存 answer_cache", t.answer_cache],
        ["合计 total", t.total],
      ];
      for (const [k, v] of Object.entries(t)) {
        if (!["embed", "search", "answer_cache", "total"].includes(k)) stages.splice(stages.length - 1, 0, [k, v]);
      }
      out.append(
        h(
          "div",
          { class: "timings", testid: "timings" },
          h("span", { class: "muted" }, "各阶段耗时："),
          stages.map(([k, v]) => h("span", { class: "chip" }, k + " ", h("b", null, fmtMs(v))))
        )
      );
      for (const tier of r.tiers || []) out.append(renderTier(tier));
    }

    async function explain() {
      const f = readForm();
      const headers = {};
      const cc = cacheControl();
      if (cc) headers["Cache-Control"] = cc;
      if (f.tenant) headers["X-Tenant"] = f.tenant;
      const body = { prompt: f.prompt, top_k: f.topK, threshold: f.threshold, answer_threshold: f.answerThreshold, no_cache: els.noCache.checked };
      showStatus("正在解释…", "info");
      const r = await api("POST", "/v1/explain", { body, headers });
      renderExplain(r);
      showStatus(`决策：${r.decision}`, "ok");
    }

    async function send() {
      const f = readForm();
      const headers = {};
      const cc = cacheControl();
      if (cc) headers["Cache-Control"] = cc;
      if (f.threshold !== null) headers["X-Similarity-Threshold"] = String(f.threshold);
      if (f.tenant) headers["X-Tenant"] = f.tenant;
      showStatus("正在发送（未命中时会调用 LLM，可能需要几秒）…", "info");
      const t0 = performance.now();
      const r = await api("POST", "/v1/generate", { body: { prompt: f.prompt }, headers, raw: true });
      const ms = performance.now() - t0;
      const hd = r.headers;
      const d = r.data || {};
      const out = clear(els.sendOut);
      const kv = [
        ["X-Cache", hd.get("X-Cache")],
        ["X-Similarity", hd.get("X-Similarity")],
        ["X-Match-Id", hd.get("X-Match-Id")],
        ["X-Match-Source", hd.get("X-Match-Source")],
        ["X-Cache-Guard", hd.get("X-Cache-Guard")],
        ["X-Cache-Bypass-Reason", hd.get("X-Cache-Bypass-Reason")],
        ["X-Writing-Source", hd.get("X-Writing-Source")],
        ["模型", d.model],
        ["耗时", fmtMs(ms)],
      ].filter(([, v]) => v !== null && v !== undefined && v !== "");
      out.append(
        h("div", { class: "decision-row" }, h("span", { class: "decision " + String(hd.get("X-Cache") || "").toLowerCase(), testid: "send-xcache" }, hd.get("X-Cache") || "—")),
        h("dl", { class: "kv" }, kv.flatMap(([k, v]) => [h("dt", null, k), h("dd", { class: "mono" }, String(v))])),
        h("pre", { class: "answer", testid: "send-text" }, typeof d === "string" ? d : d.content || "")
      );
      showStatus(`已返回：X-Cache = ${hd.get("X-Cache") || "—"}`, "ok");
    }

    function build(section) {
      els = {
        prompt: h("textarea", { rows: 4, testid: "pg-prompt", placeholder: "输入一个写作提示词，例如：写一段描写秋天的文字" }),
        topK: h("input", { type: "number", min: 1, max: 10, step: 1, value: "5", testid: "pg-topk" }),
        threshold: h("input", { type: "number", min: 0, max: 1, step: 0.01, placeholder: "默认 SIMILARITY_THRESHOLD", testid: "pg-threshold" }),
        answerThreshold: h("input", { type: "number", min: 0, max: 1, step: 0.01, placeholder: "默认 ANSWER_CACHE_THRESHOLD", testid: "pg-answer-threshold" }),
        tenant: h("input", { type: "text", maxlength: 64, placeholder: "默认租户", testid: "pg-tenant" }),
        noCache: h("input", { type: "checkbox", testid: "pg-nocache" }),
        noStore: h("input", { type: "checkbox", testid: "pg-nostore" }),
        explainOut: h("div", { class: "results", testid: "explain-result" }),
        sendOut: h("div", { class: "results", testid: "send-result" }),
      };
      const explainBtn = h("button", { type: "button", testid: "pg-explain" }, "解释");
      const sendBtn = h("button", { type: "button", class: "secondary", testid: "pg-send" }, "发送");
      explainBtn.addEventListener("click", busy(explainBtn, explain));
      sendBtn.addEventListener("click", busy(sendBtn, send));
      section.append(
        h("h2", null, "试验台"),
        h("p", { class: "muted" }, "“解释”显示检索如何决定（不调用 LLM）；“发送”发起一次真实请求 POST /v1/generate。"),
        h(
          "div",
          { class: "card form" },
          field("提示词 prompt", els.prompt),
          h(
            "div",
            { class: "row" },
            field("top_k", els.topK),
            field("阈值覆盖 (X-Similarity-Threshold)", els.threshold),
            field("答案缓存阈值 answer_threshold", els.answerThreshold),
            field("租户 tenant", els.tenant)
          ),
          h(
            "div",
            { class: "row" },
            h("label", { class: "check" }, els.noCache, " Cache-Control: no-cache（不查缓存）"),
            h("label", { class: "check" }, els.noStore, " Cache-Control: no-store（不写入答案缓存）")
          ),
          h("div", { class: "actions" }, explainBtn, sendBtn)
        ),
        h("h3", null, "解释结果"),
        els.explainOut,
        h("h3", null, "发送结果"),
        els.sendOut
      );
    }

    return { build, show: async () => {} };
  }

  // ==== 语料 corpus: search, pages of 20, view, add, edit (PUT), delete, JSONL import in chunks, stats ========
  function corpusPage() {
    // 语料: the curated corpus. Search (text or biz_id), a paginated table (offset, 20 a page), one
    // passage's view, add, edit (PUT: re-embedded, a new id), delete, JSONL import in chunks, and stats.


    const PAGE_SIZE = 20;
    const IMPORT_MAX_LINES = 200;
    // 200 lines / 160 KB of the file per request: the JSON body ({"jsonl": ..., "first_line": n}) escapes
    // quotes and newlines, and must stay under the server's MAX_BODY_BYTES (256 KB by default)
    const IMPORT_MAX_BYTES = 160 * 1000;
    const state = { offset: 0, text: "", bizId: "", total: null, count: 0 };
    let els = null;

    async function loadStats() {
      const s = await api("GET", "/v1/corpus/stats");
      const out = clear(els.stats);
      out.append(
        h(
          "dl",
          { class: "kv" },
          [
            ["集合 collection", s.collection],
            ["存储 store", s.store],
            ["条数 count", s.count],
            ["维度 dimension", s.dimension],
            ["只读 read_only", s.read_only ? "是（参考实现的集合，不可写）" : "否"],
            ["嵌入模型 model", s.model],
            ["池化 pooling", s.pooling],
            ["max_tokens", s.max_tokens],
          ]
            .filter(([, v]) => v !== undefined)
            .flatMap(([k, v]) => [h("dt", null, k), h("dd", { class: "mono", testid: "stat-" + k.split(" ").pop() }, String(v ?? "—"))])
        ),
        h(
          "p",
          { class: "muted", testid: "reembed-status" },
          `重新嵌入状态：当前模型 ${s.model}，${s.count} 条语料。更换模型后需要重新嵌入：重新嵌入请用 python ingest.py --reembed`
        )
      );
    }

    async function loadPage() {
      const query = { limit: PAGE_SIZE, offset: state.offset, text: state.text || null, biz_id: state.bizId || null };
      const r = await api("GET", "/v1/corpus", { query });
      state.total = typeof r.total === "number" ? r.total : null;
      state.count = r.items.length;
      const tbody = clear(els.tbody);
      if (!r.items.length) {
        tbody.append(h("tr", { testid: "corpus-empty" }, h("td", { colspan: 4, class: "muted" }, "没有语料。")));
      }
      for (const p of r.items) {
        const id = String(p.id);
        const viewBtn = h("button", { type: "button", class: "small", testid: "corpus-view" }, "查看");
        const editBtn = h("button", { type: "button", class: "small secondary", testid: "corpus-edit" }, "编辑");
        const delBtn = h("button", { type: "button", class: "small danger", testid: "corpus-delete" }, "删除");
        viewBtn.addEventListener("click", busy(viewBtn, () => view(id)));
        editBtn.addEventListener("click", busy(editBtn, () => edit(id)));
        delBtn.addEventListener("click", busy(delBtn, () => remove(id)));
        tbody.append(
          h(
            "tr",
            { testid: "corpus-row", data: { id } },
            h("td", { class: "mono" }, id),
            h("td", { class: "mono" }, String(p.biz_id ?? "")),
            h("td", { class: "content" }, longText(p.content, 90)),
            h("td", { class: "row-actions" }, viewBtn, editBtn, delBtn)
          )
        );
      }
      const page = Math.floor(state.offset / PAGE_SIZE) + 1;
      const pages = state.total !== null ? Math.max(1, Math.ceil(state.total / PAGE_SIZE)) : null;
      els.pageInfo.textContent =
        `第 ${page} 页` + (pages !== null ? ` / 共 ${pages} 页，${state.total} 条` : "") + `（每页 ${PAGE_SIZE} 条）`;
      els.prev.disabled = state.offset === 0;
      els.next.disabled = state.total !== null ? state.offset + PAGE_SIZE >= state.total : r.items.length < PAGE_SIZE;
    }

    function detailCard(title, ...children) {
      const out = clear(els.detail);
      const close = h("button", { type: "button", class: "small secondary", on: { click: () => clear(els.detail) } }, "关闭");
      out.append(h("div", { class: "card detail" }, h("div", { class: "card-head" }, h("h3", null, title), close), ...children));
    }

    async function view(id) {
      const p = await api("GET", `/v1/corpus/${encodeURIComponent(id)}`);
      detailCard(
        `语料 ${p.id}`,
        h("dl", { class: "kv", testid: "corpus-detail" }, h("dt", null, "id"), h("dd", { class: "mono" }, String(p.id)), h("dt", null, "biz_id"), h("dd", { class: "mono" }, String(p.biz_id ?? ""))),
        h("pre", { class: "answer", testid: "corpus-detail-content" }, p.content)
      );
      els.detail.scrollIntoView({ block: "nearest" });
    }

    async function edit(id) {
      const p = await api("GET", `/v1/corpus/${encodeURIComponent(id)}`);
      const content = h("textarea", { rows: 6, testid: "corpus-edit-content", value: p.content });
      const biz = h("input", { type: "text", testid: "corpus-edit-biz", value: String(p.biz_id ?? "") });
      const save = h("button", { type: "button", testid: "corpus-edit-save" }, "保存（重新嵌入）");
      save.addEventListener(
        "click",
        busy(save, async () => {
          if (!content.value.trim()) throw new Error("内容不能为空。");
          const r = await api("PUT", `/v1/corpus/${encodeURIComponent(id)}`, { body: { content: content.value, biz_id: biz.value } });
          clear(els.detail);
          showStatus(`已保存：新 id ${r.id}（原 id ${r.previous_id}）${r.duplicate ? "，语料中已有相同内容" : ""}`, "ok");
          await Promise.all([loadPage(), loadStats()]);
        })
      );
      detailCard(
        `编辑语料 ${p.id}`,
        h("p", { class: "muted" }, "保存会重新嵌入这段文字，id 会改变。"),
        field("内容 content", content),
        field("biz_id", biz),
        h("div", { class: "actions" }, save)
      );
    }

    async function remove(id) {
      if (!confirmed(`确定删除语料 ${id}？此操作记入审计日志。`)) return;
      await api("DELETE", `/v1/corpus/${encodeURIComponent(id)}`);
      showStatus(`已删除语料 ${id}`, "ok");
      if (state.count === 1 && state.offset > 0) state.offset = Math.max(0, state.offset - PAGE_SIZE);
      await Promise.all([loadPage(), loadStats()]);
    }

    async function add() {
      const content = els.addContent.value;
      if (!content.trim()) throw new Error("内容不能为空。");
      const r = await api("POST", "/v1/corpus", { body: { content, biz_id: els.addBiz.value.trim() } });
      const id = r.ids && r.ids.length ? String(r.ids[0]) : "?";
      const dup = r.duplicate && r.duplicate[0];
      els.addResult.textContent = dup ? `语料中已有相同内容：id ${id}` : `已添加：id ${id}`;
      els.addResult.dataset.id = id;
      showStatus(dup ? `重复：已存在 id ${id}` : `已添加语料 id ${id}`, "ok");
      if (!dup) {
        els.addContent.value = "";
      }
      await Promise.all([loadPage(), loadStats()]);
    }

    /** Splits the file's lines into chunks of at most 200 lines and 200 KB: [{firstLine, text, lines}]. */
    function chunksOf(text) {
      const enc = new TextEncoder();
      const lines = text.split(/\r?\n/);
      if (lines.length && lines[lines.length - 1] === "") lines.pop();
      const chunks = [];
      let cur = [];
      let bytes = 0;
      let first = 1;
      lines.forEach((line, i) => {
        const b = enc.encode(line).length + 1;
        if (cur.length && (cur.length >= IMPORT_MAX_LINES || bytes + b > IMPORT_MAX_BYTES)) {
          chunks.push({ firstLine: first, lines: cur.length, text: cur.join("\n") + "\n" });
          cur = [];
          bytes = 0;
        }
        if (!cur.length) first = i + 1;
        cur.push(line);
        bytes += b;
      });
      if (cur.length) chunks.push({ firstLine: first, lines: cur.length, text: cur.join("\n") + "\n" });
      return { chunks, lines: lines.length };
    }

    async function importFile() {
      const file = els.importFile.files && els.importFile.files[0];
      if (!file) throw new Error("请先选择一个 JSONL 文件（每行 {\"content\": …, \"biz_id\": …}）。");
      const text = await file.text();
      const { chunks, lines } = chunksOf(text);
      const total = { read: 0, inserted: 0, skipped: 0, errors: [] };
      const progress = els.progress;
      progress.max = Math.max(1, lines);
      progress.value = 0;
      progress.hidden = false;
      const errList = clear(els.importErrors);
      const summary = els.importSummary;
      summary.textContent = `正在导入 ${file.name}：${lines} 行，分 ${chunks.length} 次提交…`;
      let done = 0;
      let stopped = null;
      for (const c of chunks) {
        if (!c.text.trim()) {
          done += c.lines;
          progress.value = done;
          continue;
        }
        try {
          const r = await api("POST", "/v1/corpus/import", { body: { jsonl: c.text, first_line: c.firstLine } });
          total.read += r.read || 0;
          total.inserted += r.inserted || 0;
          total.skipped += r.skipped || 0;
          for (const e of r.errors || []) total.errors.push(e);
        } catch (e) {
          if (e.status === 400 || e.status === 413 || e.status === 422) {
            total.errors.push({ line: c.firstLine, message: `第 ${c.firstLine}–${c.firstLine + c.lines - 1} 行整批被拒绝：${e.message}` });
          } else {
            stopped = `导入在第 ${c.firstLine} 行中断：${e.message}`;
            break;
          }
        }
        done += c.lines;
        progress.value = done;
        summary.textContent = `已处理 ${done} / ${lines} 行：新增 ${total.inserted}，跳过（重复）${total.skipped}，错误 ${total.errors.length}`;
      }
      for (const e of total.errors.slice(0, 500)) {
        errList.append(h("li", { testid: "import-error", data: { line: e.line } }, h("span", { class: "mono" }, `第 ${e.line} 行`), "：", e.message));
      }
      if (total.errors.length > 500) errList.append(h("li", { class: "muted" }, `……另有 ${total.errors.length - 500} 个错误未列出`));
      const text2 = `导入完成：读取 ${total.read} 行，新增 ${total.inserted}，跳过（重复）${total.skipped}，错误 ${total.errors.length}`;
      summary.textContent = stopped ? stopped + "。" + text2.replace("导入完成", "此前") : text2;
      summary.dataset.inserted = String(total.inserted);
      summary.dataset.errors = String(total.errors.length);
      summary.dataset.done = stopped ? "stopped" : "true";
      if (stopped) showStatus(stopped, "error");
      else showStatus(text2, total.errors.length ? "warn" : "ok");
      await Promise.all([loadPage(), loadStats()]);
    }

    function build(section) {
      const { table: t, tbody } = table(["id", "biz_id", "内容", "操作"], "corpus-table");
      els = {
        stats: h("div", { testid: "corpus-stats" }),
        tbody,
        searchText: h("input", { type: "search", placeholder: "内容包含…", testid: "corpus-search-text", maxlength: 200 }),
        searchBiz: h("input", { type: "text", placeholder: "biz_id", testid: "corpus-search-biz" }),
        prev: h("button", { type: "button", class: "secondary", testid: "corpus-prev" }, "上一页"),
        next: h("button", { type: "button", class: "secondary", testid: "corpus-next" }, "下一页"),
        pageInfo: h("span", { class: "muted", testid: "corpus-page-info" }),
        detail: h("div", { testid: "corpus-detail-panel" }),
        addContent: h("textarea", { rows: 4, testid: "corpus-add-content", placeholder: "一段精选的文字" }),
        addBiz: h("input", { type: "text", testid: "corpus-add-biz", placeholder: "例如 season-99" }),
        addResult: h("span", { class: "muted", testid: "corpus-add-result" }),
        importFile: h("input", { type: "file", accept: ".jsonl,.ndjson,.json,.txt,application/x-ndjson", testid: "import-file" }),
        progress: h("progress", { testid: "import-progress", max: 1, value: 0, hidden: true }),
        importSummary: h("p", { testid: "import-summary" }),
        importErrors: h("ul", { class: "errors", testid: "import-errors" }),
      };
      const searchForm = h(
        "form",
        { class: "row" },
        field("内容搜索", els.searchText),
        field("biz_id", els.searchBiz),
        h("div", { class: "actions" }, h("button", { type: "submit", testid: "corpus-search" }, "搜索"), h("button", { type: "reset", class: "secondary" }, "清除"))
      );
      searchForm.addEventListener(
        "submit",
        guard(async (ev) => {
          ev.preventDefault();
          state.text = els.searchText.value.trim();
          state.bizId = els.searchBiz.value.trim();
          state.offset = 0;
          await loadPage();
        })
      );
      searchForm.addEventListener(
        "reset",
        guard(async () => {
          state.text = "";
          state.bizId = "";
          state.offset = 0;
          await loadPage();
        })
      );
      els.prev.addEventListener(
        "click",
        busy(els.prev, async () => {
          state.offset = Math.max(0, state.offset - PAGE_SIZE);
          await loadPage();
        })
      );
      els.next.addEventListener(
        "click",
        busy(els.next, async () => {
          state.offset += PAGE_SIZE;
          await loadPage();
        })
      );
      const addBtn = h("button", { type: "button", testid: "corpus-add-submit" }, "添加");
      addBtn.addEventListener("click", busy(addBtn, add));
      const importBtn = h("button", { type: "button", testid: "import-start" }, "导入");
      importBtn.addEventListener("click", busy(importBtn, importFile));
      const statsBtn = h("button", { type: "button", class: "small secondary" }, "刷新");
      statsBtn.addEventListener("click", busy(statsBtn, loadStats));

      section.append(
        h("h2", null, "语料"),
        h("div", { class: "card" }, h("div", { class: "card-head" }, h("h3", null, "集合统计"), statsBtn), els.stats),
        h("div", { class: "card" }, searchForm, t, h("div", { class: "pager" }, els.prev, els.pageInfo, els.next)),
        els.detail,
        h(
          "div",
          { class: "columns" },
          h("div", { class: "card form" }, h("h3", null, "添加语料"), field("内容 content", els.addContent), field("biz_id", els.addBiz), h("div", { class: "actions" }, addBtn, els.addResult)),
          h(
            "div",
            { class: "card form" },
            h("h3", null, "批量导入 (JSONL)"),
            h("p", { class: "muted" }, "每行一个 {\"content\": \"…\", \"biz_id\": \"…\"}，与 ingest.py 的格式相同；按 200 行 / 160 KB 分批提交（POST /v1/corpus/import）。"),
            field("文件", els.importFile),
            h("div", { class: "actions" }, importBtn),
            els.progress,
            els.importSummary,
            els.importErrors
          )
        )
      );
    }

    async function show() {
      await loadPage(); // the table first: on a busy server the stats would only delay it
      await loadStats();
    }

    return { build, show };
  }

  // ==== 已存答案 stored answers: cursor pages, filters, delete, promote =========================================
  function answersPage() {
    // 已存答案: the answer cache. A cursor-paginated list (20 a page) with filters, delete, and promote
    // into the curated corpus (biz_id asked in an inline form).


    const PAGE_SIZE = 20;
    const state = { cursors: [0], index: 0, next: null, filters: {} };
    let els = null;

    async function loadPage() {
      const cursor = state.cursors[state.index];
      const r = await api("GET", "/v1/answers", { query: { ...state.filters, cursor, limit: PAGE_SIZE } });
      state.next = r.next_cursor === null || r.next_cursor === undefined ? null : String(r.next_cursor);
      const tbody = clear(els.tbody);
      if (!r.items.length) tbody.append(h("tr", { testid: "answers-empty" }, h("td", { colspan: 9, class: "muted" }, "没有已存答案。")));
      for (const a of r.items) tbody.append(...row(a));
      els.pageInfo.textContent = `第 ${state.index + 1} 页（每页最多 ${PAGE_SIZE} 条）`;
      els.prev.disabled = state.index === 0;
      els.next.disabled = state.next === null;
    }

    function row(a) {
      const id = String(a.id);
      const del = h("button", { type: "button", class: "small danger", testid: "answer-delete" }, "删除");
      const promote = h("button", { type: "button", class: "small", testid: "answer-promote" }, "提升为语料");
      const formRow = h("tr", { class: "inline-form", hidden: true, testid: "answer-promote-row", data: { id } });
      const tr = h(
        "tr",
        { testid: "answer-row", data: { id } },
        h("td", { class: "mono" }, id),
        h("td", { class: "mono" }, a.tenant),
        h("td", { class: "mono" }, a.model),
        h("td", { class: "content" }, longText(a.prompt, 50)),
        h("td", { class: "content" }, longText(a.content, 70)),
        h("td", { title: fmtTime(a.created_at) }, fmtAgo(a.created_at)),
        h("td", { class: "num" }, String(a.hits)),
        h("td", { title: a.last_hit ? fmtTime(a.last_hit) : "" }, a.last_hit ? fmtAgo(a.last_hit) : "从未"),
        h("td", { class: "row-actions" }, del, promote)
      );
      del.addEventListener(
        "click",
        busy(del, async () => {
          if (!confirmed(`确定删除已存答案 ${id}？`)) return;
          await api("DELETE", `/v1/answers/${encodeURIComponent(id)}`);
          showStatus(`已删除已存答案 ${id}`, "ok");
          await loadPage();
        })
      );
      promote.addEventListener(
        "click",
        guard(() => {
          if (!formRow.hidden) {
            formRow.hidden = true;
            return;
          }
          const biz = h("input", { type: "text", testid: "answer-promote-biz", placeholder: "新语料的 biz_id", maxlength: 256 });
          const ok = h("button", { type: "submit", class: "small", testid: "answer-promote-confirm" }, "确定提升");
          const cancel = h("button", { type: "button", class: "small secondary", on: { click: () => (formRow.hidden = true) } }, "取消");
          const form = h("form", { class: "row" }, field("biz_id", biz), h("div", { class: "actions" }, ok, cancel));
          form.addEventListener(
            "submit",
            busy(ok, async (ev) => {
              ev.preventDefault();
              const bizId = biz.value.trim();
              if (!bizId) throw new Error("请填写 biz_id。");
              const r = await api("POST", `/v1/answers/${encodeURIComponent(id)}/promote`, { body: { biz_id: bizId } });
              showStatus(
                `已提升为语料：passage_id ${r.passage_id}${r.duplicate ? "（语料中已有相同内容）" : ""}，检索键 ${r.retrieval_key_id}，已移除答案 ${r.removed_answer_id}`,
                "ok"
              );
              await loadPage();
            })
          );
          clear(formRow).append(h("td", { colspan: 9 }, h("p", { class: "muted" }, "把这条答案加入精选语料，原提示词成为它的检索键；答案缓存中的这一条会被移除。"), form));
          formRow.hidden = false;
          biz.focus();
        })
      );
      return [tr, formRow];
    }

    function build(section) {
      const { table: t, tbody } = table(["id", "租户 tenant", "模型 model", "提示词", "答案", "存入", "命中 hits", "最近命中", "操作"], "answers-table");
      els = {
        tbody,
        text: h("input", { type: "search", placeholder: "提示词或答案包含…", testid: "answers-text", maxlength: 200 }),
        tenant: h("input", { type: "text", placeholder: "tenant", testid: "answers-tenant", maxlength: 128 }),
        model: h("input", { type: "text", placeholder: "model", testid: "answers-model", maxlength: 256 }),
        prev: h("button", { type: "button", class: "secondary", testid: "answers-prev" }, "上一页"),
        next: h("button", { type: "button", class: "secondary", testid: "answers-next" }, "下一页"),
        pageInfo: h("span", { class: "muted", testid: "answers-page-info" }),
      };
      const form = h(
        "form",
        { class: "row" },
        field("文本", els.text),
        field("租户", els.tenant),
        field("模型", els.model),
        h("div", { class: "actions" }, h("button", { type: "submit", testid: "answers-filter" }, "筛选"), h("button", { type: "reset", class: "secondary" }, "清除"))
      );
      const apply = async () => {
        state.filters = { text: els.text.value.trim() || null, tenant: els.tenant.value.trim() || null, model: els.model.value.trim() || null };
        state.cursors = [0];
        state.index = 0;
        await loadPage();
      };
      form.addEventListener(
        "submit",
        guard(async (ev) => {
          ev.preventDefault();
          await apply();
        })
      );
      form.addEventListener("reset", guard(() => setTimeout(guard(apply), 0)));
      cursorPager(els, state, loadPage);
      section.append(
        h("h2", null, "已存答案"),
        h("p", { class: "muted" }, "LLM 写出、被答案缓存保存的回答（ANSWER_CACHE）。删除错误的答案，或把好的答案提升为精选语料。"),
        h("div", { class: "card" }, form, t, h("div", { class: "pager" }, els.prev, els.pageInfo, els.next))
      );
    }

    return { build, show: loadPage };
  }

  // ==== 反馈 feedback: reports by status, and their resolution ================================================
  function feedbackPage() {
    // 反馈: reports from callers (POST /v1/feedback), filtered by status (open by default), and their
    // resolution: delete the entry, block, dismiss, promote a better passage, relabel.


    const PAGE_SIZE = 20;
    const STATUS_NAMES = { open: "待处理 open", confirmed: "已确认 confirmed", dismissed: "已驳回 dismissed" };
    const TIER_NAMES = { curated: "精选语料", generated: "已存答案", llm: "LLM 直接生成" };
    const ACTION_NAMES = { delete_entry: "删除条目", block: "屏蔽", dismiss: "驳回", promote: "提升更好的语料", relabel: "重新标注" };
    const state = { cursors: [0], index: 0, next: null };
    let els = null;

    async function resolve(report, card, body) {
      const r = await api("POST", `/v1/feedback/${encodeURIComponent(String(report.id))}/resolve`, { body });
      const status = (r.report && r.report.status) || "?";
      card.dataset.status = status;
      card.classList.add("resolved");
      const st = card.querySelector("[data-testid=report-status]");
      if (st) st.textContent = STATUS_NAMES[status] || status;
      const done = card.querySelector("[data-testid=report-resolution]");
      if (done) {
        const detail = r.detail && typeof r.detail === "object" ? Object.entries(r.detail).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join("，") : "";
        const shown = detail.length > 300 ? detail.slice(0, 300) + "…" : detail;
        done.textContent = `已处理：${ACTION_NAMES[r.action] || r.action}${shown ? "（" + shown + "）" : ""}`;
      }
      for (const b of card.querySelectorAll("button.resolve")) b.disabled = true;
      showStatus(`反馈 ${report.id} 已处理：${ACTION_NAMES[r.action] || r.action}，状态 ${status}`, "ok");
    }

    function inlineForm(card, holder, build) {
      clear(holder);
      holder.hidden = false;
      const cancel = h("button", { type: "button", class: "small secondary", on: { click: () => ((holder.hidden = true), clear(holder)) } }, "取消");
      holder.append(build(cancel));
    }

    function reportCard(r) {
      const actions = h("div", { class: "actions" });
      const formHolder = h("div", { class: "inline-form", hidden: true });
      const card = h(
        "article",
        { class: "card report", testid: "report", data: { id: String(r.id), status: r.status, tier: r.tier } },
        h(
          "div",
          { class: "card-head" },
          h(
            "h3",
            null,
            `#${r.id} `,
            h("span", { class: "badge " + (r.verdict === "wrong" ? "bad" : "ok") }, r.verdict === "wrong" ? "错误 wrong" : "正确 good"),
            " ",
            h("span", { class: "badge", testid: "report-status" }, STATUS_NAMES[r.status] || r.status)
          ),
          h("span", { class: "muted" }, fmtTime(r.ts))
        ),
        h(
          "dl",
          { class: "kv" },
          [
            ["提示词 prompt", longText(r.prompt, 160)],
            ["层 tier", `${TIER_NAMES[r.tier] || r.tier} (${r.tier})`],
            ["返回的条目 matched", h("span", { class: "mono" }, (r.matched || "—") + (r.entry_id !== null && r.entry_id !== undefined ? `  (entry_id ${r.entry_id})` : ""))],
            ["相似度 similarity", fmtNum(r.similarity, 4)],
            ["备注 note", r.note ? longText(r.note, 200) : h("span", { class: "muted" }, "—")],
            ["租户 / 报告人", `${r.tenant} / ${r.actor || "—"}`],
          ].flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)])
        ),
        actions,
        formHolder,
        h("p", { class: "resolution", testid: "report-resolution" })
      );
      const hasEntry = r.entry_id !== null && r.entry_id !== undefined && r.tier !== "llm";
      const btn = (action, label, cls, fn) => {
        const b = h("button", { type: "button", class: "small resolve " + (cls || ""), testid: "report-" + action.replace("_", "-") }, label);
        b.addEventListener("click", busy(b, fn));
        actions.append(b);
        return b;
      };
      if (hasEntry) {
        btn("delete_entry", "删除条目", "danger", async () => {
          const what = r.tier === "curated" ? `语料 ${r.entry_id}（${r.matched}）` : `已存答案 ${r.entry_id}`;
          if (!confirmed(`确定删除${what}？`)) return;
          await resolve(r, card, { action: "delete_entry" });
        });
        btn("block", "屏蔽（对所有租户）", "", () => resolve(r, card, { action: "block" }));
      }
      btn("dismiss", "驳回", "secondary", () => resolve(r, card, { action: "dismiss" }));
      btn("promote", "提升更好的语料…", "", async () => {
        inlineForm(card, formHolder, (cancel) => {
          const content = h("textarea", { rows: 4, testid: "report-promote-content", placeholder: "应当返回的更好的文字" });
          const biz = h("input", { type: "text", testid: "report-promote-biz", placeholder: "biz_id" });
          const ok = h("button", { type: "submit", class: "small", testid: "report-promote-confirm" }, "提交");
          const form = h("form", null, field("更好的语料 content", content), field("biz_id", biz), h("div", { class: "actions" }, ok, cancel));
          form.addEventListener(
            "submit",
            busy(ok, async (ev) => {
              ev.preventDefault();
              if (!content.value.trim()) throw new Error("请填写更好的语料内容。");
              await resolve(r, card, { action: "promote", content: content.value, biz_id: biz.value.trim() });
              formHolder.hidden = true;
            })
          );
          return form;
        });
      });
      btn("relabel", "重新标注…", "", async () => {
        inlineForm(card, formHolder, (cancel) => {
          const ok = h("button", { type: "submit", class: "small", testid: "report-relabel-confirm" }, "提交");
          let control;
          let body;
          if (r.tier === "generated") {
            control = h(
              "select",
              { testid: "report-relabel-label" },
              h("option", { value: "different" }, "different：两个提示词不应共用答案"),
              h("option", { value: "same" }, "same：可以共用答案")
            );
            body = () => ({ action: "relabel", label: control.value });
          } else {
            control = h("input", { type: "text", testid: "report-relabel-biz", placeholder: "留空：没有语料应当回答" });
            body = () => ({ action: "relabel", expected_biz_id: control.value.trim() || null });
          }
          const label = r.tier === "generated" ? "标签 label" : "应当回答的语料 expected_biz_id";
          const form = h("form", null, h("p", { class: "muted" }, "重新标注会作为校准的标注数据（calibration 的 relabelled 来源）。"), field(label, control), h("div", { class: "actions" }, ok, cancel));
          form.addEventListener(
            "submit",
            busy(ok, async (ev) => {
              ev.preventDefault();
              await resolve(r, card, body());
              formHolder.hidden = true;
            })
          );
          return form;
        });
      });
      return card;
    }

    async function loadPage() {
      const query = {
        status: els.status.value || null,
        tier: els.tier.value || null,
        verdict: els.verdict.value || null,
        cursor: state.cursors[state.index],
        limit: PAGE_SIZE,
      };
      const r = await api("GET", "/v1/feedback", { query });
      state.next = r.next_cursor === null || r.next_cursor === undefined ? null : String(r.next_cursor);
      const list = clear(els.list);
      if (!r.items.length) list.append(h("p", { class: "muted", testid: "feedback-empty" }, "没有符合条件的反馈。"));
      for (const item of r.items) list.append(reportCard(item));
      els.pageInfo.textContent = `第 ${state.index + 1} 页（每页最多 ${PAGE_SIZE} 条）`;
      els.prev.disabled = state.index === 0;
      els.next.disabled = state.next === null;
    }

    function select(testid, options, value) {
      return h("select", { testid }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
    }

    function build(section) {
      els = {
        status: select("feedback-status", [["open", "待处理 open"], ["confirmed", "已确认 confirmed"], ["dismissed", "已驳回 dismissed"], ["", "全部"]], "open"),
        tier: select("feedback-tier", [["", "全部"], ["curated", "精选语料 curated"], ["generated", "已存答案 generated"], ["llm", "LLM llm"]], ""),
        verdict: select("feedback-verdict", [["", "全部"], ["wrong", "错误 wrong"], ["good", "正确 good"]], ""),
        list: h("div", { class: "reports", testid: "feedback-list" }),
        prev: h("button", { type: "button", class: "secondary", testid: "feedback-prev" }, "上一页"),
        next: h("button", { type: "button", class: "secondary", testid: "feedback-next" }, "下一页"),
        pageInfo: h("span", { class: "muted" }),
      };
      const reload = guard(async () => {
        state.cursors = [0];
        state.index = 0;
        await loadPage();
      });
      for (const s of [els.status, els.tier, els.verdict]) s.addEventListener("change", reload);
      const refresh = h("button", { type: "button", class: "secondary", testid: "feedback-refresh" }, "刷新");
      refresh.addEventListener("click", busy(refresh, loadPage));
      cursorPager(els, state, loadPage);
      section.append(
        h("h2", null, "反馈"),
        h("p", { class: "muted" }, "调用方报告的错误（或正确）回答。处理方式：删除条目、屏蔽、驳回、提升更好的语料、重新标注。"),
        h("div", { class: "card row" }, field("状态", els.status), field("层", els.tier), field("结论", els.verdict), h("div", { class: "actions" }, refresh)),
        els.list,
        h("div", { class: "pager" }, els.prev, els.pageInfo, els.next)
      );
    }

    return { build, show: loadPage };
  }

  // ==== 统计 stats: GET /v1/stats/history as charts; auto-refresh off by default ==============================
  function statsPage() {
    const { lineChart, barChart, clockLabel } = chartKit();
    // 统计: GET /v1/stats/history drawn as SVG charts: hit rate per tier, latency percentiles per stage,
    // guard rejections by reason, LLM calls and tokens avoided. Auto-refresh is off by default.


    const STAGES = ["total", "embed", "search", "answer_cache", "llm"];
    const STAGE_NAMES = { total: "合计 total", embed: "嵌入 embed", search: "检索 search", answer_cache: "答案缓存 answer_cache", llm: "LLM llm" };
    const AUTO_MS = 10000;
    let els = null;
    let timer = null;
    let visible = false;
    let last = null;

    function stat(label, value, testid) {
      return h("div", { class: "stat", testid }, h("div", { class: "stat-value" }, value), h("div", { class: "stat-label" }, label));
    }

    function render(r) {
      last = r;
      const points = r.points || [];
      const xs = points.map((p) => p.ts);
      const short = xs.length > 1 && xs[xs.length - 1] - xs[0] < 600;
      const xLabel = (ts) => clockLabel(ts, short);
      const t = r.totals || {};
      const totals = clear(els.totals);
      const hits = (t.hit_curated || 0) + (t.hit_answers || 0);
      totals.append(
        stat("请求 requests", fmtNum(t.requests), "total-requests"),
        stat("精选命中 hit_curated", fmtNum(t.hit_curated), "total-hit-curated"),
        stat("答案缓存命中 hit_answers", fmtNum(t.hit_answers), "total-hit-answers"),
        stat("未命中 miss", fmtNum(t.miss), "total-miss"),
        stat("绕过 bypass", fmtNum(t.bypass), "total-bypass"),
        stat("命中率", t.requests ? fmtPct(hits / t.requests) : "—", "total-hit-rate"),
        stat("LLM 调用 llm_calls", fmtNum(t.llm_calls), "total-llm-calls"),
        stat("省下的 token tokens_avoided", fmtNum(t.tokens_avoided), "total-tokens-avoided")
      );
      const charts = clear(els.charts);
      charts.append(
        lineChart({
          title: "各层命中率（每个区间）",
          testid: "chart-hit-rate",
          spanGaps: true,
          xs,
          xFormat: xLabel,
          yMin: 0,
          yMax: 1,
          yFormat: (v) => Math.round(v * 100) + "%",
          series: [
            { name: "精选语料 curated", values: points.map((p) => p.hit_rate_curated) },
            { name: "已存答案 answers", values: points.map((p) => p.hit_rate_answers) },
          ],
        })
      );
      const stage = els.stage.value;
      const lat = (q) => points.map((p) => (p.latency_ms && p.latency_ms[stage] ? p.latency_ms[stage][q] : null));
      charts.append(
        lineChart({
          title: `延迟 ${STAGE_NAMES[stage]}（毫秒）`,
          testid: "chart-latency",
          spanGaps: true,
          xs,
          xFormat: xLabel,
          yMin: 0,
          yFormat: (v) => fmtNum(v, 0),
          series: [
            { name: "p50", values: lat("p50") },
            { name: "p90", values: lat("p90") },
            { name: "p99", values: lat("p99"), dashed: true },
          ],
        })
      );
      // p50/p90 of each stage in the most recent interval that saw requests
      const recent = [...points].reverse().find((p) => p.latency_ms && Object.values(p.latency_ms).some((v) => v && v.p50 !== null && v.p50 !== undefined));
      const bars = [];
      if (recent) {
        for (const st of STAGES) {
          const v = recent.latency_ms[st];
          if (!v || v.p50 === null || v.p50 === undefined) continue;
          bars.push({ label: `${st} p50`, value: v.p50, cls: "s0" }, { label: `${st} p90`, value: v.p90, cls: "s1" });
        }
      }
      charts.append(barChart({ title: "各阶段延迟 p50 / p90（最近一个有请求的区间）", testid: "chart-latency-stages", bars, format: fmtMs }));
      const rej = Object.entries(t.guard_rejections || {}).sort((a, b) => b[1] - a[1]);
      charts.append(
        barChart({
          title: "二次检查拒绝次数（按原因）",
          testid: "chart-guard",
          bars: rej.map(([reason, n]) => ({ label: reason, value: n })),
          format: (v) => fmtNum(v),
          empty: "此时间段没有被二次检查拒绝的命中",
        })
      );
      charts.append(
        lineChart({
          title: "每个区间的请求与 LLM 调用",
          testid: "chart-llm",
          xs,
          xFormat: xLabel,
          yMin: 0,
          yFormat: (v) => fmtNum(v, 0),
          series: [
            { name: "请求 requests", values: points.map((p) => p.requests) },
            { name: "LLM 调用 llm_calls", values: points.map((p) => p.llm_calls) },
            { name: "未命中 miss", values: points.map((p) => p.miss), dashed: true },
          ],
        })
      );
      charts.append(
        lineChart({
          title: "省下的 token（每个区间）",
          testid: "chart-tokens",
          xs,
          xFormat: xLabel,
          yMin: 0,
          yFormat: (v) => fmtNum(v, 0),
          series: [{ name: "tokens_avoided", values: points.map((p) => p.tokens_avoided), cls: "s3" }],
        })
      );
      els.updated.textContent = `更新于 ${new Date().toLocaleTimeString("zh-CN", { hour12: false })} · 区间 ${r.interval_s ?? "?"} 秒 · ${points.length} 个点`;
    }

    async function load() {
      const r = await api("GET", "/v1/stats/history", { query: { minutes: els.minutes.value } });
      render(r);
    }

    function schedule() {
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      if (!visible || !els.auto.checked) return;
      timer = setTimeout(async () => {
        timer = null;
        try {
          await load();
        } catch (e) {
          showError(e);
          els.auto.checked = false; // stop hammering a failing endpoint
        }
        schedule();
      }, AUTO_MS);
    }

    function build(section) {
      els = {
        minutes: h(
          "select",
          { testid: "stats-minutes" },
          [
            [15, "最近 15 分钟"],
            [60, "最近 1 小时"],
            [180, "最近 3 小时"],
            [1440, "最近 24 小时"],
          ].map(([v, label]) => h("option", { value: String(v), selected: v === 60 }, label))
        ),
        stage: h("select", { testid: "stats-stage" }, STAGES.map((s) => h("option", { value: s }, STAGE_NAMES[s]))),
        auto: h("input", { type: "checkbox", testid: "stats-auto" }),
        totals: h("div", { class: "stats-grid", testid: "stats-totals" }),
        charts: h("div", { class: "charts", testid: "stats-charts" }),
        updated: h("span", { class: "muted", testid: "stats-updated" }),
      };
      const refresh = h("button", { type: "button", testid: "stats-refresh" }, "刷新");
      refresh.addEventListener("click", busy(refresh, load));
      els.minutes.addEventListener("change", guard(load));
      els.stage.addEventListener("change", guard(() => last && render(last)));
      els.auto.addEventListener("change", guard(schedule));
      section.append(
        h("h2", null, "统计"),
        h(
          "div",
          { class: "card row" },
          h("label", { class: "field" }, h("span", { class: "field-label" }, "时间范围"), els.minutes),
          h("label", { class: "field" }, h("span", { class: "field-label" }, "延迟阶段"), els.stage),
          h("label", { class: "check" }, els.auto, ` 自动刷新（每 ${AUTO_MS / 1000} 秒）`),
          h("div", { class: "actions" }, refresh),
          els.updated
        ),
        els.totals,
        els.charts
      );
    }

    async function show() {
      visible = true;
      await load();
      schedule();
    }

    function hide() {
      visible = false;
      schedule();
    }

    return { build, show, hide };
  }

  // ==== 校准 calibration: run-time thresholds, a calibration run's curves and recommendation ==================
  function calibrationPage() {
    const { lineChart, barChart, clockLabel } = chartKit();
    // 校准: the thresholds in force (GET/PUT/DELETE /v1/settings/threshold) and a calibration run
    // (POST /v1/calibration/runs) plotted as precision and hit-rate curves, with the recommendation.


    const TIERS = {
      curated: { name: "精选语料 curated", setting: "SIMILARITY_THRESHOLD" },
      answer: { name: "答案缓存 answer", setting: "ANSWER_CACHE_THRESHOLD" },
    };
    let els = null;
    let current = null;

    function renderSettings(s) {
      current = s;
      const out = clear(els.settings);
      for (const [tier, meta] of Object.entries(TIERS)) {
        const v = s[tier];
        if (!v) continue;
        const input = h("input", { type: "number", min: 0, max: 1, step: 0.01, testid: `calib-${tier}-input`, placeholder: String(v.value) });
        const set = h("button", { type: "submit", class: "small", testid: `calib-${tier}-set` }, "设置");
        const reset = h("button", { type: "button", class: "small secondary", testid: `calib-${tier}-reset` }, "重置为默认");
        const form = h("form", { class: "row" }, field("新的值", input), h("div", { class: "actions" }, set, reset));
        form.addEventListener(
          "submit",
          busy(set, async (ev) => {
            ev.preventDefault();
            const value = num(input);
            if (value === null || !(value > 0 && value <= 1)) throw new Error("阈值须在 (0, 1] 之间，例如 0.8。");
            renderSettings(await api("PUT", "/v1/settings/threshold", { body: { [tier]: value } }));
            showStatus(`${meta.setting} 已设为 ${value}（运行时，重启后恢复环境变量的值）`, "ok");
          })
        );
        reset.addEventListener(
          "click",
          busy(reset, async () => {
            renderSettings(await api("DELETE", "/v1/settings/threshold", { query: { tier } }));
            showStatus(`${meta.setting} 已重置为默认值`, "ok");
          })
        );
        out.append(
          h(
            "div",
            { class: "card setting", testid: `calib-${tier}` },
            h("h3", null, meta.name, " ", h("span", { class: "muted mono" }, meta.setting)),
            h(
              "dl",
              { class: "kv" },
              h("dt", null, "当前值"),
              h("dd", { class: "mono big", testid: `calib-${tier}-value` }, fmtNum(v.value, 4)),
              h("dt", null, "默认值 (环境变量)"),
              h("dd", { class: "mono" }, fmtNum(v.default, 4)),
              h("dt", null, "来源"),
              h("dd", { testid: `calib-${tier}-source`, data: { source: v.source } }, v.source === "runtime" ? "runtime（运行时设置）" : "environment（环境变量）"),
              h("dt", null, "更新"),
              h("dd", null, v.updated_at ? `${fmtTime(v.updated_at)} · ${v.updated_by || "—"}` : "—")
            ),
            form
          )
        );
      }
    }

    async function loadSettings() {
      renderSettings(await api("GET", "/v1/settings/threshold"));
    }

    function renderRun(r) {
      const out = clear(els.result);
      const src = r.sources || {};
      out.append(
        h(
          "p",
          { class: "muted", testid: "calib-sources" },
          `目标精确率 target_precision = ${r.target_precision}；标注来源：labelled ${src.labelled ?? 0}，feedback ${src.feedback ?? 0}，relabelled ${src.relabelled ?? 0}`
        )
      );
      for (const tier of r.tiers || []) {
        const meta = TIERS[tier.tier] || { name: tier.tier, setting: tier.setting };
        const rec = tier.recommendation || {};
        const rows = tier.rows || [];
        const cur = (r.current && r.current[tier.tier]) ?? (current && current[tier.tier] ? current[tier.tier].value : null);
        const xs = rows.map((x) => x.threshold);
        const markers = [];
        if (Number.isFinite(rec.threshold)) markers.push({ x: rec.threshold, label: `推荐 ${fmtNum(rec.threshold, 3)}`, cls: "rec" });
        if (Number.isFinite(cur)) markers.push({ x: cur, label: `当前 ${fmtNum(cur, 3)}`, cls: "cur" });
        const chart = lineChart({
          title: `${meta.name}：精确率与命中率随阈值的变化`,
          testid: `calib-chart-${tier.tier}`,
          xs,
          yMin: 0,
          yMax: 1,
          yFormat: (v) => Math.round(v * 100) + "%",
          xFormat: (v) => fmtNum(v, 2),
          markers,
          series: [
            { name: "精确率 precision（二次检查关）", values: rows.map((x) => x.precision), cls: "s0" },
            { name: "命中率 hit_rate（二次检查关）", values: rows.map((x) => x.hit_rate), cls: "s1" },
            { name: "精确率（二次检查开）", values: rows.map((x) => x.guarded_precision), cls: "s0", dashed: true },
            { name: "命中率（二次检查开）", values: rows.map((x) => x.guarded_hit_rate), cls: "s1", dashed: true },
          ],
        });
        const apply = h("button", { type: "button", testid: `calib-apply-${tier.tier}`, disabled: !Number.isFinite(rec.threshold) }, "应用");
        apply.addEventListener(
          "click",
          busy(apply, async () => {
            if (!Number.isFinite(rec.threshold)) return;
            if (!confirmed(`把 ${meta.setting} 设为推荐值 ${rec.threshold}？（运行时生效，记入审计日志）`)) return;
            renderSettings(await api("PUT", "/v1/settings/threshold", { body: { [tier.tier]: rec.threshold } }));
            showStatus(`${meta.setting} 已设为 ${rec.threshold}`, "ok");
          })
        );
        const { table: t, tbody } = table(["阈值", "精确率", "召回率", "命中率", "精确率（检查开）", "命中率（检查开）"], `calib-rows-${tier.tier}`);
        for (const x of rows) {
          tbody.append(
            h(
              "tr",
              { class: Number.isFinite(rec.threshold) && Math.abs(x.threshold - rec.threshold) < 1e-9 ? "chosen" : "" },
              h("td", { class: "mono" }, fmtNum(x.threshold, 3)),
              h("td", null, fmtPct(x.precision)),
              h("td", null, fmtPct(x.recall)),
              h("td", null, fmtPct(x.hit_rate)),
              h("td", null, fmtPct(x.guarded_precision)),
              h("td", null, fmtPct(x.guarded_hit_rate))
            )
          );
        }
        out.append(
          h(
            "div",
            { class: "card", testid: `calib-tier-${tier.tier}` },
            h("h3", null, meta.name, " ", h("span", { class: "muted mono" }, `${tier.setting || meta.setting} · ${tier.prompts ?? "?"} 个标注提示词`)),
            h(
              "p",
              { class: "recommendation", testid: `calib-rec-${tier.tier}` },
              Number.isFinite(rec.threshold)
                ? `推荐阈值 ${fmtNum(rec.threshold, 3)}：精确率 ${fmtPct(rec.precision)}，命中率 ${fmtPct(rec.hit_rate)}，召回率 ${fmtPct(rec.recall)}`
                : "没有满足目标精确率的阈值",
              rec.message ? h("span", { class: "muted" }, " — " + rec.message) : null
            ),
            chart,
            h("div", { class: "actions" }, apply),
            h("details", null, h("summary", null, `逐个阈值的结果（${rows.length} 行）`), t)
          )
        );
      }
    }

    async function run() {
      const target = num(els.target);
      if (target === null || !(target > 0 && target <= 1)) throw new Error("目标精确率须在 (0, 1] 之间，例如 0.98。");
      showStatus("正在运行校准（需要几秒）…", "info");
      els.result.dataset.state = "running";
      const t0 = performance.now();
      try {
        const r = await api("POST", "/v1/calibration/runs", { body: { target_precision: target, include_feedback: els.feedback.checked } });
        renderRun(r);
        els.result.dataset.state = "done";
        showStatus(`校准完成，用时 ${((performance.now() - t0) / 1000).toFixed(1)} 秒`, "ok");
      } catch (e) {
        els.result.dataset.state = "failed";
        throw e;
      }
    }

    function build(section) {
      els = {
        settings: h("div", { class: "columns", testid: "calib-settings" }),
        target: h("input", { type: "number", min: 0.5, max: 1, step: 0.005, value: "0.98", testid: "calib-target" }),
        feedback: h("input", { type: "checkbox", checked: true, testid: "calib-include-feedback" }),
        result: h("div", { testid: "calib-result" }),
      };
      const runBtn = h("button", { type: "button", testid: "calib-run" }, "运行校准");
      runBtn.addEventListener("click", busy(runBtn, run));
      const refresh = h("button", { type: "button", class: "small secondary", testid: "calib-refresh" }, "刷新");
      refresh.addEventListener("click", busy(refresh, loadSettings));
      section.append(
        h("h2", null, "校准"),
        h("div", { class: "card-head" }, h("h3", null, "当前阈值"), refresh),
        h("p", { class: "muted" }, "运行时设置立即生效，覆盖环境变量 SIMILARITY_THRESHOLD / ANSWER_CACHE_THRESHOLD；重置后恢复环境变量的值。"),
        els.settings,
        h(
          "div",
          { class: "card row" },
          field("目标精确率 target_precision", els.target),
          h("label", { class: "check" }, els.feedback, " 包含反馈标注 include_feedback"),
          h("div", { class: "actions" }, runBtn)
        ),
        els.result
      );
    }

    return { build, show: loadSettings };
  }

  // ==== entry: the admin key form, hash routing, a last-resort error handler ================================
  // The console's entry: the admin key form, hash routing between the six pages (each page builds
  // itself the first time it is shown and loads its data every time it is shown), and a last-resort
  // handler so that no error goes unseen.


  // each page is made when first shown: only the shared code and that page are compiled at load
  const PAGE_FACTORIES = {
    playground: playgroundPage,
    corpus: corpusPage,
    answers: answersPage,
    feedback: feedbackPage,
    stats: statsPage,
    calibration: calibrationPage,
  };
  const PAGES = {};
  function pageOf(name) {
    if (!PAGES[name]) PAGES[name] = PAGE_FACTORIES[name]();
    return PAGES[name];
  }
  const DEFAULT_PAGE = "playground";
  const built = new Set();
  let current = null;

  function keyState() {
    const state = document.getElementById("key-state");
    state.textContent = getKey() ? "已设置（仅保存在本标签页的 sessionStorage）" : "未设置";
  }

  function setupKeyForm() {
    const form = document.getElementById("key-form");
    const input = document.getElementById("admin-key");
    input.value = getKey();
    form.addEventListener(
      "submit",
      guard((ev) => {
        ev.preventDefault();
        setKey(input.value.trim());
        keyState();
        showStatus(getKey() ? "管理密钥已保存，之后的请求都会带上它。" : "管理密钥已清空。", "ok");
        if (current) show(current, true);
      })
    );
    document.getElementById("admin-key-clear").addEventListener(
      "click",
      guard(() => {
        input.value = "";
        setKey("");
        keyState();
        showStatus("管理密钥已清空。", "ok");
      })
    );
    keyState();
  }

  function pageFromHash() {
    const name = (window.location.hash || "").replace(/^#/, "").split("?")[0];
    return Object.prototype.hasOwnProperty.call(PAGE_FACTORIES, name) ? name : DEFAULT_PAGE;
  }

  async function show(name, reload) {
    const page = pageOf(name);
    const section = document.getElementById("page-" + name);
    if (current && current !== name) {
      const prev = PAGES[current];
      document.getElementById("page-" + current).hidden = true;
      if (prev.hide) prev.hide();
      clearStatus();
    }
    for (const a of document.querySelectorAll("#tabs a")) {
      a.classList.toggle("active", a.dataset.page === name);
      if (a.dataset.page === name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    section.hidden = false;
    const changed = current !== name;
    current = name;
    if (!built.has(name)) {
      page.build(section);
      built.add(name);
    }
    if (changed || reload) await page.show();
  }

  function route() {
    show(pageFromHash(), false).catch(showError);
  }

  window.addEventListener("unhandledrejection", (ev) => {
    ev.preventDefault();
    showError(ev.reason instanceof Error ? ev.reason : new Error(String(ev.reason)));
  });

  function start() {
    setupKeyForm();
    window.addEventListener("hashchange", route);
    if (!window.location.hash) history.replaceState(null, "", "#" + DEFAULT_PAGE);
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
