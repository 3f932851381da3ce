import assert from "node:assert/strict";
import { digestYield, type IoYield, LoopbackYield } from "./io_turn.ts";

/** Busy for `ms` milliseconds, as a step of the model is. */
function compute(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
}

/**
 * Slices of 2 ms of computation, each followed by one `turn`, until a request to a server on
 * loopback (in this same process) has its answer.
 */
async function slicesUntilAnswered(turn: IoYield): Promise<number> {
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    return new Response("ok");
  });
  let answered = false;
  const request = fetch(`http://127.0.0.1:${server.addr.port}/`)
    .then((r) => r.text())
    .then(() => void (answered = true));
  let slices = 0;
  while (!answered && slices < 1000) {
    compute(2);
    await turn();
    slices++;
  }
  await request;
  return slices;
}

Deno.test("a loopback turn lets a request in at once while the loop computes", async () => {
  using loopback = (await LoopbackYield.open())!;
  assert.ok(loopback, "127.0.0.1 is reachable here, so the pair opens");
  const slices = await slicesUntilAnswered(loopback.yield);
  // Accept, read, answer, read the answer: a few turns each looking at the sockets.
  assert.ok(slices <= 12, `the request took ${slices} slices of computation`);
});

Deno.test("a loopback turn after close falls back to the digest, and close is idempotent", async () => {
  const loopback = (await LoopbackYield.open())!;
  await loopback.yield();
  loopback.close();
  loopback.close();
  await loopback.yield();
});

Deno.test("concurrent loopback turns share one round trip", async () => {
  using loopback = (await LoopbackYield.open())!;
  const a = loopback.yield();
  assert.equal(loopback.yield(), a);
  await a;
  await Promise.all([loopback.yield(), loopback.yield(), loopback.yield()]);
});

Deno.test("a digest turn resolves without holding a resource", async () => {
  await digestYield();
});
