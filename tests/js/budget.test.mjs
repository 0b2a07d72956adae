// The error-budget page's summary line (pages/budget.js): where a tier stands, in Chinese.
import assert from "node:assert/strict";
import test from "node:test";

import { tierSummary } from "../../writing/api/console/static/pages/budget.js";

const tier = {
  tier: "curated",
  budget: 0.02,
  mode: "enforce",
  threshold: 0.815,
  configured: 0.75,
  applied: true,
  reason: "within_budget",
  bound: { estimate: 0.0042, upper: 0.0187, labels: 612, effective: 580.5 },
};

test("tierSummary: an applied plan within the budget", () => {
  assert.equal(
    tierSummary(tier),
    "精选语料：预算 2.0%，阈值 0.815（已生效；配置值 0.750），错误率估计 0.4%，上界 1.9%（612 条标注）。证据表明此阈值在预算之内"
  );
});

test("tierSummary: shadow mode and no evidence yet", () => {
  const shadow = { ...tier, tier: "answer", mode: "shadow", applied: false, reason: "no_evidence", threshold: 0.92, configured: 0.92 };
  assert.match(tierSummary(shadow), /^已存答案：.*仅预览（shadow）.*证据不足，沿用配置的阈值$/);
});
