/** Test helper: a child `deno` process (`rill serve`, `deno serve mod.ts`) whose output is kept. */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

/** A child `deno <args>` run in the repository root, its stdout and stderr collected in `log`. */
export class Child implements AsyncDisposable {
  readonly #process: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  log = "";

  constructor(args: string[], env: Record<string, string>) {
    this.#process = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this.log += text;
    };
    this.#drained = Promise.all([
      collect(this.#process.stdout),
      collect(this.#process.stderr),
    ]).then(() => {});
  }

  /** Waits until the log matches `pattern`; returns the match. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.log);
      if (match) return match;
      assert.ok(Date.now() < deadline, `timed out waiting for ${pattern}; log:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends `name` to the process (nothing when it has exited). */
  kill(name: Deno.Signal): void {
    try {
      this.#process.kill(name);
    } catch {
      // already exited
    }
  }

  /**
   * Reads a streamed chat completion from this server and sends `signal` once its first text
   * has arrived; returns what ended the stream (the client's error, or null when it ended
   * cleanly) and when the signal was sent (`performance.now()`).
   */
  async signalMidStream(
    stream: AsyncIterable<{ choices: { delta: { content?: string | null } }[] }>,
    signal: Deno.Signal,
  ): Promise<{ error: unknown; signalled: number }> {
    let signalled = 0;
    try {
      for await (const chunk of stream) {
        if (signalled === 0 && (chunk.choices[0]?.delta.content ?? "") !== "") {
          signalled = performance.now();
          this.kill(signal);
        }
      }
    } catch (error) {
      return { error, signalled };
    }
    return { error: null, signalled };
  }

  /** Resolves when the process has exited and its output is all in `log`. */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.#process.status;
    await this.#drained;
    return status;
  }

  /** SIGTERM, then SIGKILL if the process is still there after 10 s. */
  async stop(): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), 10_000);
    const status = await this.exited();
    clearTimeout(timer);
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
