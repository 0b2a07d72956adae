// The corpus page's JSONL import splits a file into requests the server accepts (pages/corpus.js).
import assert from "node:assert/strict";
import test from "node:test";

import { chunksOf } from "../../writing/api/console/static/pages/corpus.js";

test("at most 200 lines a chunk, each chunk knows its first line", () => {
  const text = Array.from({ length: 450 }, (_, i) => `{"content": "第 ${i + 1} 行"}`).join("\n") + "\n";
  const { chunks, lines } = chunksOf(text);
  assert.equal(lines, 450);
  assert.deepEqual(
    chunks.map((c) => [c.firstLine, c.lines]),
    [
      [1, 200],
      [201, 200],
      [401, 50],
    ]
  );
  assert.ok(chunks[1].text.startsWith('{"content": "第 201 行"}\n') && chunks[1].text.endsWith("\n"));
  assert.equal(chunks.map((c) => c.text).join(""), text); // nothing lost, nothing added
});

test("a byte budget in UTF-8 bytes, CRLF files and blank lines kept in place", () => {
  const line = "汉".repeat(100); // 300 bytes, 301 with its newline
  const { chunks } = chunksOf([line, line, line].join("\r\n"), 200, 700);
  assert.deepEqual(
    chunks.map((c) => [c.firstLine, c.lines]),
    [
      [1, 2],
      [3, 1],
    ]
  );
  const blank = chunksOf("a\n\nb\n", 2);
  assert.deepEqual(
    blank.chunks.map((c) => [c.firstLine, c.text]),
    [
      [1, "a\n\n"],
      [3, "b\n"],
    ]
  );
  assert.deepEqual(chunksOf(""), { chunks: [], lines: 0 });
});
