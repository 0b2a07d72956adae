// 反馈: reports from callers (POST /v1/feedback), filtered by status (open by default), and their
// resolution: delete the entry, block, dismiss, promote a better passage, relabel.
import { api } from "../api.js";
import { showStatus, guard, busy, h, clear, field, longText, cursorPager, confirmed } from "../dom.js";
import { fmtNum, fmtTime } from "../format.js";

export function feedbackPage() {
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
      // the to-do queue: open reports of wrong answers; "good" ones need no action (shown with 全部)
      verdict: select("feedback-verdict", [["", "全部"], ["wrong", "错误 wrong"], ["good", "正确 good"]], "wrong"),
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
