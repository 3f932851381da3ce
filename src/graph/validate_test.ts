import assert from "node:assert/strict";
import { parseDocument } from "../nnef/parse.ts";
import { validateGraph } from "./validate.ts";

/** A graph `g(x) -> (y)` with `body`; line 5 is the first line of the body. */
function graph(body: string, head = "extension tract_symbol S;"): string {
  return `version 1.0;\n${head}\ngraph g(x) -> (y)\n{\n${body}\n}\n`;
}

function check(text: string): void {
  validateGraph(parseDocument(text, "m.tgz/graph.nnef"), "m.tgz/graph.nnef");
}

function refuses(text: string, kind: ErrorConstructor, message: string): void {
  assert.throws(
    () => check(text),
    (e: unknown) => {
      assert.ok(e instanceof kind, `${(e as Error).name}: ${(e as Error).message}`);
      assert.equal((e as Error).message, message);
      return true;
    },
  );
}

Deno.test("validateGraph accepts names defined before use, declared symbols and external shapes", () => {
  check(graph([
    "  x = external<scalar>(shape = [1, S, N]);",
    "  z = tract_core_shape_of(x);",
    "  y = add(x, x);",
  ].join("\n")));
});

Deno.test("validateGraph refuses an unknown name with its line and column", () => {
  refuses(
    graph("  x = external(shape = [1]);\n  y = add(x, bias);"),
    SyntaxError,
    "m.tgz/graph.nnef:6:14: unknown name 'bias' (not assigned before, nor a symbol declared " +
      "with 'extension tract_symbol')",
  );
});

Deno.test("validateGraph refuses a self-reference and names a cycle", () => {
  refuses(
    graph("  x = external(shape = [1]);\n  y = add(y, x);"),
    SyntaxError,
    "m.tgz/graph.nnef:6:11: 'y' is used in its own definition",
  );
  refuses(
    graph("  x = external(shape = [1]);\n  a = add(x, b);\n  b = mul(a, x);\n  y = a;"),
    SyntaxError,
    "m.tgz/graph.nnef:6:14: 'b' is used before its assignment at line 7, which depends on this " +
      "one (a cycle: a -> b -> a)",
  );
  refuses(
    graph("  x = external(shape = [1]);\n  a = add(x, b);\n  b = neg(x);\n  y = a;"),
    SyntaxError,
    "m.tgz/graph.nnef:6:14: 'b' is used before its assignment at line 7",
  );
});

Deno.test("validateGraph refuses an unknown op, an undeclared argument and an unhonoured hint", () => {
  refuses(
    graph("  x = external(shape = [1, 3, 8, 8]);\n  y = conv(x, x);"),
    TypeError,
    "m.tgz/graph.nnef:6:7: unsupported operator 'conv'",
  );
  refuses(
    graph("  x = external(shape = [2, 2]);\n  y = matmul(x, x, transpose_b = true);"),
    TypeError,
    "m.tgz/graph.nnef:6:34: 'matmul' has no parameter 'transpose_b' (it takes 'A', 'B', " +
      "'transposeA', 'transposeB')",
  );
  refuses(
    graph(
      "  x = external(shape = [2, 2]);\n" +
        "  y = tract_core_einsum([x, x], expr = 'mk,nk->mn', acc = 'i32');",
    ),
    TypeError,
    "m.tgz/graph.nnef:6:59: 'tract_core_einsum' computes acc = 'i32' otherwise than asked " +
      "(supported: 'f32', 'f16')",
  );
});

Deno.test("validateGraph lists every problem, and an output never assigned", () => {
  refuses(
    graph("  x = external(shape = [1]);\n  z = add(x, u);\n  w = sub(z, v);"),
    SyntaxError,
    "3 problems in m.tgz/graph.nnef:\n" +
      "  m.tgz/graph.nnef:3:1: graph output 'y' is never assigned\n" +
      "  m.tgz/graph.nnef:6:14: unknown name 'u' (not assigned before, nor a symbol declared " +
      "with 'extension tract_symbol')\n" +
      "  m.tgz/graph.nnef:7:14: unknown name 'v' (not assigned before, nor a symbol declared " +
      "with 'extension tract_symbol')",
  );
});

Deno.test("validateGraph checks fragment bodies in their own scope", () => {
  refuses(
    graph(
      "  x = external(shape = [1]);\n  y = twice(x);",
      "fragment twice(a: tensor<scalar>) -> (b: tensor<scalar>) { b = add(a, x); }",
    ),
    SyntaxError,
    "m.tgz/graph.nnef:2:71: unknown name 'x' (not assigned before, nor a symbol declared " +
      "with 'extension tract_symbol')",
  );
});
