import assert from "node:assert/strict";
import type { Assignment, RValue } from "./ast.ts";
import { numberLiteral, parseDocument } from "./parse.ts";

function graphOf(body: string, header = ""): string {
  return `version 1.0;\n${header}\ngraph g(x) -> (y)\n{\n${body}\n}\n`;
}

function rightOf(source: string): RValue {
  const doc = parseDocument(graphOf(`y = ${source};`));
  return doc.graph.body[0]!.right;
}

/** A compact S-expression of an rvalue, to compare tree shapes in one line. */
function show(value: RValue): string {
  switch (value.kind) {
    case "literal":
      return value.literal.kind === "number"
        ? value.literal.text
        : JSON.stringify(value.literal.value);
    case "identifier":
      return value.name;
    case "array":
      return `[${value.items.map(show).join(" ")}]`;
    case "tuple":
      return `(tuple ${value.items.map(show).join(" ")})`;
    case "invocation": {
      const { op, generic, args } = value.invocation;
      const shown = args.map((a) => a.name === null ? show(a.value) : `${a.name}=${show(a.value)}`);
      return `(${op}${generic === null ? "" : `<${generic}>`} ${shown.join(" ")})`;
    }
    case "binary":
      return `(${value.op} ${show(value.left)} ${show(value.right)})`;
    case "unary":
      return `(${value.op}u ${show(value.operand)})`;
    case "if":
      return `(if ${show(value.condition)} ${show(value.then)} ${show(value.otherwise)})`;
    case "subscript":
      return `(at ${show(value.target)} ${show(value.index)})`;
    case "range":
      return `(range ${show(value.target)} ${value.begin === null ? "_" : show(value.begin)} ${
        value.end === null ? "_" : show(value.end)
      })`;
    case "comprehension":
      return `(for ${value.loops.map((l) => `${l.name} ${show(l.over)}`).join(" ")} ${
        show(value.yield)
      })`;
  }
}

Deno.test("parseDocument reads version, extensions with free text, and the graph header", () => {
  const doc = parseDocument(
    "version 1.0;\n\nextension tract_registry tract_core;\nextension tract_symbol S;\n" +
      "extension tract_assert S+P < 512 ;\nextension tract_assert tg: S==1;\n" +
      "extension KHR_enable_fragment_definitions, KHR_enable_operator_expressions;\n" +
      "extension tract_pulse_streaming_symbol;\n" +
      "graph network(a, b) -> (c)\n{\n  c = add(a, b);\n}\n",
  );
  assert.equal(doc.version, "1.0");
  assert.deepEqual(doc.extensions.map((e) => [e.id, e.rest]), [
    ["tract_registry", "tract_core"],
    ["tract_symbol", "S"],
    ["tract_assert", "S+P < 512"],
    ["tract_assert", "tg: S==1"],
    ["KHR_enable_fragment_definitions", ", KHR_enable_operator_expressions"],
    ["tract_pulse_streaming_symbol", ""],
  ]);
  assert.deepEqual(doc.extensions[2]!.at, { line: 5, column: 1 });
  assert.equal(doc.graph.name, "network");
  assert.deepEqual(doc.graph.inputs, ["a", "b"]);
  assert.deepEqual(doc.graph.outputs, ["c"]);
  assert.deepEqual(doc.graph.at, { line: 9, column: 1 });
  assert.equal(show(doc.graph.body[0]!.right), "(add a b)");
  assert.deepEqual(doc.graph.body[0]!.at, { line: 11, column: 3 });
});

Deno.test("parseDocument accepts empty graph parameter lists and an empty body", () => {
  const doc = parseDocument("version 1.0; graph g() -> () {}");
  assert.deepEqual(doc.graph.inputs, []);
  assert.deepEqual(doc.graph.body, []);
});

Deno.test("parseDocument skips comments and blank lines between any two tokens", () => {
  const doc = parseDocument(
    "# header\nversion 1.0; # after version\ngraph g # name\n( x ) -> ( y ) # sig\n{\n" +
      "  y = # value follows\n  x; # done\n} # trailing\n# last line without newline",
  );
  assert.equal(show(doc.graph.body[0]!.right), "x");
});

Deno.test("parseDocument reads fragment declarations with and without bodies", () => {
  const doc = parseDocument(
    "version 1.0;\n" +
      "fragment external<? = scalar>( shape: integer[] ) -> ( output: tensor<?> );\n" +
      "fragment sum<?>( x: tensor<?>[], axes: integer[] = [], keep: logical = true ) -> ( y: tensor<?> );\n" +
      "fragment props() -> (properties: (string, tensor<scalar>)[])\n{\n" +
      '  properties = [("a", "1"), ("b", "2")];\n}\n' +
      "fragment silu( input: tensor<scalar> ) -> ( output : tensor<scalar> )\n{\n" +
      "  output = input * sigmoid(input);\n}\n" +
      "graph g(x) -> (y) { y = silu(x); }",
  );
  const [external, sum, props, silu] = doc.fragments;
  assert.equal(external!.decl.name, "external");
  assert.deepEqual(external!.decl.generic, { default: "scalar" });
  assert.deepEqual(external!.decl.parameters, [
    {
      name: "shape",
      type: { kind: "array", item: { kind: "type", name: "integer" } },
      default: null,
    },
  ]);
  assert.deepEqual(external!.decl.results, [
    { name: "output", type: { kind: "tensor", name: "?" } },
  ]);
  assert.equal(external!.body, null);
  assert.deepEqual(sum!.decl.generic, { default: null });
  assert.deepEqual(sum!.decl.parameters[0]!.type, {
    kind: "array",
    item: { kind: "tensor", name: "?" },
  });
  assert.equal(show(sum!.decl.parameters[1]!.default!), "[]");
  assert.equal(show(sum!.decl.parameters[2]!.default!), "true");
  assert.equal(props!.decl.generic, null);
  assert.deepEqual(props!.decl.results[0]!.type, {
    kind: "array",
    item: {
      kind: "tuple",
      items: [{ kind: "type", name: "string" }, { kind: "tensor", name: "scalar" }],
    },
  });
  assert.equal(show(props!.body![0]!.right), '[(tuple "a" "1") (tuple "b" "2")]');
  assert.equal(show(silu!.body![0]!.right), "(* input (sigmoid input))");
  assert.deepEqual(silu!.decl.at, { line: 8, column: 1 });
});

Deno.test("parseDocument reads literal defaults: numbers, strings, arrays and tuples of literals", () => {
  const doc = parseDocument(
    "version 1.0;\nfragment f( a: scalar = -1.5, b: string = 'x', c: integer[] = [1, -2, 3], " +
      "d: (integer, scalar) = (1, 2.0), e: scalar = -inf, f: tensor<scalar>= 0.0 ) -> ( y: scalar );\n" +
      "graph g() -> () {}",
  );
  const defaults = doc.fragments[0]!.decl.parameters.map((p) => show(p.default!));
  assert.deepEqual(defaults, ["-1.5", '"x"', "[1 -2 3]", "(tuple 1 2.0)", "-inf", "0.0"]);
});

Deno.test("parseDocument reads invocations with generics and named or positional arguments", () => {
  assert.equal(
    show(rightOf("variable<scalar>(label = 'w.0', shape = [64, 64])")),
    '(variable<scalar> label="w.0" shape=[64 64])',
  );
  assert.equal(show(rightOf("linear(x, w, 0.0)")), "(linear x w 0.0)");
  assert.equal(show(rightOf("external<?>(shape = [])")), "(external<?> shape=[])");
  assert.equal(show(rightOf("f()")), "(f )");
  assert.equal(show(rightOf("f(g(h(1)), k = [a, b])")), "(f (g (h 1)) k=[a b])");
});

Deno.test("parseDocument applies the binary precedence table, left-associative", () => {
  assert.equal(show(rightOf("a + b * c")), "(+ a (* b c))");
  assert.equal(show(rightOf("a * b + c")), "(+ (* a b) c)");
  assert.equal(show(rightOf("a - b - c")), "(- (- a b) c)");
  assert.equal(show(rightOf("a ^ b ^ c")), "(^ (^ a b) c)");
  assert.equal(show(rightOf("a * b ^ c")), "(* a (^ b c))");
  assert.equal(show(rightOf("a + b < c * d")), "(< (+ a b) (* c d))");
  assert.equal(show(rightOf("a < b && c >= d || e")), "(|| (&& (< a b) (>= c d)) e)");
  assert.equal(show(rightOf("a == b != c")), "(!= (== a b) c)");
  assert.equal(show(rightOf("a <= b")), "(<= a b)");
  assert.equal(show(rightOf("a in b && c")), "(in a (&& b c))");
  assert.equal(show(rightOf("(a + b) * c")), "(* (+ a b) c)");
  assert.equal(show(rightOf("a / b / c")), "(/ (/ a b) c)");
});

Deno.test("parseDocument reads a '-' right before digits as part of the literal", () => {
  assert.equal(show(rightOf("-1")), "-1");
  assert.equal(show(rightOf("a - 1")), "(- a 1)");
  assert.equal(show(rightOf("a -1")), "(- a 1)");
  assert.equal(show(rightOf("a - -1")), "(- a -1)");
  assert.equal(show(rightOf("- 1")), "(-u 1)");
  assert.equal(show(rightOf("-x")), "(-u x)");
  assert.equal(show(rightOf("!b")), "(!u b)");
  assert.equal(show(rightOf("+x")), "(+u x)");
  assert.equal(show(rightOf("-x * y")), "(* (-u x) y)");
  assert.equal(
    show(rightOf("tile([[-inf]], repeats = [S, -1])")),
    "(tile [[-inf]] repeats=[S -1])",
  );
});

Deno.test("numberLiteral types literals as tract does", () => {
  const cases: [string, number, boolean][] = [
    ["1", 1, false],
    ["-1", -1, false],
    ["1.", 1, true],
    ["1.5", 1.5, true],
    ["1e-06", 1e-6, true],
    ["2E3", 2000, false],
    ["0.7071067811865476", 0.7071067811865476, true],
    ["inf", Infinity, true],
    ["-inf", -Infinity, true],
  ];
  for (const [text, value, isScalar] of cases) {
    assert.deepEqual(numberLiteral(text), { kind: "number", text, value, isScalar }, text);
  }
  const exponent = rightOf("[1e-06, 2.5E+3, 3]");
  assert.equal(show(exponent), "[1e-06 2.5E+3 3]");
});

Deno.test("parseDocument reads string and logical literals with backslash escapes", () => {
  const value = rightOf(String.raw`["a\'b", 'c\"d', "e\\f", 'g\nh', true, false, "", 'x"y']`);
  assert.equal(value.kind, "array");
  if (value.kind !== "array") return;
  const literals = value.items.map((item) => item.kind === "literal" ? item.literal : null);
  assert.deepEqual(literals.map((l) => l?.kind === "number" ? null : l?.value), [
    "a'b",
    'c"d',
    "e\\f",
    "gnh",
    true,
    false,
    "",
    'x"y',
  ]);
});

Deno.test('parseDocument reads i"…" identifiers anywhere an identifier goes', () => {
  const doc = parseDocument(
    'version 1.0;\ngraph i"my.net"(i"in.0") -> (i\'out-1\')\n{\n' +
      '  i\'out-1\' = i"relu.fn"(i"in.0", i"alpha.x" = i"true");\n}\n',
  );
  assert.equal(doc.graph.name, "my.net");
  assert.deepEqual(doc.graph.inputs, ["in.0"]);
  assert.deepEqual(doc.graph.outputs, ["out-1"]);
  const assignment = doc.graph.body[0]!;
  assert.deepEqual(assignment.left, {
    kind: "identifier",
    name: "out-1",
    at: { line: 4, column: 3 },
  });
  assert.equal(show(assignment.right), "(relu.fn in.0 alpha.x=true)");
  const arg = assignment.right.kind === "invocation" ? assignment.right.invocation.args[1] : null;
  assert.equal(arg?.value.kind, "identifier");
});

Deno.test("parseDocument reads tuple and array left-hand sides", () => {
  const doc = parseDocument(
    graphOf("a, b = split(x);\n(c, d) = f(x);\n[e, (f, g)] = h(x);\ny = a;"),
  );
  const shapes = doc.graph.body.map((a: Assignment) =>
    JSON.stringify(a.left, ["kind", "name", "items"])
  );
  assert.deepEqual(shapes, [
    '{"kind":"tuple","items":[{"kind":"identifier","name":"a"},{"kind":"identifier","name":"b"}]}',
    '{"kind":"tuple","items":[{"kind":"identifier","name":"c"},{"kind":"identifier","name":"d"}]}',
    '{"kind":"array","items":[{"kind":"identifier","name":"e"},{"kind":"tuple","items":[{"kind":"identifier","name":"f"},{"kind":"identifier","name":"g"}]}]}',
    '{"kind":"identifier","name":"y"}',
  ]);
});

Deno.test("parseDocument reads tuples, arrays, subscripts and ranges", () => {
  assert.equal(show(rightOf("(a, b, 1)")), "(tuple a b 1)");
  assert.equal(show(rightOf("()")), "(tuple )");
  assert.equal(show(rightOf("[]")), "[]");
  assert.equal(show(rightOf("[[1, 2], [3]]")), "[[1 2] [3]]");
  assert.equal(show(rightOf("shape[0]")), "(at shape 0)");
  assert.equal(show(rightOf("shape_of(x)[i + 1]")), "(at (shape_of x) (+ i 1))");
  assert.equal(show(rightOf("a[1:3]")), "(range a 1 3)");
  assert.equal(show(rightOf("a[:n]")), "(range a _ n)");
  assert.equal(show(rightOf("a[1:]")), "(range a 1 _)");
  assert.equal(show(rightOf("a[:]")), "(range a _ _)");
  assert.equal(show(rightOf("a[0][1]")), "(at (at a 0) 1)");
  assert.equal(show(rightOf("a[0] ^ 2")), "(^ (at a 0) 2)");
});

Deno.test("parseDocument reads if-else and comprehensions", () => {
  assert.equal(show(rightOf("a if c > 0 else b")), "(if (> c 0) a b)");
  assert.equal(show(rightOf("a if c else b if d else e")), "(if c a (if d b e))");
  assert.equal(
    show(rightOf("[for i in range_of(x), j in [1, 2] yield x[i] * j]")),
    "(for i (range_of x) j [1 2] (* (at x i) j))",
  );
  assert.equal(show(rightOf("[for, in]")), "[for in]");
});

Deno.test("parseDocument keeps keywords usable as identifiers, like tract", () => {
  assert.equal(show(rightOf("graph + fragment * tensor")), "(+ graph (* fragment tensor))");
  assert.equal(
    show(rightOf("[integer, scalar, version, yield, info, trueish]")),
    "[integer scalar version yield info trueish]",
  );
});

Deno.test("parseDocument keeps both assignments of a reassigned identifier", () => {
  const doc = parseDocument(graphOf("s = shape_of(x);\ns = shape_of(x);\ny = s;"));
  assert.deepEqual(doc.graph.body.map((a) => a.left.kind === "identifier" ? a.left.name : ""), [
    "s",
    "s",
    "y",
  ]);
});

Deno.test("parseDocument tells a comparison from a generic invocation", () => {
  assert.equal(show(rightOf("a < b")), "(< a b)");
  assert.equal(show(rightOf("a < scalar")), "(< a scalar)");
  assert.equal(show(rightOf("a<scalar>(b)")), "(a<scalar> b)");
  assert.equal(show(rightOf("a < b > (c)")), "(> (< a b) c)");
});

Deno.test("parseDocument records positions of rvalues and invocations", () => {
  const doc = parseDocument("version 1.0;\ngraph g(x) -> (y)\n{\n    y = add(x, 1);\n}");
  const right = doc.graph.body[0]!.right;
  assert.deepEqual(right.at, { line: 4, column: 9 });
  assert.equal(right.kind, "invocation");
  if (right.kind !== "invocation") return;
  assert.deepEqual(right.invocation.at, { line: 4, column: 9 });
  assert.deepEqual(right.invocation.args[1]!.value.at, { line: 4, column: 16 });
});

Deno.test("parseDocument rejects an unclosed fragment before the graph", () => {
  const text = "version 1.0;\nfragment silu( x: tensor<scalar> ) -> ( y: tensor<scalar> )\n{\n" +
    "  y = x * sigmoid(x);\n\ngraph g(x) -> (y)\n{\n  y = silu(x);\n}\n";
  assert.throws(() => parseDocument(text), {
    name: "SyntaxError",
    message: /^graph\.nnef:6:1: Expected '}' to close fragment 'silu', found identifier 'graph'$/,
  });
});

Deno.test("parseDocument rejects an unclosed fragment at end of input", () => {
  const text = "version 1.0;\nfragment silu( x: tensor<scalar> ) -> ( y: tensor<scalar> )\n{\n" +
    "  y = x * sigmoid(x);\n    ";
  assert.throws(() => parseDocument(text), {
    name: "SyntaxError",
    message: /^graph\.nnef:5:5: Expected '}' to close fragment 'silu', found end of input$/,
  });
});

Deno.test("parseDocument rejects an unclosed graph body", () => {
  assert.throws(() => parseDocument("version 1.0;\ngraph g(x) -> (y)\n{\n  y = x;\n"), {
    name: "SyntaxError",
    message: /^graph\.nnef:5:1: Expected '}' to close graph 'g', found end of input$/,
  });
});

Deno.test("parseDocument rejects a bad character with its position", () => {
  assert.throws(() => parseDocument(graphOf("y = x @ 2;")), {
    name: "SyntaxError",
    message: /^graph\.nnef:5:7: Unexpected character '@'$/,
  });
  assert.throws(() => parseDocument(graphOf("y = .5;")), {
    name: "SyntaxError",
    message: /^graph\.nnef:5:5: Unexpected character '\.'$/,
  });
  assert.throws(() => parseDocument(graphOf("y = a & b;")), {
    name: "SyntaxError",
    message: /^graph\.nnef:5:7: Unexpected character '&'$/,
  });
});

Deno.test("parseDocument rejects an unterminated string", () => {
  assert.throws(() => parseDocument(graphOf("y = f(label = 'abc);")), {
    name: "SyntaxError",
    message: /^graph\.nnef:5:15: Unterminated string literal, found end of input$/,
  });
  assert.throws(() => parseDocument(graphOf('y = i"abc;')), {
    name: "SyntaxError",
    message: /^graph\.nnef:5:5: Unterminated string literal/,
  });
});

Deno.test("parseDocument rejects a missing semicolon, naming the target", () => {
  assert.throws(() => parseDocument(graphOf("a = f(x)\ny = a;")), {
    name: "SyntaxError",
    message:
      /^graph\.nnef:6:1: Expected ';' to end the assignment to 'a' in graph 'g', found identifier 'y'$/,
  });
});

Deno.test("parseDocument rejects unclosed invocations, arrays and parentheses", () => {
  assert.throws(() => parseDocument(graphOf("y = f(x;")), {
    name: "SyntaxError",
    message: /5:8: Expected ',' or '\)' in the arguments of 'f', found ';'$/,
  });
  assert.throws(() => parseDocument(graphOf("y = [1, 2;")), {
    name: "SyntaxError",
    message: /5:10: Expected '\]' to close an array, found ';'$/,
  });
  assert.throws(() => parseDocument(graphOf("y = (1 + 2;")), {
    name: "SyntaxError",
    message: /5:11: Expected '\)' to close a parenthesised expression/,
  });
  assert.throws(() => parseDocument(graphOf("y = ;")), {
    name: "SyntaxError",
    message: /5:5: Expected an expression, found ';'$/,
  });
  assert.throws(() => parseDocument(graphOf("y = f(a = );")), {
    name: "SyntaxError",
    message: /5:11: Expected an expression, found '\)'$/,
  });
});

Deno.test("parseDocument rejects a missing version, graph, or trailing text", () => {
  assert.throws(() => parseDocument("graph g() -> () {}"), {
    name: "SyntaxError",
    message:
      /^graph\.nnef:1:1: Expected 'version' at the start of the document, found identifier 'graph'$/,
  });
  assert.throws(() => parseDocument(""), {
    name: "SyntaxError",
    message:
      /^graph\.nnef:1:1: Expected 'version' at the start of the document, found end of input$/,
  });
  assert.throws(() => parseDocument("version 1.0;\n"), {
    name: "SyntaxError",
    message: /^graph\.nnef:2:1: Expected 'fragment' or 'graph', found end of input$/,
  });
  assert.throws(() => parseDocument("version 1.0; graph g() -> () {} x"), {
    name: "SyntaxError",
    message: /1:33: Expected end of input after graph 'g', found identifier 'x'$/,
  });
  assert.throws(() => parseDocument("version 1.0\ngraph g() -> () {}"), {
    name: "SyntaxError",
    message: /2:1: Expected ';' after the version number, found identifier 'graph'$/,
  });
  assert.throws(() => parseDocument("version 1.0; extension tract_core"), {
    name: "SyntaxError",
    message: /1:34: Expected ';' to end extension 'tract_core', found end of input$/,
  });
  assert.throws(() => parseDocument("version 1.0; extension ;"), {
    name: "SyntaxError",
    message: /1:24: Expected an extension name after 'extension', found ';'$/,
  });
});

Deno.test("parseDocument rejects malformed fragment declarations", () => {
  const tail = "\ngraph g() -> () {}";
  assert.throws(() => parseDocument("version 1.0; fragment f(x: tensor<>) -> ();" + tail), {
    name: "SyntaxError",
    message:
      /1:35: Expected a type name .* inside 'tensor<>' for parameter 'x' of fragment 'f', found '>'$/,
  });
  assert.throws(() => parseDocument("version 1.0; fragment f(x) -> ();" + tail), {
    name: "SyntaxError",
    message: /1:26: Expected ':' after parameter 'x' of fragment 'f', found '\)'$/,
  });
  assert.throws(() => parseDocument("version 1.0; fragment f(x: real) -> ();" + tail), {
    name: "SyntaxError",
    message: /1:28: Expected a type for parameter 'x' of fragment 'f', found identifier 'real'$/,
  });
  assert.throws(() => parseDocument("version 1.0; fragment f(x: scalar = y) -> ();" + tail), {
    name: "SyntaxError",
    message:
      /Expected a literal as the default of parameter 'x' of fragment 'f', found identifier 'y'$/,
  });
  assert.throws(() => parseDocument("version 1.0; fragment f() -> ()" + tail), {
    name: "SyntaxError",
    message: /2:1: Expected '\{' or ';' after fragment 'f', found identifier 'graph'$/,
  });
  assert.throws(() => parseDocument("version 1.0; fragment f<scalar>() -> ();" + tail), {
    name: "SyntaxError",
    message:
      /1:25: Expected '\?' in the generic declaration of fragment 'f', found identifier 'scalar'$/,
  });
});

Deno.test("parseDocument errors use the given file name", () => {
  assert.throws(() => parseDocument("version 1.0; graph g() -> ( {}"), {
    name: "SyntaxError",
    message: /^graph\.nnef:1:29: Expected an identifier in the outputs of graph 'g', found '\{'$/,
  });
  assert.throws(
    () => parseDocument("version", "model/graph.nnef"),
    /^SyntaxError: model\/graph\.nnef:1:8: Expected a version number after 'version', found end of input$/,
  );
});

Deno.test("parseDocument handles deep nesting and long inputs without hanging", () => {
  const deep = "(".repeat(200) + "x" + ")".repeat(200);
  assert.equal(show(rightOf(deep)), "x");
  const lines = Array.from({ length: 5000 }, (_, i) => `v${i} = add(x, ${i}.0);`).join("\n");
  const doc = parseDocument(graphOf(lines + "\ny = v4999;"));
  assert.equal(doc.graph.body.length, 5001);
});

Deno.test("parseDocument rejects absurd nesting with a SyntaxError, not a stack overflow", () => {
  const ok = "(".repeat(400) + "x" + ")".repeat(400);
  assert.equal(show(rightOf(ok)), "x");
  assert.throws(() => parseDocument(graphOf(`y = ${"(".repeat(100000)}x;`)), {
    name: "SyntaxError",
    message: /5:505: Expected at most 500 levels of nesting, found '\('$/,
  });
  assert.throws(() => parseDocument(graphOf(`y = ${"[".repeat(100000)}`)), {
    name: "SyntaxError",
    message: /Expected at most 500 levels of nesting/,
  });
  assert.throws(() => parseDocument(graphOf(`y = ${"-".repeat(100000)}x;`)), {
    name: "SyntaxError",
    message: /Expected at most 500 levels of nesting/,
  });
  assert.throws(() => parseDocument(graphOf(`${"[".repeat(100000)}y = x;`)), {
    name: "SyntaxError",
    message: /Expected at most 500 levels of nesting/,
  });
  assert.throws(
    () =>
      parseDocument(`version 1.0; fragment f(x: ${"(".repeat(100000)}) -> (); graph g() -> () {}`),
    { name: "SyntaxError", message: /Expected at most 500 levels of nesting/ },
  );
});

Deno.test("parseDocument stops an extension line that runs into the next line's keyword", () => {
  assert.throws(
    () =>
      parseDocument(
        "version 1.0;\nextension tract_registry tract_core\nextension tract_symbol S;\ngraph g() -> () {}",
      ),
    {
      name: "SyntaxError",
      message:
        /^graph\.nnef:3:1: Expected ';' to end extension 'tract_registry', found identifier 'extension'$/,
    },
  );
  assert.throws(
    () => parseDocument("version 1.0;\nextension tract_symbol S\n\n  graph g() -> () {}"),
    {
      name: "SyntaxError",
      message:
        /^graph\.nnef:4:3: Expected ';' to end extension 'tract_symbol', found identifier 'graph'$/,
    },
  );
  const doc = parseDocument("version 1.0;\nextension foo a\n  b;\ngraph g() -> () {}");
  assert.equal(doc.extensions[0]!.rest, "a\n  b");
});

Deno.test("parseDocument accepts CRLF line ends and a leading byte-order mark", () => {
  const doc = parseDocument(
    "\uFEFFversion 1.0;\r\n# c\r\ngraph g(x) -> (y)\r\n{\r\n  y = x;\r\n}\r\n",
  );
  assert.deepEqual(doc.graph.body[0]!.at, { line: 5, column: 3 });
});
