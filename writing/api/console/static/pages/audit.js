// 审计日志: who changed what (GET /v1/audit: oldest first by cursor, so the page starts from a time
// window, the last 7 days by default), each journaled change with an undo button
// (POST /v1/audit/{id}/undo), and the changes a crash or a store failure interrupted (the journal's
// interrupted entries have no audit entry: they are listed apart).
import { api } from "../api.js";
import { showStatus, guard, busy, h, clear, field, table, longText, cursorPager, confirmed } from "../dom.js";
import { fmtTime, fmtAgo } from "../format.js";

// the journaled actions (docs/operations.md, Undo); the server answers 409 for any other
const UNDOABLE = new Set([
  "corpus.add",
  "corpus.import",
  "corpus.edit",
  "corpus.delete",
  "answers.delete",
  "answers.delete_where",
  "answers.promote",
  "settings.threshold",
  "settings.threshold_reset",
  "feedback.confirm",
  "feedback.dismiss",
  "feedback.block",
  "feedback.delete_entry",
  "feedback.promote",
  "feedback.relabel",
  "labels.delete",
]);
const WINDOWS = [
  ["86400", "最近 1 天"],
  ["604800", "最近 7 天"],
  ["2592000", "最近 30 天"],
  ["", "全部"],
];

export function undoSummary(r) {
  const parts = [`已撤销 ${r.action}（审计记录 ${r.audit_id}）：恢复 ${r.applied.length} 项`];
  if (r.conflicts.length) parts.push(`${r.conflicts.length} 项之后已有改动，未覆盖`);
  return parts.join("，");
}

export function auditPage() {
  const PAGE_SIZE = 50;
  const state = { cursors: [0], index: 0, next: null, filters: { since: "604800" } };
  let els = null;

  async function undo(id, action, button) {
    if (!confirmed(`确定撤销 ${action}（${id}）？之后又被改动的内容不会被覆盖。`)) return;
    const r = await api("POST", `/v1/audit/${encodeURIComponent(id)}/undo`);
    showStatus(undoSummary(r), r.conflicts.length ? "warn" : "ok");
    const conflicts = clear(els.conflicts);
    conflicts.hidden = !r.conflicts.length;
    for (const c of r.conflicts) conflicts.append(h("li", { testid: "audit-conflict" }, `${c.target}：${c.reason}`));
    button.disabled = true;
    await Promise.all([loadPage(), loadInterrupted()]);
  }

  function undoButton(id, action) {
    const b = h("button", { type: "button", class: "small", testid: "audit-undo", data: { id } }, "撤销");
    b.addEventListener("click", busy(b, () => undo(id, action, b)));
    return b;
  }

  async function loadPage() {
    const cursor = state.cursors[state.index];
    const query = { cursor, limit: PAGE_SIZE, action: state.filters.action || null, since: state.filters.since || null };
    const r = await api("GET", "/v1/audit", { query });
    state.next = r.next_cursor === null || r.next_cursor === undefined ? null : String(r.next_cursor);
    const tbody = clear(els.tbody);
    if (!r.items.length) tbody.append(h("tr", { testid: "audit-empty" }, h("td", { colspan: 6, class: "muted" }, "这段时间没有管理操作。")));
    for (const e of r.items) {
      const id = String(e.id);
      tbody.append(
        h(
          "tr",
          { testid: "audit-row", data: { id, action: e.action } },
          h("td", { title: fmtTime(e.ts) }, fmtTime(e.ts)),
          h("td", { class: "mono" }, e.actor),
          h("td", { class: "mono" }, e.action),
          h("td", { class: "mono content" }, longText(e.target, 40)),
          h("td", { class: "content" }, longText(JSON.stringify(e.detail), 80)),
          h("td", { class: "row-actions" }, UNDOABLE.has(e.action) ? undoButton(id, e.action) : null)
        )
      );
    }
    els.pageInfo.textContent = `第 ${state.index + 1} 页（按时间从早到晚，每页最多 ${PAGE_SIZE} 条）`;
    els.prev.disabled = state.index === 0;
    els.next.disabled = state.next === null;
  }

  async function loadInterrupted() {
    const r = await api("GET", "/v1/audit/journal", { query: { state: "interrupted", limit: 100 } });
    const tbody = clear(els.interrupted);
    els.interruptedCard.hidden = !r.items.length;
    for (const e of r.items) {
      const id = String(e.id);
      tbody.append(
        h(
          "tr",
          { testid: "interrupted-row", data: { id } },
          h("td", { title: fmtTime(e.ts) }, fmtAgo(e.ts)),
          h("td", { class: "mono" }, e.actor),
          h("td", { class: "mono" }, e.action),
          h("td", { class: "mono content" }, longText(e.target, 40)),
          h("td", { class: "row-actions" }, UNDOABLE.has(e.action) ? undoButton(id, e.action) : null)
        )
      );
    }
  }

  function build(section) {
    const { table: t, tbody } = table(["时间", "操作者", "操作", "对象", "详情", ""], "audit-table");
    const { table: ti, tbody: interrupted } = table(["开始于", "操作者", "操作", "对象", ""], "interrupted-table");
    const since = h("select", { testid: "audit-since" }, WINDOWS.map(([v, label]) => h("option", { value: v }, label)));
    since.value = state.filters.since;
    els = {
      tbody,
      interrupted,
      since,
      action: h("input", { type: "text", placeholder: "如 corpus.delete", testid: "audit-action", maxlength: 64 }),
      prev: h("button", { type: "button", class: "secondary", testid: "audit-prev" }, "上一页"),
      next: h("button", { type: "button", class: "secondary", testid: "audit-next" }, "下一页"),
      pageInfo: h("span", { class: "muted", testid: "audit-page-info" }),
      conflicts: h("ul", { class: "conflicts", testid: "audit-conflicts", hidden: true }),
    };
    els.interruptedCard = h(
      "div",
      { class: "card", testid: "interrupted-card", hidden: true },
      h("h3", null, "中断的变更"),
      h("p", { class: "muted" }, "写下意图后没有写下结果的变更（进程退出或存储故障），可能只完成了一部分；撤销会移除已完成的部分。"),
      ti
    );
    const form = h(
      "form",
      { class: "row" },
      field("时间", since),
      field("操作", els.action),
      h("div", { class: "actions" }, h("button", { type: "submit", testid: "audit-filter" }, "筛选"))
    );
    form.addEventListener(
      "submit",
      guard(async (ev) => {
        ev.preventDefault();
        const action = els.action.value.trim();
        if (action && !/^[a-z_.]+$/.test(action)) throw new Error("操作名只含小写字母、“_”和“.”，如 corpus.delete。");
        state.filters = { since: since.value, action };
        state.cursors = [0];
        state.index = 0;
        await loadPage();
      })
    );
    cursorPager(els, state, loadPage);
    section.append(
      h("h2", null, "审计日志"),
      h("p", { class: "muted" }, "每一次管理操作：谁、何时、做了什么。语料、已存答案、阈值、反馈处理（确认、驳回、屏蔽）和标注的改动可以撤销；之后又被改动的内容不会被覆盖，而是列为冲突。"),
      els.interruptedCard,
      h("div", { class: "card" }, form, els.conflicts, t, h("div", { class: "pager" }, els.prev, els.pageInfo, els.next))
    );
  }

  return { build, show: () => Promise.all([loadPage(), loadInterrupted()]) };
}
