// The console's formatting helpers (format.js): what the pages print for numbers, shares, durations, times.
import assert from "node:assert/strict";
import test from "node:test";

import { clockLabel, fmtAgo, fmtMs, fmtNum, fmtPct, fmtTime } from "../../writing/api/console/static/format.js";

test("fmtNum: integers as they are, fractions to the digits asked, a dash for nothing", () => {
  assert.equal(fmtNum(42), "42");
  assert.equal(fmtNum(0.123456), "0.123");
  assert.equal(fmtNum(0.9, 4), "0.9000");
  assert.equal(fmtNum("9223372036854775807"), "9223372036854775807"); // an exact id, already a string
  for (const v of [null, undefined, NaN]) assert.equal(fmtNum(v), "—");
});

test("fmtPct and fmtMs", () => {
  assert.equal(fmtPct(0.9876), "98.8%");
  assert.equal(fmtPct(0), "0.0%");
  assert.equal(fmtPct(null), "—");
  assert.equal(fmtMs(3.14159), "3.14 ms");
  assert.equal(fmtMs(42.25), "42.3 ms");
  assert.equal(fmtMs(1234.5), "1235 ms");
  assert.equal(fmtMs(undefined), "—");
});

test("fmtTime and clockLabel read unix seconds or milliseconds, in local time", () => {
  const d = new Date(2024, 0, 2, 3, 4, 5); // local time: the output is local too
  const seconds = d.getTime() / 1000;
  assert.equal(fmtTime(seconds), "2024-01-02 03:04:05");
  assert.equal(fmtTime(d.getTime()), "2024-01-02 03:04:05");
  assert.equal(fmtTime(0), "—");
  assert.equal(clockLabel(seconds, false), "03:04");
  assert.equal(clockLabel(seconds, true), "03:04:05");
});

test("fmtAgo counts down in Chinese units", () => {
  const now = 1_700_000_000_000;
  const ago = (s) => fmtAgo(now / 1000 - s, now);
  assert.equal(ago(5), "5 秒前");
  assert.equal(ago(150), "2 分钟前");
  assert.equal(ago(3 * 3600), "3 小时前");
  assert.equal(ago(47 * 3600), "47 小时前");
  assert.equal(ago(3 * 86400), "3 天前");
  assert.equal(ago(90 * 86400), "3 个月前");
  assert.equal(fmtAgo(now + 60_000, now), "0 秒前"); // a clock a little ahead: never negative
  assert.equal(fmtAgo(null, now), "从未");
});
