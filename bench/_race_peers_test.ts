import assert from "node:assert/strict";
import { Peer } from "./_race_peers.ts";

/**
 * A peer that keeps a core busy whenever it is not reading a request, as wllama's idle pthreads
 * do, and answers `cpu` with the CPU time its process has used (ms).
 */
const SPINNING_PEER = `
import process from "node:process";
import { createInterface } from "node:readline";
const answer = (m) => process.stdout.write("@race " + JSON.stringify(m) + "\\n");
setInterval(() => {
  const t = performance.now();
  while (performance.now() - t < 9);
}, 10);
answer({ id: 0, result: "ready" });
for await (const line of createInterface({ input: process.stdin })) {
  const { id, op } = JSON.parse(line);
  const { user, system } = process.cpuUsage();
  answer(op === "cpu" ? { id, result: (user + system) / 1000 } : { id, error: "unknown " + op });
}
Deno.exit(0);
`;

Deno.test("a race peer's process takes no CPU between its requests, and answers each one", async () => {
  const peer = await Peer.start("spinning", Deno.execPath(), ["eval", SPINNING_PEER]);
  try {
    const before = await peer.request<number>("cpu");
    await new Promise((resolve) => setTimeout(resolve, 600));
    const after = await peer.request<number>("cpu");
    // Running, it would have spun for about 540 ms of the 600.
    assert.ok(after - before < 150, `the idle peer used ${after - before} ms of CPU in 600 ms`);
    await assert.rejects(peer.request("nothing"), /spinning: unknown nothing/);
  } finally {
    await peer.close();
  }
});
