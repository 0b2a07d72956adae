// 语料: the curated corpus. Search (text or biz_id), a paginated table (offset, 20 a page), one
// passage's view, add, edit (PUT: re-embedded, a new id), delete, JSONL import in chunks, and stats.
import { api } from "../api.js";
import { showStatus, guard, busy, h, clear, field, table, longText, confirmed } from "../dom.js";

// 200 lines / 160 KB of the file per request: the JSON body ({"jsonl": ..., "first_line": n}) escapes
// quotes and newlines, and must stay under the server's MAX_BODY_BYTES (256 KB by default)
const IMPORT_MAX_LINES = 200;
const IMPORT_MAX_BYTES = 160 * 1000;

/**
 * Splits a JSONL file's lines into chunks of at most 200 lines and 160 KB (UTF-8):
 * {chunks: [{firstLine, lines, text}], lines}. Pure: node's tests import it.
 */
export function chunksOf(text, maxLines = IMPORT_MAX_LINES, maxBytes = IMPORT_MAX_BYTES) {
  const enc = new TextEncoder();
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const chunks = [];
  let cur = [];
  let bytes = 0;
  let first = 1;
  lines.forEach((line, i) => {
    const b = enc.encode(line).length + 1;
    if (cur.length && (cur.length >= maxLines || bytes + b > maxBytes)) {
      chunks.push({ firstLine: first, lines: cur.length, text: cur.join("\n") + "\n" });
      cur = [];
      bytes = 0;
    }
    if (!cur.length) first = i + 1;
    cur.push(line);
    bytes += b;
  });
  if (cur.length) chunks.push({ firstLine: first, lines: cur.length, text: cur.join("\n") + "\n" });
  return { chunks, lines: lines.length };
}

export function corpusPage() {
  const PAGE_SIZE = 20;
  const state = { offset: 0, text: "", bizId: "", total: null, count: 0 };
  let els = null;

  async function loadStats() {
    const s = await api("GET", "/v1/corpus/stats");
    const out = clear(els.stats);
    out.append(
      h(
        "dl",
        { class: "kv" },
        [
          ["集合 collection", s.collection],
          ["存储 store", s.store],
          ["条数 count", s.count],
          ["维度 dimension", s.dimension],
          ["只读 read_only", s.read_only ? "是（参考实现的集合，不可写）" : "否"],
          ["嵌入模型 model", s.model],
          ["池化 pooling", s.pooling],
          ["max_tokens", s.max_tokens],
        ]
          .filter(([, v]) => v !== undefined)
          .flatMap(([k, v]) => [h("dt", null, k), h("dd", { class: "mono", testid: "stat-" + k.split(" ").pop() }, String(v ?? "—"))])
      ),
      h(
        "p",
        { class: "muted", testid: "reembed-status" },
        `重新嵌入状态：当前模型 ${s.model}，${s.count} 条语料。更换模型后需要重新嵌入：重新嵌入请用 python ingest.py --reembed`
      )
    );
  }

  async function loadPage() {
    const query = { limit: PAGE_SIZE, offset: state.offset, text: state.text || null, biz_id: state.bizId || null };
    const r = await api("GET", "/v1/corpus", { query });
    state.total = typeof r.total === "number" ? r.total : null;
    state.count = r.items.length;
    const tbody = clear(els.tbody);
    if (!r.items.length) {
      tbody.append(h("tr", { testid: "corpus-empty" }, h("td", { colspan: 4, class: "muted" }, "没有语料。")));
    }
    for (const p of r.items) {
      const id = String(p.id);
      const viewBtn = h("button", { type: "button", class: "small", testid: "corpus-view" }, "查看");
      const editBtn = h("button", { type: "button", class: "small secondary", testid: "corpus-edit" }, "编辑");
      const delBtn = h("button", { type: "button", class: "small danger", testid: "corpus-delete" }, "删除");
      viewBtn.addEventListener("click", busy(viewBtn, () => view(id)));
      editBtn.addEventListener("click", busy(editBtn, () => edit(id)));
      delBtn.addEventListener("click", busy(delBtn, () => remove(id)));
      tbody.append(
        h(
          "tr",
          { testid: "corpus-row", data: { id } },
          h("td", { class: "mono" }, id),
          h("td", { class: "mono" }, String(p.biz_id ?? "")),
          h("td", { class: "content" }, longText(p.content, 90)),
          h("td", { class: "row-actions" }, viewBtn, editBtn, delBtn)
        )
      );
    }
    const page = Math.floor(state.offset / PAGE_SIZE) + 1;
    const pages = state.total !== null ? Math.max(1, Math.ceil(state.total / PAGE_SIZE)) : null;
    els.pageInfo.textContent =
      `第 ${page} 页` + (pages !== null ? ` / 共 ${pages} 页，${state.total} 条` : "") + `（每页 ${PAGE_SIZE} 条）`;
    els.prev.disabled = state.offset === 0;
    els.next.disabled = state.total !== null ? state.offset + PAGE_SIZE >= state.total : r.items.length < PAGE_SIZE;
  }

  function detailCard(title, ...children) {
    const out = clear(els.detail);
    const close = h("button", { type: "button", class: "small secondary", on: { click: () => clear(els.detail) } }, "关闭");
    out.append(h("div", { class: "card detail" }, h("div", { class: "card-head" }, h("h3", null, title), close), ...children));
  }

  async function view(id) {
    const p = await api("GET", `/v1/corpus/${encodeURIComponent(id)}`);
    detailCard(
      `语料 ${p.id}`,
      h("dl", { class: "kv", testid: "corpus-detail" }, h("dt", null, "id"), h("dd", { class: "mono" }, String(p.id)), h("dt", null, "biz_id"), h("dd", { class: "mono" }, String(p.biz_id ?? ""))),
      h("pre", { class: "answer", testid: "corpus-detail-content" }, p.content)
    );
    els.detail.scrollIntoView({ block: "nearest" });
  }

  async function edit(id) {
    const p = await api("GET", `/v1/corpus/${encodeURIComponent(id)}`);
    const content = h("textarea", { rows: 6, testid: "corpus-edit-content", value: p.content });
    const biz = h("input", { type: "text", testid: "corpus-edit-biz", value: String(p.biz_id ?? "") });
    const save = h("button", { type: "button", testid: "corpus-edit-save" }, "保存（重新嵌入）");
    save.addEventListener(
      "click",
      busy(save, async () => {
        if (!content.value.trim()) throw new Error("内容不能为空。");
        const r = await api("PUT", `/v1/corpus/${encodeURIComponent(id)}`, { body: { content: content.value, biz_id: biz.value } });
        clear(els.detail);
        showStatus(`已保存：新 id ${r.id}（原 id ${r.previous_id}）${r.duplicate ? "，语料中已有相同内容" : ""}`, "ok");
        await Promise.all([loadPage(), loadStats()]);
      })
    );
    detailCard(
      `编辑语料 ${p.id}`,
      h("p", { class: "muted" }, "保存会重新嵌入这段文字，id 会改变。"),
      field("内容 content", content),
      field("biz_id", biz),
      h("div", { class: "actions" }, save)
    );
  }

  async function remove(id) {
    if (!confirmed(`确定删除语料 ${id}？此操作记入审计日志。`)) return;
    await api("DELETE", `/v1/corpus/${encodeURIComponent(id)}`);
    showStatus(`已删除语料 ${id}`, "ok");
    if (state.count === 1 && state.offset > 0) state.offset = Math.max(0, state.offset - PAGE_SIZE);
    await Promise.all([loadPage(), loadStats()]);
  }

  async function add() {
    const content = els.addContent.value;
    if (!content.trim()) throw new Error("内容不能为空。");
    const r = await api("POST", "/v1/corpus", { body: { content, biz_id: els.addBiz.value.trim() } });
    const id = r.ids && r.ids.length ? String(r.ids[0]) : "?";
    const dup = r.duplicate && r.duplicate[0];
    els.addResult.textContent = dup ? `语料中已有相同内容：id ${id}` : `已添加：id ${id}`;
    els.addResult.dataset.id = id;
    showStatus(dup ? `重复：已存在 id ${id}` : `已添加语料 id ${id}`, "ok");
    if (!dup) {
      els.addContent.value = "";
    }
    await Promise.all([loadPage(), loadStats()]);
  }

  async function importFile() {
    const file = els.importFile.files && els.importFile.files[0];
    if (!file) throw new Error("请先选择一个 JSONL 文件（每行 {\"content\": …, \"biz_id\": …}）。");
    const text = await file.text();
    const { chunks, lines } = chunksOf(text);
    const total = { read: 0, inserted: 0, skipped: 0, errors: [] };
    const progress = els.progress;
    progress.max = Math.max(1, lines);
    progress.value = 0;
    progress.hidden = false;
    const errList = clear(els.importErrors);
    const summary = els.importSummary;
    summary.textContent = `正在导入 ${file.name}：${lines} 行，分 ${chunks.length} 次提交…`;
    let done = 0;
    let stopped = null;
    for (const c of chunks) {
      if (!c.text.trim()) {
        done += c.lines;
        progress.value = done;
        continue;
      }
      try {
        const r = await api("POST", "/v1/corpus/import", { body: { jsonl: c.text, first_line: c.firstLine } });
        total.read += r.read || 0;
        total.inserted += r.inserted || 0;
        total.skipped += r.skipped || 0;
        for (const e of r.errors || []) total.errors.push(e);
      } catch (e) {
        if (e.status === 400 || e.status === 413 || e.status === 422) {
          total.errors.push({ line: c.firstLine, message: `第 ${c.firstLine}–${c.firstLine + c.lines - 1} 行整批被拒绝：${e.message}` });
        } else {
          stopped = `导入在第 ${c.firstLine} 行中断：${e.message}`;
          break;
        }
      }
      done += c.lines;
      progress.value = done;
      summary.textContent = `已处理 ${done} / ${lines} 行：新增 ${total.inserted}，跳过（重复）${total.skipped}，错误 ${total.errors.length}`;
    }
    for (const e of total.errors.slice(0, 500)) {
      errList.append(h("li", { testid: "import-error", data: { line: e.line } }, h("span", { class: "mono" }, `第 ${e.line} 行`), "：", e.message));
    }
    if (total.errors.length > 500) errList.append(h("li", { class: "muted" }, `……另有 ${total.errors.length - 500} 个错误未列出`));
    const text2 = `导入完成：读取 ${total.read} 行，新增 ${total.inserted}，跳过（重复）${total.skipped}，错误 ${total.errors.length}`;
    summary.textContent = stopped ? stopped + "。" + text2.replace("导入完成", "此前") : text2;
    summary.dataset.inserted = String(total.inserted);
    summary.dataset.errors = String(total.errors.length);
    summary.dataset.done = stopped ? "stopped" : "true";
    if (stopped) showStatus(stopped, "error");
    else showStatus(text2, total.errors.length ? "warn" : "ok");
    await Promise.all([loadPage(), loadStats()]);
  }

  function build(section) {
    const { table: t, tbody } = table(["id", "biz_id", "内容", "操作"], "corpus-table");
    els = {
      stats: h("div", { testid: "corpus-stats" }),
      tbody,
      searchText: h("input", { type: "search", placeholder: "内容包含…", testid: "corpus-search-text", maxlength: 200 }),
      searchBiz: h("input", { type: "text", placeholder: "biz_id", testid: "corpus-search-biz" }),
      prev: h("button", { type: "button", class: "secondary", testid: "corpus-prev" }, "上一页"),
      next: h("button", { type: "button", class: "secondary", testid: "corpus-next" }, "下一页"),
      pageInfo: h("span", { class: "muted", testid: "corpus-page-info" }),
      detail: h("div", { testid: "corpus-detail-panel" }),
      addContent: h("textarea", { rows: 4, testid: "corpus-add-content", placeholder: "一段精选的文字" }),
      addBiz: h("input", { type: "text", testid: "corpus-add-biz", placeholder: "例如 season-99" }),
      addResult: h("span", { class: "muted", testid: "corpus-add-result" }),
      importFile: h("input", { type: "file", accept: ".jsonl,.ndjson,.json,.txt,application/x-ndjson", testid: "import-file" }),
      progress: h("progress", { testid: "import-progress", max: 1, value: 0, hidden: true }),
      importSummary: h("p", { testid: "import-summary" }),
      importErrors: h("ul", { class: "errors", testid: "import-errors" }),
    };
    const searchForm = h(
      "form",
      { class: "row" },
      field("内容搜索", els.searchText),
      field("biz_id", els.searchBiz),
      h("div", { class: "actions" }, h("button", { type: "submit", testid: "corpus-search" }, "搜索"), h("button", { type: "reset", class: "secondary" }, "清除"))
    );
    searchForm.addEventListener(
      "submit",
      guard(async (ev) => {
        ev.preventDefault();
        state.text = els.searchText.value.trim();
        state.bizId = els.searchBiz.value.trim();
        state.offset = 0;
        await loadPage();
      })
    );
    searchForm.addEventListener(
      "reset",
      guard(async () => {
        state.text = "";
        state.bizId = "";
        state.offset = 0;
        await loadPage();
      })
    );
    els.prev.addEventListener(
      "click",
      busy(els.prev, async () => {
        state.offset = Math.max(0, state.offset - PAGE_SIZE);
        await loadPage();
      })
    );
    els.next.addEventListener(
      "click",
      busy(els.next, async () => {
        state.offset += PAGE_SIZE;
        await loadPage();
      })
    );
    const addBtn = h("button", { type: "button", testid: "corpus-add-submit" }, "添加");
    addBtn.addEventListener("click", busy(addBtn, add));
    const importBtn = h("button", { type: "button", testid: "import-start" }, "导入");
    importBtn.addEventListener("click", busy(importBtn, importFile));
    const statsBtn = h("button", { type: "button", class: "small secondary" }, "刷新");
    statsBtn.addEventListener("click", busy(statsBtn, loadStats));

    section.append(
      h("h2", null, "语料"),
      h("div", { class: "card" }, h("div", { class: "card-head" }, h("h3", null, "集合统计"), statsBtn), els.stats),
      h("div", { class: "card" }, searchForm, t, h("div", { class: "pager" }, els.prev, els.pageInfo, els.next)),
      els.detail,
      h(
        "div",
        { class: "columns" },
        h("div", { class: "card form" }, h("h3", null, "添加语料"), field("内容 content", els.addContent), field("biz_id", els.addBiz), h("div", { class: "actions" }, addBtn, els.addResult)),
        h(
          "div",
          { class: "card form" },
          h("h3", null, "批量导入 (JSONL)"),
          h("p", { class: "muted" }, "每行一个 {\"content\": \"…\", \"biz_id\": \"…\"}，与 ingest.py 的格式相同；按 200 行 / 160 KB 分批提交（POST /v1/corpus/import）。"),
          field("文件", els.importFile),
          h("div", { class: "actions" }, importBtn),
          els.progress,
          els.importSummary,
          els.importErrors
        )
      )
    );
  }

  async function show() {
    await loadPage(); // the table first: on a busy server the stats would only delay it
    await loadStats();
  }

  return { build, show };
}
