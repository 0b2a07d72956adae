// 统计: GET /v1/stats/history drawn as SVG charts: hit rate per tier, latency percentiles per stage,
// guard rejections by reason, LLM calls and tokens avoided. Auto-refresh is off by default.
import { api } from "../api.js";
import { showError, guard, busy, h, clear } from "../dom.js";
import { fmtNum, fmtPct, fmtMs, clockLabel } from "../format.js";
import { lineChart, barChart } from "../charts.js";

export function statsPage() {
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
