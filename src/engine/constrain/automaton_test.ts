import assert from "node:assert/strict";
import { Automaton, DEAD } from "./automaton.ts";
import { ByteClass, bytesOf, GrammarBuilder } from "./grammar.ts";

/** a{1,3} then b, or "ab" then c*: two alternatives sharing a prefix. */
function sample(): Automaton {
  const b = new GrammarBuilder();
  const as = b.repeat("a+", ByteClass.chars("a"), 1, 3);
  const cs = b.star("c*", ByteClass.chars("c"));
  const start = b.rule("start", [as, ...bytesOf("b")], [...bytesOf("ab"), cs]);
  return new Automaton(b.build(start));
}

Deno.test("Automaton accepts and rejects by hand-checked strings", () => {
  const m = sample();
  for (const text of ["ab", "aab", "aaab", "abc", "abccc"]) assert.ok(m.matches(text), text);
  for (const text of ["", "a", "b", "aaaab", "abb", "abca", "ba"]) {
    assert.ok(!m.matches(text), text);
  }
  assert.ok(m.isPrefix("aa"));
  assert.ok(!m.isPrefix("aaaa"));
});

Deno.test("Automaton tells whether a state ends, continues, and how far its end is", () => {
  const m = sample();
  const a = m.step(m.start, 97);
  assert.equal(m.distance(m.start), 2);
  assert.equal(m.distance(a), 1);
  const ab = m.step(a, 98);
  assert.ok(m.accepts(ab) && m.continues(ab)); // "ab" may end or take c's
  const aab = m.walk(m.start, new TextEncoder().encode("aab"));
  assert.ok(m.accepts(aab) && !m.continues(aab));
  assert.equal(m.step(aab, 98), DEAD);
});

Deno.test("Automaton keeps right recursion flat and reuses its states", () => {
  const m = sample();
  const long = new TextEncoder().encode("ab" + "c".repeat(10_000));
  const end = m.walk(m.start, long);
  assert.ok(m.accepts(end));
  const states = m.stateCount;
  m.walk(m.start, long);
  assert.equal(m.stateCount, states);
  assert.ok(states < 10, `${states} states`);
});

Deno.test("GrammarBuilder.build refuses a rule without a finite match", () => {
  const b = new GrammarBuilder();
  const loop = b.declare("loop");
  b.add(loop, [ByteClass.chars("x"), loop]);
  assert.throws(() => b.build(loop), RangeError);
});
