/**
 * `deno task bench:decode`: decode tokens/s of stories260K through a {@link Session} with the
 * runtime-owned KV cache (in-place append), and the ratio to the naive reference in the same
 * run: the same graph as exported, where each step concatenates the whole past into a new
 * cache tensor and feeds it back as input. A third case also runs the linears in the WASM
 * kernels. Prints one line per case, then one JSON line.
 */
import { loadModel } from "../src/graph/model.ts";
import { Session } from "../src/engine/session.ts";
import { argmax } from "../src/engine/sampler.ts";
import { loadKernels } from "../kernels/mod.ts";

const FIXTURES = new URL("../../shared/fixtures/stories260K/nnef/", import.meta.url);
const PROMPT = [1, 403, 407, 261, 378];
// 500 positions: the context of stories260K is 512 (`S+P < 512`), the longer the past the
// more the naive concat of the whole cache costs.
const STEPS = Number(Deno.env.get("RILL_BENCH_STEPS") ?? 500 - PROMPT.length);

type Mode = "append" | "kernels" | "naive";

interface Result {
  readonly model: string;
  readonly mode: Mode;
  readonly tokensPerSecond: number;
  readonly prefillTokensPerSecond: number;
}

function measure(session: Session): { decode: number; prefill: number; ids: number[] } {
  session.reset();
  const t0 = performance.now();
  let logits = session.prefill(PROMPT);
  const t1 = performance.now();
  const ids: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const id = argmax(logits);
    ids.push(id);
    logits = session.decode(id);
  }
  const t2 = performance.now();
  return { decode: (STEPS / (t2 - t1)) * 1000, prefill: (PROMPT.length / (t1 - t0)) * 1000, ids };
}

const kernels = await loadKernels({ threads: 1 });
const results: Result[] = [];
const ratios: Record<string, number> = {};
for (const name of ["stories260K_f32", "stories260K_q40"]) {
  const model = await loadModel(new URL(`${name}.nnef.tgz`, FIXTURES).pathname);
  const fast = new Session(model);
  const naive = new Session(model, { appendInPlace: false });
  const withKernels = new Session(model, { kernels });
  // Warm up the JIT on every path, then alternate and keep the best of 3 runs each, so that
  // all see the same machine noise.
  measure(fast);
  measure(naive);
  measure(withKernels);
  const runs: Record<Mode, ReturnType<typeof measure>[]> = { append: [], kernels: [], naive: [] };
  for (let r = 0; r < 3; r++) {
    runs.append.push(measure(fast));
    runs.kernels.push(measure(withKernels));
    runs.naive.push(measure(naive));
  }
  if (runs.append[0]!.ids.join() !== runs.naive[0]!.ids.join()) {
    throw new Error(`${name}: the append and naive paths generated different tokens`);
  }
  for (const mode of ["append", "kernels", "naive"] as const) {
    const a = runs[mode].reduce((x, y) => (y.decode > x.decode ? y : x));
    results.push({
      model: name,
      mode,
      tokensPerSecond: a.decode,
      prefillTokensPerSecond: a.prefill,
    });
    console.log(
      `${name} ${mode.padEnd(7)} decode ${a.decode.toFixed(1)} tokens/s, prefill ${
        a.prefill.toFixed(1)
      } tokens/s (${STEPS} steps after a ${PROMPT.length}-token prompt)`,
    );
  }
  const [a, k, n] = results.slice(-3);
  ratios[name] = a!.tokensPerSecond / n!.tokensPerSecond;
  ratios[`${name}_kernels`] = k!.tokensPerSecond / n!.tokensPerSecond;
  console.log(
    `${name} append/naive decode ratio ${ratios[name]!.toFixed(2)}x, kernels/naive ${
      ratios[`${name}_kernels`]!.toFixed(2)
    }x`,
  );
}
kernels.close();
console.log(JSON.stringify({ bench: "decode", steps: STEPS, results, ratios }));
