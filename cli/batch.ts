/**
 * `deno task batch`: a file of requests answered offline, as OpenAI's Batch API and vLLM's
 * `run_batch` take them: one JSON request a line (`custom_id`, `method`, `url`, `body`), one
 * result a line in the same order (`custom_id`, `response` with `status_code`, `request_id`
 * and `body`, or `error`). Each request goes through the server's own routes in this process,
 * so it is answered exactly as over HTTP; up to `--max-batch` run at once, batched in the
 * scheduler's steps.
 */
import { parseCliArgs } from "./args.ts";
import { createServer, readServeConfig, SERVE_FLAGS, type Server } from "./serve.ts";
import { errorMessage } from "./top_level.ts";

const USAGE = `Usage: rill batch <requests.jsonl> --output <results.jsonl> [serve options]

  <requests.jsonl>   one request a line: {"custom_id": "...", "method": "POST",
                     "url": "/v1/chat/completions", "body": {...}} (any POST endpoint of
                     the server; answers are whole, so no "stream": true)
  --output           where the results go, a line each, in the order of the requests:
                     {"id", "custom_id", "response": {"status_code", "request_id", "body"},
                     "error": null}, or "response": null and an "error" naming the line
  serve options      the model and its limits as 'rill serve' takes them (--model,
                     --tokenizer, --max-batch, --max-tokens, --threads, --kv-budget, ...);
                     see 'deno task serve --help'

Exits 0 once every line has its result (answers that are errors included), 1 when the
requests cannot be read or the model cannot be loaded, 2 for a usage error.`;

/** One line of the requests file, checked. */
interface BatchLine {
  /** `file:line`, for messages. */
  readonly where: string;
  readonly customId: string | null;
  readonly request?: { readonly url: string; readonly body: Record<string, unknown> };
  /** Why the line cannot be run. */
  readonly problem?: string;
}

/** One line of the results file. */
interface BatchResult {
  readonly id: string;
  readonly custom_id: string | null;
  readonly response: {
    readonly status_code: number;
    readonly request_id: string | null;
    readonly body: unknown;
  } | null;
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** Runs `rill batch`; returns the exit code. */
export async function batchCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) {
    console.error(USAGE);
    return 0;
  }
  let input: string;
  let output: string;
  let config;
  try {
    const { positional, flags } = parseCliArgs(args, {
      booleans: SERVE_FLAGS.booleans,
      values: [...SERVE_FLAGS.values, "output"],
    });
    if (positional.length !== 1) {
      throw new TypeError(
        positional.length === 0
          ? "the requests file is missing"
          : `one requests file, got ${positional.length}: ${positional.join(", ")}`,
      );
    }
    input = positional[0]!;
    const out = flags.get("output");
    if (typeof out !== "string") throw new TypeError("--output is missing");
    output = out;
    const serveArgs = [...flags].filter(([name]) => name !== "output").map(([name, value]) =>
      value === true ? `--${name}` : `--${name}=${value}`
    );
    config = readServeConfig(serveArgs, (name) => Deno.env.get(name));
  } catch (e) {
    console.error(`rill batch: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  let lines: BatchLine[];
  try {
    lines = parseBatchLines(await Deno.readTextFile(input), input);
  } catch (e) {
    console.error(`rill batch: cannot read ${input}: ${errorMessage(e)}`);
    return 1;
  }
  // Opened before the model loads: a wrong output path fails at once.
  let file: Deno.FsFile;
  try {
    file = await Deno.open(output, { write: true, create: true, truncate: true });
  } catch (e) {
    console.error(`rill batch: cannot write ${output}: ${errorMessage(e)}`);
    return 1;
  }
  const server = createServer(config, undefined, { listening: false });
  try {
    await server.loaded;
    const counts = new Map<string, number>();
    const started = performance.now();
    let written = 0;
    let reported = 0;
    await answerAll(server, lines, config.serving.maxBatch, async (result) => {
      await file.write(new TextEncoder().encode(`${JSON.stringify(result)}\n`));
      const kind = result.response ? `answered ${result.response.status_code}` : "refused";
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      // A line at each tenth of the file.
      const tenth = Math.floor((10 * ++written) / lines.length);
      if (tenth > reported) {
        reported = tenth;
        const seconds = (performance.now() - started) / 1000;
        console.error(
          `rill batch: ${written}/${lines.length} done in ${seconds.toFixed(1)} s (${
            (written / seconds).toFixed(1)
          } requests/s)`,
        );
      }
    });
    const summary = [...counts].sort().map(([kind, n]) => `${n} ${kind}`).join(", ");
    console.error(`rill batch: ${lines.length} requests (${summary || "none"}); wrote ${output}`);
    return 0;
  } catch (e) {
    console.error(`rill batch: ${errorMessage(e)}`);
    return 1;
  } finally {
    file.close();
    await server.shutdown();
  }
}

/**
 * The lines of a requests file (blank ones skipped), each checked: a JSON object with a
 * unique string `custom_id`, `method` POST, a `url` path and an object `body` not asking for
 * a stream. A line that is not gets the reason, naming `file:line`.
 */
export function parseBatchLines(text: string, file: string): BatchLine[] {
  const seen = new Set<string>();
  const lines: BatchLine[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      lines.push({ where, customId: null, problem: `${where}: not JSON: ${(e as Error).message}` });
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      lines.push({ where, customId: null, problem: `${where}: a request must be a JSON object` });
      return;
    }
    const { custom_id: id, method, url, body } = value as Record<string, unknown>;
    const customId = typeof id === "string" && id !== "" ? id : null;
    const problem = customId === null
      ? "'custom_id' must be a non-empty string"
      : seen.has(customId)
      ? `'custom_id' ${JSON.stringify(customId)} is used by an earlier line`
      : method !== "POST"
      ? `'method' must be "POST", got ${JSON.stringify(method) ?? "nothing"}`
      : typeof url !== "string" || !url.startsWith("/")
      ? `'url' must be a path such as "/v1/chat/completions", got ${
        JSON.stringify(url) ?? "nothing"
      }`
      : typeof body !== "object" || body === null || Array.isArray(body)
      ? "'body' must be a JSON object"
      : (body as Record<string, unknown>).stream === true
      ? "'body.stream' must not be true: a batch answers whole"
      : null;
    if (customId !== null) seen.add(customId);
    lines.push(
      problem === null
        ? {
          where,
          customId,
          request: { url: url as string, body: body as Record<string, unknown> },
        }
        : { where, customId, problem: `${where}: ${problem}` },
    );
  });
  return lines;
}

/** Results held back at most, waiting for an earlier line's: bounds the memory they take. */
const LOOKAHEAD = 1024;

/**
 * Answers every line through `server`, `concurrency` at a time (none more than `LOOKAHEAD`
 * lines past the first unwritten one), and hands the results to `write` in the lines' order.
 */
async function answerAll(
  server: Server,
  lines: readonly BatchLine[],
  concurrency: number,
  write: (result: BatchResult) => Promise<void>,
): Promise<void> {
  const done = new Map<number, BatchResult>();
  let next = 0;
  let written = 0;
  let writing = Promise.resolve();
  let waiting: (() => void)[] = [];
  const flush = () => {
    writing = writing.then(async () => {
      while (done.has(written)) {
        const result = done.get(written)!;
        done.delete(written++);
        await write(result);
      }
      for (const wake of waiting) wake();
      waiting = [];
    });
    return writing;
  };
  const worker = async () => {
    while (next < lines.length) {
      if (next - written >= LOOKAHEAD) {
        await new Promise<void>((resolve) => waiting.push(resolve));
        continue;
      }
      const index = next++;
      done.set(index, await answer(server, lines[index]!));
      await flush();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  await flush();
}

async function answer(server: Server, line: BatchLine): Promise<BatchResult> {
  const id = `batch_req_${crypto.randomUUID().replaceAll("-", "")}`;
  const refused = (message: string): BatchResult => ({
    id,
    custom_id: line.customId,
    response: null,
    error: { code: "invalid_request", message },
  });
  if (!line.request) return refused(line.problem!);
  const response = await server.fetch(
    new Request(`http://batch.local${line.request.url}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(line.request.body),
    }),
  );
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("application/json")) {
    await response.body?.cancel();
    return refused(
      `${line.where}: the answer was ${
        type || "not JSON"
      }, not one JSON object: send "stream": false`,
    );
  }
  return {
    id,
    custom_id: line.customId,
    response: {
      status_code: response.status,
      request_id: response.headers.get("x-request-id"),
      body: await response.json(),
    },
    error: null,
  };
}
