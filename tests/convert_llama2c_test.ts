import assert from "node:assert/strict";
import { join } from "node:path";
import { convertModel, type ConvertProgress } from "../models/convert.ts";
import { convertCommand } from "../cli/convert.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { parseDocument } from "../src/nnef/parse.ts";
import { readsEagerly, variableDecls } from "../src/graph/weights.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { argmax } from "../src/engine/sampler.ts";
import { fixture, maxAbsDiff, plainSession, withDir } from "./convert_fixtures.ts";

const STORIES = fixture("stories260K");

async function convertStories(dir: string, q40: boolean): Promise<string> {
  const output = join(dir, q40 ? "stories_q40.nnef.tar" : "stories.nnef.tar");
  // torch_to_nnef's Q4_0 export keeps the embedding in f32.
  await convertModel(join(STORIES, "stories260K.bin"), output, {
    tokenizer: join(STORIES, "tok512.bin"),
    q40,
    floatEmbedding: true,
  });
  return output;
}

/** torch_to_nnef names the wrapped HF module `model.`, and stores the tied weight as lm_head. */
function t2nLabel(name: string): string {
  return name === "model.embed_tokens.weight.dat" ? "model.lm_head.weight.dat" : `model.${name}`;
}

Deno.test("convertModel maps stories260K.bin to the IO, symbols and asserts of the torch_to_nnef export", async () => {
  await withDir(async (dir) => {
    const archive = await openArchive(await convertStories(dir, false));
    try {
      const text = new TextDecoder().decode(await archive.read("graph.nnef"));
      const doc = parseDocument(text);
      const reference = await openArchive(join(STORIES, "nnef/stories260K_f32.nnef.tgz"));
      try {
        const refDoc = parseDocument(new TextDecoder().decode(await reference.read("graph.nnef")));
        assert.deepEqual(doc.graph.inputs, refDoc.graph.inputs);
        assert.deepEqual(doc.graph.outputs, refDoc.graph.outputs);
        const extensions = (d: typeof doc) =>
          d.extensions.map((e) => `${e.id} ${e.rest}`.replace(/\s+/g, " ").trim());
        assert.deepEqual(extensions(doc), extensions(refDoc));
        // Every float weight is byte-identical to torch_to_nnef's, header included.
        for (const m of archive.members().filter((m) => m.name.endsWith(".dat"))) {
          assert.deepEqual(
            await archive.read(m.name),
            await reference.read(t2nLabel(m.name)),
            m.name,
          );
        }
      } finally {
        await reference.close();
      }
      for (let i = 0; i < 5; i++) {
        assert.match(
          text,
          new RegExp(
            `in_cache_value_${i} = tract_core_external\\(shape = \\[1, 4, P, 8\\], datum_type = 'f32'\\)`,
          ),
        );
      }
      // 260032 parameters, as torch_to_nnef counts them.
      assert.match(text, /\("n_parameters", "260032"\)/);
      const config = JSON.parse(new TextDecoder().decode(await archive.read("config.json")));
      assert.equal(config.rms_norm_eps, 1e-5);
      assert.equal(config.rope_theta, 10000);
      assert.equal(config.tie_word_embeddings, true);
      const tokenizer = JSON.parse(new TextDecoder().decode(await archive.read("tokenizer.json")));
      assert.equal(tokenizer.model.type, "BPE");
      assert.equal(tokenizer.model.byte_fallback, true);
    } finally {
      await archive.close();
    }
  });
});

Deno.test("convertModel --q40 writes the same Q4_0 blocks as torch_to_nnef's min_max_q4_0, and they run", async () => {
  await withDir(async (dir) => {
    const path = await convertStories(dir, true);
    const io = JSON.parse(await Deno.readTextFile(join(STORIES, "nnef/stories260K_q40.io.json")));
    const session = await plainSession(path);
    const logits = session.prefill(io.step_a_prefill.inputs.input_ids.data);
    assert.ok(maxAbsDiff(logits, io.step_a_prefill.outputs.outputs.data) < 1e-4);
    const archive = await openArchive(path);
    const reference = await openArchive(join(STORIES, "nnef/stories260K_q40.nnef.tgz"));
    try {
      let q40 = 0;
      for (const m of archive.members().filter((m) => m.name.endsWith(".dat"))) {
        const mine = await archive.read(m.name);
        assert.deepEqual(mine, await reference.read(t2nLabel(m.name)), m.name);
        if (mine[48] === 0x40 && mine[49] === 0x30) q40++;
      }
      // q/k/v/o, gate and up in 5 layers; down_proj (input 172) and the tied embedding stay f32.
      assert.equal(q40, 30);
    } finally {
      await archive.close();
      await reference.close();
    }
  });
});

interface IoStep {
  readonly inputs: { readonly input_ids: { readonly data: number[] } };
  readonly outputs: { readonly outputs: { readonly data: number[] } };
}

Deno.test("convertModel output of stories260K runs greedy like llama2.c and matches the reference logits", async () => {
  await withDir(async (dir) => {
    const path = await convertStories(dir, false);
    const io = JSON.parse(await Deno.readTextFile(join(STORIES, "nnef/stories260K_f32.io.json")));
    const reference = JSON.parse(
      await Deno.readTextFile(join(STORIES, "reference_stories260K_greedy64.json")),
    );
    const session = await plainSession(path);
    const stepA: IoStep = io.step_a_prefill;
    const stepB: IoStep = io.step_b_decode;
    assert.deepEqual(stepA.inputs.input_ids.data, reference.prompt_tokens);
    let logits = session.prefill(stepA.inputs.input_ids.data);
    assert.ok(maxAbsDiff(logits, stepA.outputs.outputs.data) < 1e-4);
    const sequence = reference.prompt_tokens.slice(1) as number[];
    for (let pos = session.position; sequence.length < reference.sequence_after_bos.length; pos++) {
      const next = argmax(logits);
      sequence.push(next);
      if (pos === 5) {
        assert.deepEqual([next], stepB.inputs.input_ids.data);
      }
      logits = session.decode(next);
      if (pos === 5) assert.ok(maxAbsDiff(logits, stepB.outputs.outputs.data) < 1e-4);
    }
    assert.deepEqual(sequence, reference.sequence_after_bos);

    // The tokenizer converted from tok512.bin turns the ids back into llama2.c's text.
    const archive = await openArchive(path);
    try {
      await Deno.writeFile(join(dir, "tokenizer.json"), await archive.read("tokenizer.json"));
      await Deno.writeFile(
        join(dir, "tokenizer_config.json"),
        await archive.read("tokenizer_config.json"),
      );
    } finally {
      await archive.close();
    }
    const tokenizer = await loadTokenizer(join(dir, "tokenizer.json"));
    assert.deepEqual(tokenizer.encode("Once upon a time"), reference.prompt_tokens);
    const text = await Deno.readTextFile(join(STORIES, "greedy64.txt"));
    assert.equal(tokenizer.decode(sequence), text.replace(/\n$/, ""));
  });
});

Deno.test("convertCommand converts stories260K with --q40 and reports progress through convertModel", async () => {
  await withDir(async (dir) => {
    const output = join(dir, "cli.nnef.tar");
    const code = await convertCommand([
      join(STORIES, "stories260K.bin"),
      "--tokenizer",
      join(STORIES, "tok512.bin"),
      "--q40",
      "--output",
      output,
      "--quiet",
    ]);
    assert.equal(code, 0);
    const archive = await openArchive(output);
    try {
      assert.ok(archive.has("model.layers.4.mlp.up_proj.weight.dat"));
    } finally {
      await archive.close();
    }
    const seen: ConvertProgress[] = [];
    await convertModel(join(STORIES, "stories260K.bin"), join(dir, "p.nnef.tar"), {
      tokenizer: join(STORIES, "tok512.bin"),
      onProgress: (p) => seen.push(p),
    });
    const last = seen.at(-1)!;
    assert.equal(last.tensorsDone, 48);
    assert.equal(last.tensorsTotal, 48);
    assert.equal(last.bytesDone, (await Deno.stat(join(dir, "p.nnef.tar"))).size - 1024);
    assert.ok(seen.every((p, i) => i === 0 || p.bytesDone >= seen[i - 1]!.bytesDone));
    assert.equal(
      await convertCommand([join(STORIES, "stories260K.bin"), "-o", join(dir, "x.tar"), "--quiet"]),
      1,
    );
  });
});

Deno.test("convertModel writes the small weights before the large ones, and those in the order the graph first uses them", async () => {
  await withDir(async (dir) => {
    const archive = await openArchive(await convertStories(dir, true));
    try {
      const doc = parseDocument(new TextDecoder().decode(await archive.read("graph.nnef")));
      const decls = variableDecls(doc);
      const shapeOf = new Map(decls.map((d) => [`${d.label}.dat`, d.shape]));
      const weights = archive.members().filter((m) => m.name.endsWith(".dat"))
        .sort((a, b) => a.offset - b.offset).map((m) => m.name);
      const small = weights.filter((n) => readsEagerly(shapeOf.get(n)!));
      const large = weights.filter((n) => !readsEagerly(shapeOf.get(n)!));
      assert.ok(small.length > 0 && large.length > 0);
      assert.deepEqual(weights, [...small, ...large]);
      const firstUse = decls.map((d) => `${d.label}.dat`).filter((n) => large.includes(n));
      assert.deepEqual(large, firstUse);
      assert.equal(large[0], "model.embed_tokens.weight.dat");
    } finally {
      await archive.close();
    }
  });
});
