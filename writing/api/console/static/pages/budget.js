// 错误预算: per budgeted tier, the wrong-hit rate the evidence shows with its upper bound, the threshold
// planned and why, whether it is in force (GET /v1/budget); verification's counts; re-plan now
// (POST /v1/budget/replan); the latest verified labels (GET /v1/evidence). docs/error-budget.md.
import { api } from "../api.js";
import { busy, h, clear, table } from "../dom.js";
import { fmtTime, fmtPct, fmtNum } from "../format.js";

const REASONS = {
  no_evidence: "证据不足，沿用配置的阈值",
  within_budget: "证据表明此阈值在预算之内",
  budget_not_shown: "任何阈值都无法证明在预算之内，取上限",
};
const TIERS = { curated: "精选语料", answer: "已存答案" };
const OUTCOMES = {
  verified: "已判定",
  capped: "超出每分钟上限",
  paused: "暂停时抽中",
  dropped: "队列已满",
  failed: "判定调用失败",
  unclear: "无明确答复",
  unsaved: "未能保存",
};

// one line that says where a tier stands (also used by the tests)
export function tierSummary(t) {
  const state = t.applied ? "已生效" : t.mode === "shadow" ? "仅预览（shadow）" : "未生效";
  return (
    `${TIERS[t.tier] || t.tier}：预算 ${fmtPct(t.budget)}，阈值 ${fmtNum(t.threshold)}（${state}；配置值 ${fmtNum(t.configured)}），` +
    `错误率估计 ${fmtPct(t.bound.estimate)}，上界 ${fmtPct(t.bound.upper)}（${t.bound.labels} 条标注）。${REASONS[t.reason] || t.reason}`
  );
}

export function budgetPage() {
  let els = null;

  function tierCard(t) {
    return h(
      "div",
      { class: "card", testid: "budget-tier", data: { tier: t.tier } },
      h("h3", null, TIERS[t.tier] || t.tier),
      h("p", { testid: "budget-summary" }, tierSummary(t)),
      h(
        "p",
        { class: "muted" },
        `判定标注 ${t.judge_labels} 条，管理员确认的错误反馈 ${t.admin_labels} 条；有自己阈值的条目 ${t.entries_with_own_threshold} 个；` +
          `阈值范围 ${fmtNum(t.bounds[0])}–${fmtNum(t.bounds[1])}；规划于 ${fmtTime(t.planned_at)}。`
      )
    );
  }

  async function load() {
    const r = await api("GET", "/v1/budget");
    const tiers = clear(els.tiers);
    if (!r.tiers.length) {
      tiers.append(h("p", { class: "muted", testid: "budget-off" }, "没有设置错误预算（ERROR_BUDGET_CURATED、ERROR_BUDGET_ANSWER 为 0）。"));
    }
    for (const t of r.tiers) tiers.append(tierCard(t));
    els.replan.disabled = !r.tiers.length;
    const v = r.verification;
    const counts = Object.entries(v.outcomes)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${OUTCOMES[k] || k} ${n}`);
    els.verify.textContent = v.on
      ? `抽样判定已开启：本分钟 ${v.used_this_minute}/${v.per_minute} 次${v.paused ? "，当前暂停（LLM 故障或繁忙）" : ""}。${counts.join("，") || "尚未抽中候选。"}`
      : "抽样判定未开启（VERIFY=false）。";
    const e = await api("GET", "/v1/evidence", { query: { limit: 50 } });
    const tbody = clear(els.evidence);
    if (!e.items.length) tbody.append(h("tr", null, h("td", { colspan: 6, class: "muted" }, "还没有标注。")));
    for (const x of e.items) {
      tbody.append(
        h(
          "tr",
          { testid: "evidence-row" },
          h("td", null, fmtTime(x.ts)),
          h("td", null, TIERS[x.tier] || x.tier),
          h("td", { class: "mono" }, String(x.entry_id)),
          h("td", null, fmtNum(x.similarity, 4)),
          h("td", null, x.wrong ? "错误" : "正确"),
          h("td", { class: "mono" }, x.tenant)
        )
      );
    }
  }

  function build(section) {
    const { table: t, tbody } = table(["时间", "层", "条目", "相似度", "判定", "租户"], "evidence-table");
    els = {
      tiers: h("div", { testid: "budget-tiers" }),
      verify: h("p", { testid: "budget-verification" }),
      replan: h("button", { type: "button", testid: "budget-replan" }, "立即重新规划"),
      evidence: tbody,
    };
    els.replan.addEventListener(
      "click",
      busy(els.replan, async () => {
        await api("POST", "/v1/budget/replan");
        await load();
      })
    );
    section.append(
      h("h2", null, "错误预算"),
      h("p", { class: "muted" }, "每层命中中允许出错的比例，由服务自己维持：抽样请 LLM 判定命中是否满足请求，据此把阈值调到上界仍在预算内的最低值。"),
      els.tiers,
      h("div", { class: "card" }, h("h3", null, "抽样判定"), els.verify, h("div", { class: "actions" }, els.replan)),
      h("div", { class: "card" }, h("h3", null, "最近的标注（最早的 50 条）"), t)
    );
  }

  return { build, show: load };
}
