/**
 * The import rules of docs/architecture.md: every module's imports are read from its source,
 * and the test fails on an import cycle anywhere, or on an import from a layer up to a higher
 * one, naming the file and the import.
 */
import assert from "node:assert/strict";

/** The layers, bottom first: a module may import its own layer and those listed before it. */
const LAYERS: readonly string[] = [
  "src/tensor",
  "kernels",
  "src/storage",
  "src/formats",
  "src/nnef",
  "src/ops",
  "src/graph",
  "src/tokenizer",
  "src/scheduler",
  "src/engine",
  "models",
  "routes",
  "cli",
  "mod.ts",
];

const ROOT = new URL("../", import.meta.url);
const SKIPPED = new Set([".git", "node_modules", "target"]);

/** Repository-relative paths of the TypeScript and JavaScript modules. */
function modules(dir = ""): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(new URL(dir || ".", ROOT))) {
    if (entry.name.startsWith(".") || SKIPPED.has(entry.name)) continue;
    const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...modules(path));
    else if (/\.(ts|js|mjs)$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

/** One import of a module: the specifier as written and the line it stands on. */
interface Import {
  readonly specifier: string;
  readonly line: number;
}

const STATIC = /^(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/**
 * The relative imports of a source text: static `import`/`export ... from` statements that
 * begin a line, and `import("...")` calls outside comments.
 */
function importsOf(text: string): Import[] {
  const lineAt = (index: number) => text.slice(0, index).split("\n").length;
  const out: Import[] = [];
  for (const m of text.matchAll(STATIC)) {
    out.push({ specifier: (m[1] ?? m[2])!, line: lineAt(m.index) });
  }
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/^[ \t]*\/\/.*$/gm, (c) => " ".repeat(c.length));
  for (const m of code.matchAll(DYNAMIC)) {
    out.push({ specifier: m[1]!, line: lineAt(m.index) });
  }
  return out.filter((i) => i.specifier.startsWith("."));
}

/** Files any layer may read: the configuration (the version is read from it). */
const SHARED = new Set(["deno.json"]);

/** The layer index of a module, or undefined outside the layers (tests/, bench/, .ci/). */
function layerOf(path: string): number | undefined {
  const i = LAYERS.findIndex((layer) => path === layer || path.startsWith(`${layer}/`));
  return i < 0 ? undefined : i;
}

/** Whether a path is a test or test support, which may drive its code through higher layers. */
function isTest(path: string): boolean {
  return /(_test|(^|\/|_)testing)\.ts$/.test(path) || /\/_test_[a-z_]+\.ts$/.test(path);
}

function resolve(from: string, specifier: string): string {
  return new URL(specifier, new URL(from, "file:///r/")).pathname.slice(3);
}

const graph = new Map<string, { to: string; line: number }[]>();
for (const path of modules()) {
  const text = Deno.readTextFileSync(new URL(path, ROOT));
  graph.set(
    path,
    importsOf(text).map((i) => ({ to: resolve(path, i.specifier), line: i.line })),
  );
}

Deno.test("importsOf reads static, re-exported and dynamic imports, not those in comments", () => {
  const text = [
    'import { a } from "./a.ts";',
    "import {",
    "  b,",
    '} from "../b.ts";',
    'export * from "./c.ts";',
    'import "./d.ts";',
    ' * import { e } from "./e.ts";',
    '// const f = await import("./f.ts");',
    'const g = await import("./g.ts");',
    'import { h } from "hono";',
  ].join("\n");
  assert.deepEqual(importsOf(text).map((i) => `${i.specifier}:${i.line}`), [
    "./a.ts:1",
    "../b.ts:2",
    "./c.ts:5",
    "./d.ts:6",
    "./g.ts:9",
  ]);
});

Deno.test("every layer of the list holds modules, and every module of src/ is in a layer", () => {
  const paths = [...graph.keys()];
  for (const layer of LAYERS) {
    assert.ok(paths.some((p) => layerOf(p) === LAYERS.indexOf(layer)), `${layer} holds nothing`);
  }
  const outside = paths.filter((p) => p.startsWith("src/") && layerOf(p) === undefined);
  assert.deepEqual(outside, [], "modules of src/ in no layer: add their folder to LAYERS");
});

Deno.test("no module imports from a higher layer", () => {
  const upward: string[] = [];
  for (const [path, imports] of graph) {
    const own = layerOf(path);
    if (own === undefined || isTest(path)) continue;
    for (const { to, line } of imports) {
      const theirs = layerOf(to);
      if (SHARED.has(to)) continue;
      if (theirs === undefined || theirs > own) {
        upward.push(
          `${path}:${line} imports ${to} (${LAYERS[own]} may not import ${
            theirs === undefined ? "outside the layers" : LAYERS[theirs]
          })`,
        );
      }
    }
  }
  assert.deepEqual(upward, []);
});

Deno.test("no import cycle anywhere", () => {
  // Tarjan's strongly connected components over every module, tests and benches included.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  let next = 0;
  function visit(v: string): void {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const { to } of graph.get(v) ?? []) {
      if (!graph.has(to)) continue;
      if (!index.has(to)) {
        visit(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(v, Math.min(low.get(v)!, index.get(to)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) {
      const members = new Set(component);
      const edges = component.flatMap((from) =>
        (graph.get(from) ?? []).filter((e) => members.has(e.to)).map((e) =>
          `${from}:${e.line} imports ${e.to}`
        )
      );
      cycles.push(`cycle of ${component.length} modules: ${edges.join("; ")}`);
    }
  }
  for (const path of graph.keys()) if (!index.has(path)) visit(path);
  assert.deepEqual(cycles, []);
});
