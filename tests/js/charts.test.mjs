// The charts' scales (charts.js): round ticks, the ranges a line chart draws over, the linear mapping.
import assert from "node:assert/strict";
import test from "node:test";

import { linearScale, niceTicks, xDomain, yDomain } from "../../writing/api/console/static/charts.js";

test("niceTicks picks round steps that cover the range", () => {
  assert.deepEqual(niceTicks(0, 1, 4), { lo: 0, hi: 1, ticks: [0, 0.25, 0.5, 0.75, 1] });
  assert.deepEqual(niceTicks(0, 87, 4).ticks, [0, 25, 50, 75, 100]);
  const t = niceTicks(0.1, 0.7, 4);
  assert.deepEqual(t.ticks, [0, 0.2, 0.4, 0.6, 0.8]); // no 0.6000000000000001
  assert.ok(t.lo <= 0.1 && t.hi >= 0.7);
});

test("niceTicks widens an empty range instead of dividing by zero", () => {
  const flat = niceTicks(5, 5, 4);
  assert.ok(flat.lo < 5 && flat.hi > 5 && flat.ticks.every(Number.isFinite));
  const zero = niceTicks(0, 0, 4);
  assert.ok(zero.lo < 0 && zero.hi > 0);
});

test("yDomain: fixed bounds kept, free ones rounded out, zero included, never empty", () => {
  assert.deepEqual(yDomain([0.2, 0.9], 0, 1), { lo: 0, hi: 1, ticks: [0, 0.25, 0.5, 0.75, 1] });
  const free = yDomain([3, 87, 40]);
  assert.equal(free.lo, 0);
  assert.equal(free.hi, 100);
  assert.deepEqual(yDomain([], 0).lo, 0); // no data: 0..1
  assert.equal(yDomain([], 0).hi, 1);
  const negative = yDomain([-7, 4]);
  assert.ok(negative.lo <= -7 && negative.hi >= 4);
  const same = yDomain([], 2, 2); // min == max given: one unit tall
  assert.equal(same.hi - same.lo, 1);
});

test("xDomain: the points and the markers, a lone point centred", () => {
  assert.deepEqual(xDomain([10, 20, 30], []), { lo: 10, hi: 30 });
  assert.deepEqual(xDomain([0.6, 0.7], [0.55, 0.9]), { lo: 0.55, hi: 0.9 });
  assert.deepEqual(xDomain([5], []), { lo: 4.5, hi: 5.5 });
  assert.deepEqual(xDomain([], []), { lo: 0, hi: 1 });
  assert.deepEqual(xDomain([1, 2], [], 0, 10), { lo: 0, hi: 10 });
});

test("linearScale maps the domain onto the range, upside down for a y axis", () => {
  const px = linearScale(0, 10, 56, 624);
  assert.equal(px(0), 56);
  assert.equal(px(10), 624);
  assert.equal(px(5), 340);
  const py = linearScale(0, 1, 206, 12); // y grows upwards: 0 at the bottom
  assert.equal(py(0), 206);
  assert.equal(py(1), 12);
  assert.equal(py(0.5), 109);
});

test("a count axis steps by whole numbers, never 2.5 (issue 26)", () => {
  assert.deepEqual(niceTicks(0, 10, 4, true).ticks, [0, 5, 10]); // not 0, 2.5, 5, 7.5, 10
  assert.deepEqual(niceTicks(0, 3, 4, true).ticks, [0, 1, 2, 3]);
  assert.deepEqual(niceTicks(0, 100, 4, true).ticks, [0, 25, 50, 75, 100]); // 25 is whole
  assert.deepEqual(yDomain([0, 3, 10]).ticks, [0, 5, 10]);
  assert.deepEqual(yDomain([0, 7]).ticks, [0, 2, 4, 6, 8]);
  assert.deepEqual(yDomain([0.2, 0.9], 0, 1).ticks, [0, 0.25, 0.5, 0.75, 1]); // rates keep their steps
});
