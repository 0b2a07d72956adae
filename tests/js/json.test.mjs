// The console's int64-safe JSON parser (api.js): ids up to 2^63 stay exact, as strings.
import assert from "node:assert/strict";
import test from "node:test";

import { parseJSON } from "../../writing/api/console/static/api.js";

test("ids past 2^53 come back as exact strings", () => {
  const got = parseJSON('{"id": 9223372036854775807, "ids": [451368592735469123, -9007199254740993]}');
  assert.deepEqual(got, { id: "9223372036854775807", ids: ["451368592735469123", "-9007199254740993"] });
});

test("safe integers and other numbers stay numbers", () => {
  const text = '{"a": 9007199254740991, "b": -12, "c": 0.125, "d": 1e21, "e": 1.5E-7, "f": 1234567890123456.5}';
  assert.deepEqual(parseJSON(text), JSON.parse(text));
  // a 16-digit literal that is still a safe integer is left alone
  assert.equal(parseJSON("1000000000000000"), 1000000000000000);
});

test("digits inside strings are never touched, escapes included", () => {
  const text = '{"s": "9223372036854775807", "q": "say \\"12345678901234567\\"", "b": "\\\\", "n": 12345678901234567}';
  assert.deepEqual(parseJSON(text), {
    s: "9223372036854775807",
    q: 'say "12345678901234567"',
    b: "\\",
    n: "12345678901234567",
  });
});

test("what JSON.parse accepts it accepts, what it refuses it refuses", () => {
  for (const text of ["null", "true", "[]", '""', "[1, [2, {}]]", '{"k": "中文 ✓"}']) {
    assert.deepEqual(parseJSON(text), JSON.parse(text));
  }
  for (const text of ["", "{", "[1,]", "nope", "{'a': 1}"]) assert.throws(() => parseJSON(text), SyntaxError);
});
