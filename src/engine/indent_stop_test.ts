import assert from "node:assert/strict";
import { IndentStop } from "./indent_stop.ts";

function feed(least: number, pieces: string[]): { out: string; stopped: boolean } {
  const stop = new IndentStop(least);
  let out = "";
  for (const piece of pieces) out += stop.push(piece);
  return { out: out + stop.flush(), stopped: stop.stopped };
}

Deno.test("IndentStop keeps lines indented enough and ends at the first that is not", () => {
  // A tab counts as one, as in llama.cpp.
  const body = "x = 1\n    y = 2\n\t\t\t\tz = 3\n";
  assert.deepEqual(feed(4, [body + "  return y\n    w = 4\n"]), {
    out: body + "  ",
    stopped: true,
  });
  // Whatever the pieces, the same cut.
  assert.deepEqual(feed(4, [...body + "  return y\n"]), { out: body + "  ", stopped: true });
});

Deno.test("IndentStop never checks the first line, and an empty line ends the text", () => {
  assert.deepEqual(feed(4, ["return x\n", "    y\n", "\n", "    z"]), {
    out: "return x\n    y\n",
    stopped: true,
  });
});

Deno.test("IndentStop holds back indentation until the line's next character decides it", () => {
  const stop = new IndentStop(4);
  assert.equal(stop.push("a\n  "), "a\n");
  assert.equal(stop.push("  "), "");
  assert.equal(stop.push("b"), "    b");
  assert.equal(stop.push("\n   "), "\n");
  assert.equal(stop.flush(), "   ");
  assert.equal(stop.stopped, false);
});

Deno.test("IndentStop with a minimum of 0 passes everything", () => {
  assert.deepEqual(feed(0, ["a\n\nb\n c"]), { out: "a\n\nb\n c", stopped: false });
});
