import assert from "node:assert/strict";
import { loadService } from "../src/engine/load_service.ts";
import { writeTinySmolLM2Archive } from "./_hub.ts";
import { startServer } from "./_serve_harness.ts";

Deno.test("/ready answers while a generation runs, without auth, as a platform probe needs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rill_ready_" });
  try {
    const loaded = await loadService(await writeTinySmolLM2Archive(dir), { modelId: "tiny" });
    await loaded.weightsReady;
    await using server = await startServer({ apiKeys: ["sk-k"] }, loaded.service);
    const generation = fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer sk-k" },
      body: JSON.stringify({
        messages: [{ role: "user", content: "Tell me a long story." }],
        max_tokens: 470,
        temperature: 0,
      }),
    });
    while (server.state.queue.running === 0) await new Promise((r) => setTimeout(r, 1));
    const latencies: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const ready = await fetch(`${server.url}/ready`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: "ready", model: "tiny" });
      latencies.push(performance.now() - started);
    }
    console.log(
      `/ready during a generation: ${latencies.map((ms) => ms.toFixed(1)).join(", ")} ms`,
    );
    assert.equal(server.state.queue.running, 1, "the probes waited for the generation to end");
    // A wide margin: a probe lets about 50 ms of compute pass, and waits for the whole
    // generation (seconds here) when the token loop lets no connection in.
    assert.ok(Math.max(...latencies) < 1000, `a probe took ${Math.max(...latencies)} ms`);
    const answer = await (await generation).json();
    assert.equal(answer.usage.completion_tokens, 470);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
