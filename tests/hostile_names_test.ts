/**
 * File names read from an index never leave their folder: a hub whose
 * `model.safetensors.index.json` names a shard outside the cache, and a local folder whose index
 * names one outside it, are refused before anything is fetched, opened or written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { convertModel } from "../models/convert.ts";
import { resolveModel } from "../models/resolve.ts";
import { writeTinySmolLM2 } from "./_hub.ts";

const HOSTILE = [
  "../../../escape.safetensors",
  "/tmp/absolute.safetensors",
  "a/../../b.safetensors",
  "..\\..\\c.safetensors",
  "",
];

/** A hub serving `folder` for any repo, with an index whose only shard is `shard`. */
function hostileHub(folder: string, shard: string) {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const file = path.split("/resolve/main/")[1] ?? "";
    if (file === "model.safetensors.index.json") {
      return Response.json({ weight_map: { "model.embed_tokens.weight": shard } });
    }
    try {
      return new Response(await Deno.readFile(join(folder, "model.safetensors")));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, close: () => server.shutdown() };
}

async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("a hub's shard names that leave the cache are refused and nothing is written outside", async () => {
  const root = await Deno.makeTempDir();
  try {
    const model = join(root, "model");
    await writeTinySmolLM2(model);
    for (const shard of HOSTILE) {
      const hub = hostileHub(model, shard);
      const cacheDir = join(root, "deep", "cache");
      try {
        await assert.rejects(
          resolveModel("hf:org/tiny", { cacheDir, hfEndpoint: hub.url, log: () => {} }),
          (e: Error) => {
            assert.match(e.message, /file name .* (refused|leaves the folder)/, e.message);
            return true;
          },
        );
        assert.ok(!hub.requests.some((p) => p.includes("safetensors") && !p.endsWith(".json")));
      } finally {
        await hub.close();
      }
      assert.deepEqual(await listing(root), ["deep", "model"]);
      assert.deepEqual(await listing(join(root, "deep")), ["cache"]);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("convert refuses a local index whose shard names leave the folder, before opening them", async () => {
  const root = await Deno.makeTempDir();
  try {
    const folder = join(root, "model");
    await writeTinySmolLM2(folder);
    // A real shard outside the folder, which a '../' name would reach.
    await Deno.rename(join(folder, "model.safetensors"), join(root, "outside.safetensors"));
    for (const shard of ["../outside.safetensors", join(root, "outside.safetensors")]) {
      await Deno.writeTextFile(
        join(folder, "model.safetensors.index.json"),
        JSON.stringify({ weight_map: { "model.embed_tokens.weight": shard } }),
      );
      const output = join(root, "out.nnef.tar");
      await assert.rejects(convertModel(folder, output), (e: Error) => {
        assert.ok(e instanceof RangeError, e.message);
        assert.match(e.message, /model\.safetensors\.index\.json: file name .* refused/);
        return true;
      });
      assert.deepEqual(await listing(root), ["model", "outside.safetensors"]);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
