import assert from "node:assert/strict";
import { errorMessage } from "./top_level.ts";

const MODULE = new URL("./top_level.ts", import.meta.url).href;

/** Runs `code` in a child Deno after importing `catchStrayErrors`; its exit code and stderr. */
async function runChild(code: string): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { catchStrayErrors } from "${MODULE}";\n${code}`],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("errorMessage joins an error's causes once, without a stack", () => {
  const inner = new RangeError("member 'w.dat' ends at byte 12");
  assert.equal(
    errorMessage(new Error("cannot load m.tar", { cause: inner })),
    "cannot load m.tar: member 'w.dat' ends at byte 12",
  );
  assert.equal(errorMessage(new Error("x: y", { cause: new Error("y") })), "x: y");
  assert.equal(errorMessage("plain"), "plain");
});

Deno.test("catchStrayErrors turns a command's stray rejection into one line and exit code 1", async () => {
  const { code, stderr } = await runChild(
    `catchStrayErrors("rill generate", { keepRunning: false });
     Promise.reject(new TypeError("weight 'w.dat' failed"));
     setTimeout(() => console.error("still here"), 500);`,
  );
  assert.equal(code, 1);
  assert.equal(stderr, "rill generate: weight 'w.dat' failed\n");
});

Deno.test("catchStrayErrors keeps a server running past a stray rejection and a stray throw", async () => {
  const { code, stderr } = await runChild(
    `catchStrayErrors("rill serve", { keepRunning: true });
     Promise.reject(new Error("a background load failed"));
     setTimeout(() => { throw new RangeError("a timer failed"); }, 10);
     setTimeout(() => console.error("still answering"), 100);`,
  );
  assert.equal(code, 0, stderr);
  assert.equal(
    stderr,
    "rill serve: internal error (still running): a background load failed\n" +
      "rill serve: internal error (still running): a timer failed\n" +
      "still answering\n",
  );
});

Deno.test("errorMessage redacts the credentials a cause quotes", () => {
  const cause = new TypeError(
    "error sending request for url (http://u:pw@127.0.0.1:9/m.tar?X-Amz-Signature=abc): refused",
  );
  assert.equal(
    errorMessage(new TypeError("fetch failed", { cause })),
    "fetch failed: error sending request for url (http://***@127.0.0.1:9/m.tar?<redacted>): refused",
  );
});
