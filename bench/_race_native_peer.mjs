// bench:race's native llama.cpp peer, run by Node: node-llama-cpp (its prebuilt CPU binary) on
// one GGUF at a fixed thread count. Requests arrive as JSON lines on stdin; each answer is one
// line on stdout starting with "@race " (node-llama-cpp may log on stdout too).
//
// Usage: node _race_native_peer.mjs <node_modules folder> <model.gguf> <threads>
import { createInterface } from "node:readline";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, modelPath, threadArg] = process.argv.slice(2);
const threads = Number(threadArg);
const { getLlama, LlamaLogLevel, TokenBias } = await import(
  pathToFileURL(join(modules, "node-llama-cpp", "dist", "index.js")).href
);

const llama = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.error,
  logger: (_level, message) => process.stderr.write(`${message}\n`),
});
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: 512, threads });
const sequence = context.getSequence();
const noEos = new TokenBias(model.tokenizer);
for (const id of [model.tokens.eos, model.tokens.eot].filter((t) => t !== null)) {
  noEos.set(id, "never");
}

/** Greedy generation: prefill of `prompt`, then `decode` steps; times taken apart. */
async function run({ prompt, decode }) {
  await sequence.clearHistory();
  const ids = [];
  const t0 = performance.now();
  let t1 = t0;
  for await (const id of sequence.evaluate(prompt, { temperature: 0, tokenBias: noEos })) {
    ids.push(id);
    if (ids.length === 1) t1 = performance.now();
    if (ids.length === decode + 1) break;
  }
  const t2 = performance.now();
  return { prefillMs: t1 - t0, decodeMs: t2 - t1, ids };
}

/**
 * The `top` most likely next tokens after `prompt` and their logits relative to the first
 * (log-probabilities at temperature 1 over the top `top`, which differ as the logits do).
 */
async function probe({ prompt, top }) {
  await sequence.clearHistory();
  const options = { temperature: 1, topK: top, topP: 1, minP: 0, seed: 1 };
  const metadata = { probabilities: true };
  for await (const out of sequence.evaluateWithMetadata(prompt, metadata, options)) {
    const pairs = [...out.probabilities.entries()].slice(0, top);
    const first = Math.log(pairs[0][1]);
    return { ids: pairs.map(([id]) => id), logits: pairs.map(([, p]) => Math.log(p) - first) };
  }
  throw new Error("node-llama-cpp generated no token");
}

const handlers = {
  info: () => ({
    version: llama.llamaCppRelease,
    build: llama.buildType,
    cpu: llama.systemInfo,
    threads: context.currentThreads,
    batchSize: context.batchSize,
    flashAttention: context.flashAttention,
  }),
  tokenize: ({ text }) => model.tokenize(text),
  detokenize: ({ ids, after }) => model.detokenize(ids, false, after),
  run,
  probe,
};

function answer(message) {
  process.stdout.write(`@race ${JSON.stringify(message)}\n`);
}

answer({ id: 0, result: "ready" });
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  const { id, op, ...args } = JSON.parse(line);
  try {
    const handler = handlers[op];
    if (handler === undefined) throw new TypeError(`Unknown request '${op}'`);
    answer({ id, result: await handler(args) });
  } catch (e) {
    answer({ id, error: e instanceof Error ? e.message : String(e) });
  }
}
await context.dispose();
await model.dispose();
await llama.dispose();
