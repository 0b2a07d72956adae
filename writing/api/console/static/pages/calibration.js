// 校准: the thresholds in force (GET/PUT/DELETE /v1/settings/threshold) and a calibration run
// (POST /v1/calibration/runs) plotted as precision and hit-rate curves, with the recommendation.
import { api } from "../api.js";
import { showStatus, busy, h, clear, field, table, num, confirmed } from "../dom.js";
import { fmtNum, fmtPct, fmtTime } from "../format.js";
import { lineChart } from "../charts.js";

export function calibrationPage() {
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
        `目标精确率 target_precision = ${r.target_precision}；标注来源：labelled ${src.labelled ?? 0}，已确认反馈 feedback ${src.feedback ?? 0}，relabelled ${src.relabelled ?? 0}；待审核报告 ${src.open_reports ?? 0} 条（不计入）`
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
              : "没有满足目标精确率的阈值：不要从这次运行中选取阈值，先改进语料、模型或标注数据"
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
        h("label", { class: "check" }, els.feedback, " 包含已审核的反馈（确认的报告与重新标注）include_feedback"),
        h("div", { class: "actions" }, runBtn)
      ),
      els.result
    );
  }

  return { build, show: loadSettings };
}
