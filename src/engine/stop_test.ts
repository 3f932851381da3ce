import assert from "node:assert/strict";
import { StopMatcher } from "./stop.ts";

function feed(
  stops: string[],
  pieces: string[],
): { out: string; stopped: boolean; matched: string | null } {
  const m = new StopMatcher(stops);
  let out = "";
  for (const p of pieces) out += m.push(p);
  out += m.flush();
  return { out, stopped: m.stopped, matched: m.matched };
}

Deno.test("StopMatcher cuts at a stop string inside one piece", () => {
  assert.deepEqual(feed(["END"], ["abcENDdef"]), { out: "abc", stopped: true, matched: "END" });
});

Deno.test("StopMatcher never leaks a stop string split across pieces", () => {
  const m = new StopMatcher(["Observation:"]);
  assert.equal(m.push("Thought. Obs"), "Thought. ");
  assert.equal(m.push("ervat"), "");
  assert.equal(m.push("ion: x"), "");
  assert.equal(m.stopped, true);
  assert.equal(m.flush(), "");
});

Deno.test("StopMatcher releases a held prefix once it stops matching", () => {
  const m = new StopMatcher(["\n\n"]);
  assert.equal(m.push("a\n"), "a");
  assert.equal(m.push("b"), "\nb");
  assert.equal(m.push("c\n"), "c");
  assert.equal(m.flush(), "\n");
  assert.equal(m.stopped, false);
});

Deno.test("StopMatcher picks the earliest of several stop strings", () => {
  const first = { out: "a", stopped: true, matched: "xyz" };
  assert.deepEqual(feed(["xyz", "b"], ["axy", "zb"]), first);
  assert.deepEqual(feed(["bc", "abcd"], ["zab", "cd"]), {
    out: "z",
    stopped: true,
    matched: "abcd",
  });
  // Two that start at the same place: the first given.
  assert.deepEqual(feed(["ab", "a"], ["xab"]), { out: "x", stopped: true, matched: "ab" });
});

Deno.test("StopMatcher ignores empty stop strings and passes text through", () => {
  const none = { stopped: false, matched: null };
  assert.deepEqual(feed([""], ["hello", " world"]), { out: "hello world", ...none });
  assert.deepEqual(feed([], ["a"]), { out: "a", ...none });
});

Deno.test("StopMatcher drops text pushed after the stop", () => {
  const m = new StopMatcher(["."]);
  assert.equal(m.push("one. two"), "one");
  assert.equal(m.push("three"), "");
});
