// 试验台: why a prompt hits or misses (POST /v1/explain), and a real request (POST /v1/generate) with
// the same Cache-Control and threshold override.
import { api } from "../api.js";
import { showStatus, busy, h, clear, field, longText, num } from "../dom.js";
import { fmtNum, fmtMs } from "../format.js";

export function playgroundPage() {
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
