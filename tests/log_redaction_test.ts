/**
 * No log line of the server quotes a credential: a model URL's presigned query and
 * `user:password` are redacted in the 'loaded model' line and in every failure's line.
 */
import assert from "node:assert/strict";
import { createServer, readServeConfig, type ServeConfig } from "../cli/serve.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";
import { runRill } from "./_cli_run.ts";

const SECRETS = ["hunter2", "AKIDEXAMPLE", "0badc0ffee", "FwoGZXIvYXdzEJr"];
const QUERY = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260101" +
  "&X-Amz-Signature=0badc0ffee&X-Amz-Security-Token=FwoGZXIvYXdzEJr";

function config(model: string): ServeConfig {
  return {
    ...readServeConfig([], () => undefined),
    model,
    tokenizer: STORIES_TOKENIZER,
    modelId: "stories",
    host: "127.0.0.1",
    port: 0,
    threads: 0,
  };
}

function assertRedacted(lines: readonly string[]): void {
  for (const line of lines) {
    for (const secret of SECRETS) assert.ok(!line.includes(secret), `'${secret}' in: ${line}`);
  }
}

Deno.test("serve logs a presigned model URL, loaded or failing, without its query or password", async () => {
  const dir = await Deno.makeTempDir();
  const tar = await writeIndexedTar(`${dir}/m.nnef.tar`, await readMembers(STORIES_ARCHIVE));
  const source = startTestServer({ "/m.nnef.tar": tar });
  const host = source.url.replace("http://", "");
  try {
    const lines: string[] = [];
    let weightsIn!: () => void;
    const settled = new Promise<void>((resolve) => (weightsIn = resolve));
    const server = createServer(config(`http://reader:hunter2@${host}/m.nnef.tar${QUERY}`), (l) => {
      lines.push(l);
      if (l.startsWith("rill: all weights in place")) weightsIn();
    });
    await server.loaded;
    const loaded = lines.find((l) => l.startsWith("rill: loaded model"));
    assert.ok(loaded, lines.join("\n"));
    assert.ok(loaded.includes(`from http://***@${host}/m.nnef.tar?<redacted> (url)`), loaded);
    // Nothing of the load may outlive the test.
    await settled;
    assertRedacted(lines);
    // The failure of a load that cannot connect, as rill serve prints it.
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    const failed = await runRill([
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--model",
      `http://reader:hunter2@127.0.0.1:${port}/m.nnef.tar${QUERY}`,
      "--tokenizer",
      STORIES_TOKENIZER,
      "--threads",
      "0",
    ]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      failed.stderr,
      new RegExp(`^rill serve: .*127\\.0\\.0\\.1:${port}/m\\.nnef\\.tar\\?<redacted>`, "m"),
    );
    assertRedacted(failed.stderr.split("\n"));
  } finally {
    await source.close();
    await Deno.remove(dir, { recursive: true });
  }
});
