import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseDocument } from "../src/nnef/parse.ts";
import { parseQuant } from "../src/nnef/quant.ts";
import { readMembers } from "./_archives.ts";

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
    const members = await readMembers(
      fileURLToPath(url),
      (n) => isGraphMember(n) || isQuantMember(n),
    );
    const graphs = members.map((m) => m.name).filter(isGraphMember);
    assert.ok(graphs.includes("graph.nnef"), `no graph.nnef in ${relative(url)}`);
    const decoder = new TextDecoder();
    for (const { name, data } of members) {
      const file = `${relative(url)}:${name}`;
      if (isGraphMember(name)) {
        const doc = parseDocument(decoder.decode(data), file);
        assert.ok(doc.graph.body.length > 0, file);
      } else {
        parseQuant(decoder.decode(data), file);
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
  const [graph] = await readMembers(fileURLToPath(url), (n) => n === "graph.nnef");
  const doc = parseDocument(new TextDecoder().decode(graph!.data));
  const symbols = doc.extensions.filter((e) => e.id === "tract_symbol").map((e) => e.rest);
  assert.deepEqual(symbols, ["S", "P"]);
  const asserts = doc.extensions.filter((e) => e.id === "tract_assert").map((e) => e.rest);
  assert.ok(asserts.includes("tg: S==1") && asserts.includes("pp: P==0"));
  assert.equal(doc.graph.inputs.length, 11);
  assert.equal(doc.graph.outputs.length, 11);
  assert.equal(doc.graph.inputs[0], "input_ids");
  assert.ok(doc.fragments.some((f) => f.decl.name === "tract_core_properties"));
});
