import assert from "node:assert/strict";
import { checkAssertion, parseAssertion, parseDim } from "./dim_parse.ts";
import {
  dimAdd,
  dimBroadcast,
  dimDiv,
  dimEquals,
  dimMax,
  dimMin,
  dimMul,
  dimSub,
  dimToString,
  evalDim,
  sym,
  withLowerBounds,
} from "./dim.ts";

Deno.test("dimAdd is canonical so that P+S equals S+P", () => {
  const s = sym("S");
  const p = sym("P");
  assert.ok(dimEquals(dimAdd(p, s), dimAdd(s, p)));
  assert.equal(dimToString(dimAdd(s, p)), "P+S");
  assert.ok(dimEquals(dimSub(dimAdd(s, p), p), s));
  assert.equal(dimSub(dimAdd(s, 3), s), 3);
});

Deno.test("dimMul and dimDiv fold coefficients", () => {
  const s = sym("S");
  assert.equal(dimToString(dimMul(dimAdd(s, 1), 2)), "2*S+2");
  assert.ok(dimEquals(dimDiv(dimMul(s, 4), 2), dimMul(s, 2)));
  assert.equal(dimToString(dimDiv(dimAdd(s, 1), 2)), "(S+1)/2");
  assert.equal(dimDiv(7, 2), 3);
  assert.equal(dimDiv(-7, 2), -3);
  assert.equal(evalDim(dimDiv(dimAdd(s, 1), 2), new Map([["S", 4]])), 2);
  assert.throws(() => dimDiv(3, s), RangeError);
});

Deno.test("dimMin and dimMax decide what non-negative symbols allow", () => {
  const p = sym("P");
  assert.ok(dimEquals(dimMax(0, p), p));
  assert.equal(dimMin(0, p), 0);
  assert.ok(dimEquals(dimMin(dimAdd(p, 1), p), p));
  const m = dimMin(p, sym("S"));
  assert.equal(dimToString(m), "min(P,S)");
  assert.equal(evalDim(m, new Map([["P", 5], ["S", 2]])), 2);
});

Deno.test("parseDim reads tract expressions", () => {
  assert.ok(dimEquals(parseDim("S + P"), dimAdd(sym("P"), sym("S"))));
  assert.equal(evalDim(parseDim("2*(S+1)/3 - min(S, 4)"), new Map([["S", 7]])), 5 - 4);
  assert.throws(() => parseDim("S +"), SyntaxError);
});

Deno.test("checkAssertion names the failing constraint and values", () => {
  const a = parseAssertion("S+P < 512");
  assert.equal(a.scenario, null);
  checkAssertion(a, new Map([["S", 1], ["P", 510]]));
  assert.throws(
    () => checkAssertion(a, new Map([["S", 1], ["P", 511]])),
    (e: unknown) =>
      e instanceof RangeError && e.message === "Assertion S+P < 512 failed with P=511, S=1",
  );
  const tg = parseAssertion("tg: S==1");
  assert.equal(tg.scenario, "tg");
  assert.equal(tg.op, "==");
});

Deno.test("withLowerBounds lets asserted bounds decide min and max", () => {
  const s = sym("S");
  const open = dimMax(0, dimSub(s, 1));
  assert.equal(dimToString(open), "max(0,S-1)");
  const decided = withLowerBounds(new Map([["S", 1]]), () => dimMax(0, dimSub(s, 1)));
  assert.equal(dimToString(decided), "S-1");
});

Deno.test("dimBroadcast keeps what it cannot decide as a term checked once bound, as tract does", () => {
  const s = sym("S");
  const p = sym("P");
  assert.equal(dimBroadcast(1, s), s);
  assert.equal(dimBroadcast(s, 1), s);
  assert.equal(dimBroadcast(4, 4), 4);
  assert.throws(() => dimBroadcast(4, 3), {
    name: "RangeError",
    message: "Cannot broadcast 4 against 3",
  });
  const clipped = dimBroadcast(s, dimMin(9999, s));
  assert.equal(dimToString(clipped), "broadcast(S,min(9999,S))");
  assert.equal(evalDim(clipped, new Map([["S", 8]])), 8);
  assert.equal(evalDim(clipped, new Map([["S", 1]])), 1);
  assert.throws(() => evalDim(clipped, new Map([["S", 10000]])), {
    name: "RangeError",
    message: "Cannot broadcast 10000 against 9999",
  });
  assert.ok(dimEquals(dimBroadcast(dimBroadcast(s, p), s), dimBroadcast(p, s)));
  assert.ok(dimEquals(parseDim("broadcast(S, P, 1)"), dimBroadcast(p, s)));
  withLowerBounds(new Map([["S", 1]]), () => {
    assert.equal(dimBroadcast(s, dimMin(9999, s)), s);
    assert.equal(dimBroadcast(dimMin(s, 9999), s), s);
  });
});
