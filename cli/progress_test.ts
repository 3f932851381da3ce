import assert from "node:assert/strict";
import { describe, ProgressReporter } from "./progress.ts";

Deno.test("describe() names the phase, the file and the bytes, with a percentage once the total is known", () => {
  assert.equal(
    describe({ phase: "load", doneBytes: 12_345_678, totalBytes: 160_000_000 }),
    "loading 12.3 of 160.0 MB (7%)",
  );
  assert.equal(
    describe({
      phase: "download",
      what: "model.safetensors",
      doneBytes: 1e6,
      totalBytes: undefined,
    }),
    "downloading model.safetensors 1.0 MB",
  );
  assert.equal(
    describe({ phase: "convert", doneBytes: 0, totalBytes: 0 }),
    "converting 0.0 of 0.0 MB (100%)",
  );
});

Deno.test("ProgressReporter off a terminal writes a line when a phase begins and ends, and none in between before the interval", () => {
  const lines: string[] = [];
  const reporter = new ProgressReporter({
    log: (line) => lines.push(line),
    terminal: false,
    intervalMs: 60_000,
  });
  reporter.update({ phase: "convert", doneBytes: 0, totalBytes: 4e6 });
  reporter.update({ phase: "convert", doneBytes: 1e6, totalBytes: 4e6 });
  reporter.update({ phase: "convert", doneBytes: 4e6, totalBytes: 4e6 });
  reporter.update({ phase: "convert", doneBytes: 4e6, totalBytes: 4e6 });
  reporter.update({ phase: "download", what: "a.json", doneBytes: 10, totalBytes: 10 });
  assert.deepEqual(lines, [
    "rill: converting 0.0 of 4.0 MB (0%)",
    "rill: converting 4.0 of 4.0 MB (100%)",
    "rill: downloading a.json 0.0 of 0.0 MB (100%)",
  ]);
});

Deno.test("ProgressReporter off a terminal writes a line per interval while a phase goes on", async () => {
  const lines: string[] = [];
  const reporter = new ProgressReporter({
    log: (line) => lines.push(line),
    terminal: false,
    intervalMs: 20,
  });
  reporter.update({ phase: "load", doneBytes: 0, totalBytes: 100 });
  await new Promise((resolve) => setTimeout(resolve, 30));
  reporter.update({ phase: "load", doneBytes: 50, totalBytes: 100 });
  reporter.update({ phase: "load", doneBytes: 60, totalBytes: 100 });
  assert.deepEqual(lines, [
    "rill: loading 0.0 of 0.0 MB (0%)",
    "rill: loading 0.0 of 0.0 MB (50%)",
  ]);
});

Deno.test("ProgressReporter.follow polls a load until it ends, then writes its last state", async () => {
  const lines: string[] = [];
  const reporter = new ProgressReporter({
    log: (line) => lines.push(line),
    terminal: false,
    intervalMs: 10,
  });
  let done = 0;
  const ended = Promise.withResolvers<void>();
  reporter.follow(() => ({ phase: "load", doneBytes: done, totalBytes: undefined }), ended.promise);
  for (done = 1e6; done <= 3e6; done += 1e6) {
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  ended.resolve();
  await ended.promise;
  await Promise.resolve();
  assert.ok(lines.length >= 2, lines.join("\n"));
  assert.match(lines[0]!, /^rill: loading [1-3]\.0 MB$/);
  assert.equal(lines.at(-1), "rill: loading 4.0 of 4.0 MB (100%)");
});
