import assert from "node:assert/strict";
import { parseDocument } from "../src/nnef/parse.ts";
import { parseQuant } from "../src/nnef/quant.ts";

const FIXTURES = new URL("../../shared/fixtures/", import.meta.url);
const CASES = new URL("tract-nnef-cases/", FIXTURES);
const STORIES = new URL("stories260K/nnef/", FIXTURES);

function walk(dir: URL, accept: (name: string) => boolean): URL[] {
  const found: URL[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isDirectory) {
      found.push(...walk(new URL(`${entry.name}/`, dir), accept));
    } else if (entry.isFile && accept(entry.name)) {
      found.push(new URL(entry.name, dir));
    }
  }
  return found.sort((a, b) => a.href.localeCompare(b.href));
}

function relative(url: URL): string {
  return url.href.slice(FIXTURES.href.length);
}

function isArchive(name: string): boolean {
  return name.endsWith(".nnef.tgz") || name.endsWith(".nnef.tar");
}

/** Reads every member of a tar or gzip'd tar whose name satisfies `accept` (test-only reader). */
async function readArchiveMembers(
  url: URL,
  accept: (name: string) => boolean,
): Promise<Map<string, Uint8Array>> {
  let bytes = await Deno.readFile(url);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  const text = new TextDecoder();
  const field = (offset: number, length: number) =>
    text.decode(bytes.subarray(offset, offset + length)).replace(/\0.*$/s, "");
  const members = new Map<string, Uint8Array>();
  let longName: string | null = null;
  for (let offset = 0; offset + 512 <= bytes.length;) {
    const name = field(offset, 100);
    if (name === "") break;
    const size = parseInt(field(offset + 124, 12).trim() || "0", 8);
    const type = field(offset + 156, 1);
    const prefix = field(offset + 257, 6).startsWith("ustar") ? field(offset + 345, 155) : "";
    const body = bytes.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      const path = /\d+ path=([^\n]*)\n/.exec(text.decode(body));
      if (path) longName = path[1]!;
      continue;
    }
    if (type === "L") {
      longName = text.decode(body).replace(/\0.*$/s, "");
      continue;
    }
    const full = (longName ?? (prefix === "" ? name : `${prefix}/${name}`)).replace(/^\.\//, "");
    longName = null;
    if ((type === "0" || type === "") && accept(full)) members.set(full, body);
  }
  return members;
}

function isGraphMember(name: string): boolean {
  return name === "graph.nnef" || name.endsWith("/graph.nnef");
}

function isQuantMember(name: string): boolean {
  return name === "graph.quant" || name.endsWith("/graph.quant");
}

const looseGraphs = walk(CASES, (name) => name === "graph.nnef");
const archives = [...walk(CASES, isArchive), ...walk(STORIES, isArchive)];
const quants = walk(FIXTURES, (name) => name === "graph.quant");

Deno.test("fixture corpus has the expected number of graphs, archives and quant files", () => {
  assert.ok(looseGraphs.length >= 50, `found ${looseGraphs.length} graph.nnef files`);
  assert.ok(archives.length >= 21, `found ${archives.length} archives`);
  assert.ok(quants.length >= 6, `found ${quants.length} graph.quant files`);
});

for (const url of looseGraphs) {
  Deno.test(`parseDocument parses ${relative(url)}`, async () => {
    const doc = parseDocument(await Deno.readTextFile(url), relative(url));
    assert.equal(doc.version, "1.0");
    assert.ok(doc.graph.name.length > 0);
    assert.ok(doc.graph.body.length > 0);
  });
}

for (const url of archives) {
  Deno.test(`parseDocument parses the graphs inside ${relative(url)}`, async () => {
    const members = await readArchiveMembers(url, (n) => isGraphMember(n) || isQuantMember(n));
    const graphs = [...members.keys()].filter(isGraphMember);
    assert.ok(graphs.includes("graph.nnef"), `no graph.nnef in ${relative(url)}`);
    const decoder = new TextDecoder();
    for (const [name, bytes] of members) {
      const file = `${relative(url)}:${name}`;
      if (isGraphMember(name)) {
        const doc = parseDocument(decoder.decode(bytes), file);
        assert.ok(doc.graph.body.length > 0, file);
      } else {
        parseQuant(decoder.decode(bytes), file);
      }
    }
  });
}

for (const url of quants) {
  Deno.test(`parseQuant parses ${relative(url)}`, async () => {
    const specs = parseQuant(await Deno.readTextFile(url), relative(url));
    assert.ok(specs.size > 0);
  });
}

Deno.test("parseDocument reads the stories260K q40 graph: symbols, scenarios and IO", async () => {
  const url = new URL("stories260K_q40.nnef.tgz", STORIES);
  const members = await readArchiveMembers(url, (n) => n === "graph.nnef");
  const doc = parseDocument(new TextDecoder().decode(members.get("graph.nnef")!));
  const symbols = doc.extensions.filter((e) => e.id === "tract_symbol").map((e) => e.rest);
  assert.deepEqual(symbols, ["S", "P"]);
  const asserts = doc.extensions.filter((e) => e.id === "tract_assert").map((e) => e.rest);
  assert.ok(asserts.includes("tg: S==1") && asserts.includes("pp: P==0"));
  assert.equal(doc.graph.inputs.length, 11);
  assert.equal(doc.graph.outputs.length, 11);
  assert.equal(doc.graph.inputs[0], "input_ids");
  assert.ok(doc.fragments.some((f) => f.decl.name === "tract_core_properties"));
});
