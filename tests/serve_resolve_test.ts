import assert from "node:assert/strict";
import { join } from "node:path";
import { openArchive } from "../src/nnef/archive.ts";
import { resolveModel } from "../models/resolve.ts";
import { type LoadProgress, loadService } from "../src/engine/load_service.ts";
import { STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";
import { startTestHub, unreachableHub, writeTinySmolLM2 } from "./_hub.ts";

const REPO = "HuggingFaceTB/SmolLM2-135M-Instruct";

Deno.test("resolveModel downloads an hf: model once, converts it to Q4_0 and reuses the cache", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_resolve_" });
  try {
    const folder = join(root, "hub-folder");
    await writeTinySmolLM2(folder);
    await using hub = startTestHub(REPO, folder);
    const cacheDir = join(root, "cache");
    const log: string[] = [];
    const first = await resolveModel(undefined, {
      cacheDir,
      hfEndpoint: hub.url,
      log: (line) => log.push(line),
    });
    assert.equal(first.origin, "hub-download");
    assert.equal(first.id, REPO);
    assert.ok(first.location.startsWith(cacheDir));
    assert.ok(
      hub.requests.includes(`/${REPO}/resolve/main/model.safetensors`),
      hub.requests.join(),
    );
    const archive = await openArchive(first.location);
    try {
      assert.ok(archive.has("graph.nnef"));
      assert.ok(archive.has("tokenizer.json"));
      assert.ok(archive.has("chat_template.jinja"));
    } finally {
      await archive.close();
    }
    assert.ok(log.some((line) => /downloading from/.test(line)), log.join("\n"));

    const before = hub.requests.length;
    const second = await resolveModel(`hf:${REPO}`, { cacheDir, hfEndpoint: hub.url });
    assert.equal(second.origin, "hub-cache");
    assert.equal(second.location, first.location);
    assert.equal(hub.requests.length, before);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolveModel without network and cache says how to set MODEL", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_resolve_" });
  try {
    await assert.rejects(
      resolveModel(undefined, {
        cacheDir: root,
        hfEndpoint: unreachableHub(),
        log: () => {},
      }),
      (e: Error) => {
        assert.match(e.message, /Cannot get the model hf:HuggingFaceTB\/SmolLM2-135M-Instruct/);
        assert.match(e.message, /Set MODEL to a local archive/);
        return true;
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const TINY_GGUF = new URL("../../shared/fixtures/gguf/llama-2-tiny-random.gguf", import.meta.url)
  .pathname;

Deno.test("resolveModel converts a local GGUF file once into the cache and reuses it until the file changes", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_resolve_" });
  try {
    const gguf = join(root, "tiny.gguf");
    await Deno.copyFile(TINY_GGUF, gguf);
    const cacheDir = join(root, "cache");
    const log: string[] = [];
    const phases: string[] = [];
    const options = {
      cacheDir,
      log: (line: string) => log.push(line),
      onProgress: (p: LoadProgress) => phases.push(`${p.phase} ${p.doneBytes}/${p.totalBytes}`),
    };
    const first = await resolveModel(gguf, options);
    assert.equal(first.origin, "converted");
    assert.equal(first.id, "tiny.gguf");
    assert.ok(first.location.startsWith(join(cacheDir, "converted", "tiny-")), first.location);
    const size = (await Deno.stat(first.location)).size;
    assert.equal(phases.at(-1), `convert ${size}/${size}`);
    assert.match(log.join("\n"), /converting the GGUF file .*tiny\.gguf to Q4_0/);
    const archive = await openArchive(first.location);
    try {
      assert.ok(archive.has("graph.nnef") && archive.has("tokenizer.json"));
    } finally {
      await archive.close();
    }
    const written = (await Deno.stat(first.location)).mtime;

    phases.length = 0;
    const second = await resolveModel(gguf, options);
    assert.deepEqual(second, { ...first, origin: "converted-cache" });
    assert.deepEqual(phases, []);
    assert.deepEqual((await Deno.stat(first.location)).mtime, written);
    assert.match(log.at(-1)!, /using .* converted earlier from .*tiny\.gguf/);

    await Deno.utime(gguf, new Date(), new Date(Date.now() - 60_000));
    const changed = await resolveModel(gguf, options);
    assert.equal(changed.origin, "converted");
    assert.notEqual(changed.location, first.location);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolveModel converts a Hugging Face folder, which then loads with its own tokenizer", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_resolve_" });
  try {
    const folder = join(root, "SmolLM2-tiny");
    await writeTinySmolLM2(folder);
    const resolved = await resolveModel(folder, { cacheDir: join(root, "cache"), log: () => {} });
    assert.equal(resolved.origin, "converted");
    assert.equal(resolved.id, "SmolLM2-tiny");
    const seen: LoadProgress[] = [];
    let read: (() => LoadProgress) | undefined;
    const loaded = await loadService(resolved.location, {
      modelId: resolved.id,
      onLoading: (progress) => (read = progress),
    });
    await loaded.weightsReady;
    seen.push(read!());
    assert.equal(loaded.tokenizerFrom, `${resolved.location} (tokenizer.json)`);
    assert.equal(seen[0]!.phase, "load");
    assert.ok(seen[0]!.totalBytes! > loaded.bytes);
    assert.equal(seen[0]!.doneBytes, seen[0]!.totalBytes);
    const again = await resolveModel(folder, { cacheDir: join(root, "cache"), log: () => {} });
    assert.equal(again.origin, "converted-cache");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolveModel names what a local path should have been", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_resolve_" });
  try {
    await assert.rejects(resolveModel(root), {
      name: "TypeError",
      message: /is a folder with neither graph\.nnef \(an NNEF model\) nor config\.json/,
    });
    const checkpoint = new URL("../../shared/fixtures/stories260K/stories260K.bin", import.meta.url)
      .pathname;
    await assert.rejects(resolveModel(checkpoint), {
      name: "TypeError",
      message:
        /is neither an NNEF archive .*, a GGUF file nor a Hugging Face folder; a llama2\.c checkpoint converts with 'deno task convert .*stories260K\.bin --tokenizer tokenizer\.bin/,
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resolveModel passes local paths, http(s) and s3:// URLs through", async () => {
  const resolved = await resolveModel(STORIES_ARCHIVE);
  assert.deepEqual(resolved, {
    location: STORIES_ARCHIVE,
    id: "stories260K_f32.nnef.tgz",
    origin: "local",
  });
  await assert.rejects(resolveModel("/no/such/model.nnef.tar"), Deno.errors.NotFound);
  const url = await resolveModel("https://example.com/models/m.nnef.tar");
  assert.equal(url.origin, "url");
  assert.equal(url.id, "m.nnef.tar");
  assert.deepEqual(await resolveModel("s3://bucket/dir/m.nnef.tar"), {
    location: "s3://bucket/dir/m.nnef.tar",
    id: "m.nnef.tar",
    origin: "s3",
  });
  await assert.rejects(resolveModel("s3://bucket"), TypeError);
});

Deno.test("loadService reads a model from an http:// URL and a signed s3:// URL", async () => {
  const bytes = await Deno.readFile(STORIES_ARCHIVE);
  const seen: { path: string; auth: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    seen.push({ path, auth: req.headers.get("Authorization") });
    if (path !== "/models/stories.nnef.tgz" && path !== "/bucket/stories.nnef.tgz") {
      return new Response("NoSuchKey", { status: 404 });
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("Range") ?? "");
    if (!range) return new Response(bytes);
    const start = Number(range[1]);
    const end = range[2] === "" ? bytes.length - 1 : Math.min(Number(range[2]), bytes.length - 1);
    return new Response(bytes.slice(start, end + 1), {
      status: 206,
      headers: { "Content-Range": `bytes ${start}-${end}/${bytes.length}` },
    });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const saved = new Map(
    ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"].map((
      name,
    ) => [name, Deno.env.get(name)]),
  );
  try {
    const viaHttp = await loadService(`${base}/models/stories.nnef.tgz`, {
      modelId: "stories",
      tokenizer: STORIES_TOKENIZER,
    });
    Deno.env.set("AWS_ENDPOINT_URL", base);
    Deno.env.set("AWS_ACCESS_KEY_ID", "AKIDTEST");
    Deno.env.set("AWS_SECRET_ACCESS_KEY", "secret");
    Deno.env.set("AWS_REGION", "auto");
    const resolved = await resolveModel("s3://bucket/stories.nnef.tgz");
    const viaS3 = await loadService(resolved.location, {
      modelId: "stories",
      tokenizer: STORIES_TOKENIZER,
    });
    assert.ok(
      seen.some((r) =>
        r.path === "/bucket/stories.nnef.tgz" && /^AWS4-HMAC-SHA256 /.test(r.auth ?? "")
      ),
    );
    for (const { service, weightsReady } of [viaHttp, viaS3]) {
      await weightsReady;
      const ids = service.encodePrompt("Once upon a time");
      let text = "";
      for await (
        const event of service.generate(ids, {
          sampling: { temperature: 0 },
          stop: [],
          maxTokens: 8,
        })
      ) if (event.type === "text") text += event.text;
      assert.match(text, /^, there was a little girl/);
    }
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
    await server.shutdown();
  }
});
