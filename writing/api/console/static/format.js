// Formatting of numbers, percentages, durations and times for display. Pure: no DOM, no state, so
// node's tests import it as it is.

export function fmtNum(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

export function fmtPct(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return (v * 100).toFixed(1) + "%";
}

export function fmtMs(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + " ms";
}

/** Unix seconds (or milliseconds, when it is obviously so) to a local date-time string. */
export function fmtTime(ts) {
  if (!ts) return "—";
  const ms = ts > 1e12 ? ts : ts * 1000;
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** How long ago, in Chinese: "3 分钟前" (now: milliseconds, the clock's by default). */
export function fmtAgo(ts, now = Date.now()) {
  if (!ts) return "从未";
  const ms = ts > 1e12 ? ts : ts * 1000;
  let s = Math.max(0, (now - ms) / 1000);
  if (s < 60) return `${Math.floor(s)} 秒前`;
  s /= 60;
  if (s < 60) return `${Math.floor(s)} 分钟前`;
  s /= 60;
  if (s < 48) return `${Math.floor(s)} 小时前`;
  s /= 24;
  if (s < 60) return `${Math.floor(s)} 天前`;
  return `${Math.floor(s / 30)} 个月前`;
}

/** A clock-time label for unix seconds; withSeconds for short windows (where minutes repeat). */
export function clockLabel(ts, withSeconds) {
  const d = new Date(ts > 1e12 ? ts : ts * 1000);
  const p = (x) => String(x).padStart(2, "0");
  return p(d.getHours()) + ":" + p(d.getMinutes()) + (withSeconds ? ":" + p(d.getSeconds()) : "");
}
