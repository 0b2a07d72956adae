// The audit page's undo summary (pages/audit.js): what the status line says after an undo.
import assert from "node:assert/strict";
import test from "node:test";

import { undoSummary } from "../../writing/api/console/static/pages/audit.js";

test("undoSummary: what came back, and what was left alone", () => {
  const done = { action: "corpus.delete", audit_id: "470965047423139843", applied: ["a", "b"], conflicts: [] };
  assert.equal(undoSummary(done), "已撤销 corpus.delete（审计记录 470965047423139843）：恢复 2 项");
  const some = { ...done, conflicts: [{ target: "passage 7", reason: "changed since" }] };
  assert.equal(undoSummary(some), "已撤销 corpus.delete（审计记录 470965047423139843）：恢复 2 项，1 项之后已有改动，未覆盖");
});
