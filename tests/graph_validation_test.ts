/**
 * A graph that cannot run (here a self-reference in the stories260K export) is refused at load,
 * with its file, line and column: `inspect` fails instead of printing a summary, `generate` and
 * `serve` before any weight is used.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createServer, readServeConfig } from "../cli/serve.ts";
import { readMembers } from "./_archives.ts";
import { STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SELF = "model_model__0_inputLayernorm_hiddenStatesMul1";

/** The stories260K export as a folder whose graph has `SELF` reading itself (line 197). */
async function brokenFolder(dir: string): Promise<string> {
  for (const member of await readMembers(STORIES_ARCHIVE)) {
    let data = member.data;
    if (member.name === "graph.nnef") {
      const text = new TextDecoder().decode(data);
      const broken = text.replace(
        `${SELF} = mul(model_model__0_inputLayernorm_hiddenStatesTo0`,
        `${SELF} = mul(${SELF}`,
      );
      assert.notEqual(broken, text);
      data = new TextEncoder().encode(broken);
    }
    await Deno.writeFile(join(dir, member.name), data);
  }
  return dir;
}

const PROBLEM = new RegExp(`graph\\.nnef:197:\\d+: '${SELF}' is used in its own definition`);

async function rill(args: string[]): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, out: text };
}

Deno.test("inspect and generate name the line and column of a self-reference instead of running", async () => {
  const dir = await brokenFolder(await Deno.makeTempDir());
  try {
    for (const flags of [[], ["--no-shapes"]]) {
      const { code, out } = await rill(["inspect", dir, ...flags]);
      assert.equal(code, 1, out);
      assert.match(out, PROBLEM);
      assert.doesNotMatch(out, /Inputs|inputs:/);
    }
    const { code, out } = await rill([
      "generate",
      "--model",
      dir,
      "--tokenizer",
      STORIES_TOKENIZER,
      "--prompt",
      "Once",
    ]);
    assert.equal(code, 1, out);
    assert.match(out, PROBLEM);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve never reports ready for a graph that cannot run, and says why", async () => {
  const dir = await brokenFolder(await Deno.makeTempDir());
  try {
    const server = createServer({
      ...readServeConfig([], () => undefined),
      model: dir,
      tokenizer: STORIES_TOKENIZER,
      modelId: "stories",
      threads: 0,
    }, () => {});
    await assert.rejects(server.loaded, PROBLEM);
    const ready = await server.fetch(new Request("http://localhost/ready"));
    assert.equal(ready.status, 503);
    assert.equal((await ready.json()).status, "failed");
    const cli = await rill([
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--model",
      dir,
      "--tokenizer",
      STORIES_TOKENIZER,
      "--threads",
      "0",
    ]);
    assert.equal(cli.code, 1, cli.out);
    assert.match(cli.out, /^rill serve: /m);
    assert.match(cli.out, PROBLEM);
    assert.doesNotMatch(cli.out, /rill: ready/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
