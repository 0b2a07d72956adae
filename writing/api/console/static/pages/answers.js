// 已存答案: the answer cache. A cursor-paginated list (20 a page) with filters, delete, and promote
// into the curated corpus (biz_id asked in an inline form).
import { api } from "../api.js";
import { showStatus, guard, busy, h, clear, field, table, longText, cursorPager, confirmed } from "../dom.js";
import { fmtTime, fmtAgo } from "../format.js";

export function answersPage() {
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
