/**
 * The command line's top level: every failure is one line on stderr and an exit code (2 for a
 * usage error, 1 for a failure), never a stack trace or Deno's `error: Uncaught`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fixture } from "./_stories260k.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface Run {
  readonly code: number;
  readonly stderr: string;
}

async function rill(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** No stack frame and no uncaught-error banner in `stderr`. */
function assertNoTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, stderr);
  assert.doesNotMatch(stderr, /Uncaught/, stderr);
}

Deno.test("every command refuses an unknown flag with code 2, listing the valid flags", async () => {
  const valid: Record<string, string> = {
    serve: "--model",
    generate: "--prompt",
    inspect: "--json",
    convert: "--output",
    tokenize: "--cases",
  };
  for (const [command, flag] of Object.entries(valid)) {
    // A typo of a flag must not fall back to defaults (serve would download its default model).
    const { code, stderr } = await rill([command, "--modle", "x"], {
      HF_ENDPOINT: "http://0.0.0.0:9",
    });
    assert.equal(code, 2, `${command}: ${stderr}`);
    assert.match(stderr, new RegExp(`rill ${command}: Unknown option '--modle'.*${flag}`), stderr);
    assert.doesNotMatch(stderr, /listening|downloading/, stderr);
    assertNoTrace(stderr);
  }
});

Deno.test("serve on a port already in use says so in one line and exits 1", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const { code, stderr } = await rill([
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--model",
    fixture("nnef/stories260K_f32.nnef.tgz"),
  ]);
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    new RegExp(
      `rill serve: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`,
    ),
  );
  assertNoTrace(stderr);
});

Deno.test("convert refuses an output that is a folder or its own input, and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const checkpoint = join(dir, "stories260K.bin");
    await Deno.copyFile(fixture("stories260K.bin"), checkpoint);
    const before = await Deno.readFile(checkpoint);
    const tokenizer = fixture("tok512.bin");
    const intoFolder = await rill(["convert", checkpoint, "--tokenizer", tokenizer, "-o", dir]);
    assert.equal(intoFolder.code, 1, intoFolder.stderr);
    assert.match(intoFolder.stderr, /rill convert: Output '.*' is a folder; name the archive/);
    assertNoTrace(intoFolder.stderr);
    const ontoInput = await rill([
      "convert",
      checkpoint,
      "--tokenizer",
      tokenizer,
      "-o",
      checkpoint,
    ]);
    assert.equal(ontoInput.code, 1, ontoInput.stderr);
    assert.match(ontoInput.stderr, /rill convert: Output '.*' is the input file/);
    assertNoTrace(ontoInput.stderr);
    assert.deepEqual(await Deno.readFile(checkpoint), before);
    const left = [];
    for await (const entry of Deno.readDir(dir)) left.push(entry.name);
    assert.deepEqual(left, ["stories260K.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
