// Small SVG charts drawn with createElementNS (no library): lines over a numeric x axis (with gaps for
// missing values and vertical markers), and horizontal bars. Colours come from CSS classes s0..s7.
// The scales (niceTicks, yDomain, xDomain, linearScale) are pure functions; nothing touches the DOM
// until a chart is drawn, so node's tests import this module as it is.
import { h } from "./dom.js";

// -- scales -------------------------------------------------------------------------------------------
/** About ``count`` round steps (1, 2, 2.5, 5 x 10^n) covering [min, max]: {lo, hi, ticks}. ``whole``
 * (counts): whole steps only, and no 2.5 below 10 (a count axis reads 0, 2, 4, not 0, 2.5, 5). */
export function niceTicks(min, max, count, whole = false) {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const steps = whole && mag < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = steps.map((m) => m * mag).find((st) => st >= raw) || raw;
  if (whole) step = Math.max(1, Math.round(step));
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { lo, hi, ticks };
}

/** The y range of a line chart: yMin / yMax when given, else [min(0, values), max(values)] widened to
 * round ticks (an empty chart: 0..1); the ticks over it. */
export function yDomain(values, yMin, yMax) {
  let lo = yMin !== undefined ? yMin : Math.min(0, ...(values.length ? values : [0]));
  let hi = yMax !== undefined ? yMax : Math.max(...(values.length ? values : [1]));
  const whole = values.length > 0 && values.every(Number.isInteger) && [yMin, yMax].every((b) => b === undefined || Number.isInteger(b));
  const ticks = niceTicks(lo, hi, 4, whole);
  if (yMin === undefined) lo = ticks.lo;
  if (yMax === undefined) hi = ticks.hi;
  if (!(hi > lo)) hi = lo + 1;
  return { lo, hi, ticks: ticks.ticks };
}

/** The x range of a line chart: the xs and the markers' xs, or xMin / xMax when given; a single point
 * gets half a unit each side. */
export function xDomain(xs, markerXs, xMin, xMax) {
  let lo = Math.min(...(xs.length ? xs : [0]), ...markerXs);
  let hi = Math.max(...(xs.length ? xs : [1]), ...markerXs);
  if (xMin !== undefined) lo = xMin;
  if (xMax !== undefined) hi = xMax;
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  return { lo, hi };
}

/** Maps [d0, d1] onto [r0, r1] linearly (r0 > r1 for a y axis drawn upwards). */
export function linearScale(d0, d1, r0, r1) {
  return (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
}

// -- drawing ------------------------------------------------------------------------------------------
const NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (null/undefined left out) and an optional text. */
function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  if (text !== undefined) el.textContent = String(text);
  return el;
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
export function lineChart(opts) {
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

  const { lo: yLo, hi: yHi, ticks: yTicks } = yDomain(values, opts.yMin, opts.yMax);
  const markerXs = (opts.markers || []).map((mk) => mk.x).filter((x) => Number.isFinite(x));
  const { lo: xLo, hi: xHi } = xDomain(xs, markerXs, opts.xMin, opts.xMax);
  const px = linearScale(xLo, xHi, m.l, W - m.r);
  const py = linearScale(yLo, yHi, H - m.b, m.t);

  // axes and grid
  const grid = s("g", { class: "grid-lines" });
  for (const t of yTicks) {
    if (t < yLo - 1e-9 || t > yHi + 1e-9) continue;
    grid.append(s("line", { x1: m.l, x2: W - m.r, y1: py(t), y2: py(t) }));
    grid.append(s("text", { x: m.l - 6, y: py(t) + 4, class: "tick y" }, yFormat(t)));
  }
  const nx = Math.min(6, Math.max(1, xs.length));
  const xticks = opts.xTicks || Array.from({ length: nx + 1 }, (_, i) => xLo + ((xHi - xLo) * i) / nx);
  xticks.forEach((t, i) => {
    // the last label ends at its tick, the first starts there: centred, either would be cut by the edge
    const edge = xticks.length > 1 && i === xticks.length - 1 ? " last" : i === 0 && xticks.length > 1 ? " first" : "";
    grid.append(s("text", { x: px(t), y: H - m.b + 18, class: "tick x" + edge }, xFormat(t)));
  });
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
export function barChart(opts) {
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
