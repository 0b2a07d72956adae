// DOM building and the page's shared controls: h() (createElement + textContent only: every value
// shown is untrusted text, never innerHTML), the status area, error-safe handlers (guard, busy), form
// fields, tables, long texts and a cursor pager. Nothing runs at import: node's tests can import the
// modules built on this one.

// -- the status area ----------------------------------------------------------------------------------
let statusTimer = null;

export function showStatus(message, kind = "info") {
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

export function clearStatus() {
  const el = document.getElementById("status");
  if (!el) return;
  el.hidden = true;
  el.textContent = "";
  el.dataset.kind = "";
}

export function showError(err) {
  const message = err instanceof Error ? err.message : String(err);
  showStatus(message, "error");
}

/** Wraps an event handler: a thrown error or a rejected promise is shown, never left unhandled. */
export function guard(fn) {
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
export function busy(button, fn) {
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

// -- DOM building -------------------------------------------------------------------------------------
/**
 * h("div", {class, testid, data: {...}, on: {click: fn}, ...properties or attributes}, ...children).
 * Children: nodes, or anything else as text (null/undefined/false are skipped).
 */
export function h(tag, attrs, ...children) {
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

export function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A labelled form field: label text, then the control. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), control, hint ? h("span", { class: "hint" }, hint) : null);
}

export function table(headers, testid) {
  const tbody = h("tbody");
  const t = h("table", { class: "grid", testid }, h("thead", null, h("tr", null, headers.map((x) => h("th", null, x)))), tbody);
  return { table: t, tbody };
}

/** A long text shown shortened, with a toggle to see all of it. */
export function longText(text, max = 80) {
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

// -- form values, paging, confirmation ----------------------------------------------------------------
/** A number input's value: null when empty, NaN when not a number. */
export function num(input) {
  const s = String(input.value || "").trim();
  if (s === "") return null;
  const v = Number(s);
  return Number.isFinite(v) ? v : NaN;
}

/**
 * Previous / next over a cursor-paginated list (stored answers, feedback): state.cursors holds the
 * cursor of each page seen, state.index the page shown, state.next the server's next_cursor.
 */
export function cursorPager(els, state, loadPage) {
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

export function confirmed(message) {
  return window.confirm(message);
}
