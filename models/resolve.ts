import { join } from "node:path";
import { envVar } from "../src/storage/_env.ts";
import { s3HttpUrl } from "../src/storage/s3.ts";
import type { LoadProgress } from "../src/engine/load_service.ts";
import { redactLocation } from "../src/storage/redact.ts";
import {
  loadTimeoutMs,
  memberTimeoutMs,
  secondsText,
  startDeadline,
} from "../src/nnef/deadline.ts";
import { CONVERTER_VERSION, convertModel } from "./convert.ts";
import { fileUnder } from "./file_names.ts";
import { COPIED_FILES, exists } from "./hf.ts";

/** The model served when `MODEL` is not set. */
export const DEFAULT_MODEL = "hf:HuggingFaceTB/SmolLM2-135M-Instruct";

/** Where `resolveModel` looks and downloads. */
export interface ResolveOptions {
  /** Cache folder for hub downloads and converted archives (default: `$RILL_CACHE_DIR` or `~/.cache/rill`). */
  readonly cacheDir?: string;
  /** Hub address (default: `$HF_ENDPOINT` or https://huggingface.co). */
  readonly hfEndpoint?: string;
  /** Hub token sent as a Bearer key (default: `$HF_TOKEN`). */
  readonly hfToken?: string;
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void;
  /** Bytes downloaded and converted so far, called as they grow. */
  readonly onProgress?: (progress: LoadProgress) => void;
  /** Used for every hub request (default: global fetch). */
  readonly fetch?: typeof fetch;
  /** Most ms the hub download may take, all files together (default: see `loadTimeoutMs`). */
  readonly loadTimeoutMs?: number;
  /** Most ms one file may take (default: see `memberTimeoutMs`). */
  readonly memberTimeoutMs?: number;
}

/** A model location that `loadModel` / `openArchive` can open. */
export interface ResolvedModel {
  /** Local path, http(s) URL or s3:// URL of the archive (what `openArchive` takes). */
  readonly location: string;
  /** Name to show in `/v1/models` (the hub id, or the file name). */
  readonly id: string;
  /**
   * How it was found: "local", "url", "s3", "hub-cache" or "hub-download"; "converted" for a
   * local GGUF file or Hugging Face folder converted now, "converted-cache" when an earlier
   * conversion of the same files was reused.
   */
  readonly origin:
    | "local"
    | "url"
    | "s3"
    | "hub-cache"
    | "hub-download"
    | "converted"
    | "converted-cache";
}

/**
 * Turns a `MODEL` value into a location to load: a local archive or folder, an
 * `http(s)://` URL, an `s3://bucket/key` URL (read signed with the `AWS_*` credentials), or
 * `hf:org/name[@revision]`, downloaded once from the hub into the cache, converted to a
 * Q4_0 `.nnef.tar` and reused afterwards without any request. A local GGUF file or Hugging
 * Face folder (`config.json` and safetensors) is converted the same way, once: the next
 * start finds the archive in the cache as long as the input files are unchanged.
 *
 * @example
 * ```ts ignore
 * const resolved = await resolveModel("hf:HuggingFaceTB/SmolLM2-135M-Instruct", {
 *   cacheDir: `${Deno.env.get("HOME")}/.cache/rill`,
 * });
 * const { service } = await loadService(resolved.location, { modelId: resolved.id });
 * ```
 * @param spec the `MODEL` value; undefined or "" means `DEFAULT_MODEL`
 * @throws {Error} when a hub model is neither cached nor downloadable, saying how to set MODEL
 * @throws {Deno.errors.NotFound} when a local path does not exist
 * @throws {TypeError} when a local file or folder is no model Rill reads, saying what to do
 */
export async function resolveModel(
  spec: string | undefined,
  options: ResolveOptions = {},
): Promise<ResolvedModel> {
  const model = spec === undefined || spec.trim() === "" ? DEFAULT_MODEL : spec.trim();
  if (model.startsWith("hf:")) return await resolveHub(model.slice(3), options);
  if (/^https?:\/\//i.test(model)) {
    return { location: model, id: baseName(new URL(model).pathname), origin: "url" };
  }
  if (model.startsWith("s3://")) {
    s3HttpUrl(model);
    return { location: model, id: baseName(model), origin: "s3" };
  }
  const kind = await localKind(model);
  if (kind === "archive") return { location: model, id: baseName(model), origin: "local" };
  return await convertLocal(model, kind, options);
}

/** What a local path holds, by its content. */
async function localKind(path: string): Promise<"archive" | "gguf" | "hf"> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(
        `MODEL '${path}' is not a file or folder (use a path, an http(s):// or s3:// URL, or hf:org/name)`,
      );
    }
    throw e;
  }
  if (info.isDirectory) {
    if (await exists(join(path, "graph.nnef"))) return "archive";
    if (await exists(join(path, "config.json"))) return "hf";
    throw new TypeError(
      `MODEL '${path}' is a folder with neither graph.nnef (an NNEF model) nor config.json ` +
        `(a Hugging Face model with safetensors weights)`,
    );
  }
  const head = new Uint8Array(512);
  {
    using file = await Deno.open(path);
    for (let filled = 0; filled < head.length;) {
      const n = await file.read(head.subarray(filled));
      if (n === null) break;
      filled += n;
    }
  }
  const text = (from: number, to: number) => new TextDecoder().decode(head.subarray(from, to));
  if (text(0, 4) === "GGUF") return "gguf";
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  if (gzip || text(257, 262) === "ustar" || /\.(tar|tgz|gz)$/.test(path)) return "archive";
  throw new TypeError(
    `MODEL '${path}' is neither an NNEF archive (.nnef.tar, .nnef.tgz or a folder with ` +
      `graph.nnef), a GGUF file nor a Hugging Face folder; a llama2.c checkpoint converts with ` +
      `'deno task convert ${path} --tokenizer tokenizer.bin -o model.nnef.tar'`,
  );
}

/**
 * Converts a local GGUF file or Hugging Face folder to a Q4_0 archive in the cache, or finds
 * the one converted from the same files (path, names, sizes and modification times).
 */
async function convertLocal(
  input: string,
  kind: "gguf" | "hf",
  options: ResolveOptions,
): Promise<ResolvedModel> {
  const log = options.log ?? ((line: string) => console.error(line));
  const id = baseName(input);
  const key = await inputKey(input, kind);
  const slug = id.replace(/\.gguf$/i, "").replace(/[^\w.-]+/g, "_");
  const folder = join(options.cacheDir ?? defaultCacheDir(), "converted", `${slug}-${key}`);
  const archive = join(folder, "model.q4_0.nnef.tar");
  if (await exists(archive)) {
    log(`rill: using ${archive}, converted earlier from ${input}`);
    return { location: archive, id, origin: "converted-cache" };
  }
  const what = kind === "gguf" ? "GGUF file" : "Hugging Face folder";
  log(`rill: converting the ${what} ${input} to Q4_0 in ${archive}; later starts reuse it`);
  await Deno.mkdir(folder, { recursive: true });
  await convertQ40(input, archive, input, options, log);
  return { location: archive, id, origin: "converted" };
}

/**
 * Converts `input` to a Q4_0 archive at `archive`, reporting the convert phase's progress and
 * logging what it took (`what` names the input in the log).
 */
async function convertQ40(
  input: string,
  archive: string,
  what: string,
  options: ResolveOptions,
  log: (line: string) => void,
): Promise<void> {
  const started = performance.now();
  await convertModel(input, archive, {
    q40: true,
    onProgress: (p) =>
      options.onProgress?.({ phase: "convert", doneBytes: p.bytesDone, totalBytes: p.bytesTotal }),
  });
  const size = (await Deno.stat(archive)).size;
  options.onProgress?.({ phase: "convert", doneBytes: size, totalBytes: size });
  log(
    `rill: converted ${what} to ${archive} (${size} bytes) in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
}

/** A short hash of the input's real path and of its files' names, sizes and modification times. */
async function inputKey(input: string, kind: "gguf" | "hf"): Promise<string> {
  const real = await Deno.realPath(input);
  const files: string[] = [];
  const describe = (name: string, info: Deno.FileInfo) =>
    `${name}\t${info.size}\t${info.mtime?.getTime() ?? 0}`;
  if (kind === "gguf") files.push(describe(real, await Deno.stat(real)));
  else {
    for await (const entry of Deno.readDir(real)) {
      if (entry.isFile) files.push(describe(entry.name, await Deno.stat(join(real, entry.name))));
    }
  }
  const text = [`converter ${CONVERTER_VERSION}`, real, ...files.sort()].join("\n");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest).subarray(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** The cache folder: `$RILL_CACHE_DIR`, else `$XDG_CACHE_HOME/rill`, else `~/.cache/rill`. */
function defaultCacheDir(): string {
  const explicit = envVar("RILL_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = envVar("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "rill");
  const home = envVar("HOME") ?? envVar("USERPROFILE");
  return home ? join(home, ".cache", "rill") : join(".", ".rill-cache");
}

async function resolveHub(name: string, options: ResolveOptions): Promise<ResolvedModel> {
  const [repo, revision = "main"] = name.split("@") as [string, string | undefined];
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo) || !/^[\w.\/-]+$/.test(revision)) {
    throw new TypeError(
      `MODEL 'hf:${name}' is not of the form hf:org/name or hf:org/name@revision`,
    );
  }
  const log = options.log ?? ((line: string) => console.error(line));
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const folder = join(cacheDir, "hub", repo.replace("/", "--"), revision.replaceAll("/", "--"));
  const archive = join(folder, "model.q4_0.nnef.tar");
  const id = repo;
  if (await exists(archive)) return { location: archive, id, origin: "hub-cache" };

  const endpoint = (options.hfEndpoint ?? envVar("HF_ENDPOINT") ?? "https://huggingface.co")
    .replace(/\/+$/, "");
  const source = join(folder, "download");
  log(
    `rill: hf:${repo}@${revision} is not cached in ${folder}; downloading from ${
      redactLocation(endpoint)
    }`,
  );
  const limit = loadTimeoutMs(options.loadTimeoutMs);
  const deadline = startDeadline(
    limit,
    () =>
      new Error(
        `hf:${repo}@${revision}: not downloaded within ${secondsText(limit)} (RILL_LOAD_TIMEOUT)`,
      ),
  );
  try {
    await Deno.mkdir(source, { recursive: true });
    const hub = new HubClient(endpoint, repo, revision, options, deadline.signal);
    let bytes = 0;
    bytes += await hub.download("config.json", source, true);
    // The converter copies these into the archive; only tokenizer.json is required.
    for (const file of COPIED_FILES) {
      bytes += await hub.download(file, source, file === "tokenizer.json");
    }
    const indexBytes = await hub.download("model.safetensors.index.json", source, false);
    if (indexBytes > 0) {
      bytes += indexBytes;
      const index = JSON.parse(
        await Deno.readTextFile(join(source, "model.safetensors.index.json")),
      ) as { weight_map?: Record<string, unknown> };
      for (const shard of new Set(Object.values(index.weight_map ?? {}))) {
        if (typeof shard !== "string") {
          throw new TypeError(
            `model.safetensors.index.json: a weight_map value is ${
              JSON.stringify(shard)
            }, not a file name`,
          );
        }
        bytes += await hub.download(shard, source, true);
      }
    } else {
      bytes += await hub.download("model.safetensors", source, true);
    }
    log(`rill: downloaded ${bytes} bytes in ${hub.requests} requests; converting to Q4_0`);
  } catch (error) {
    deadline.clear();
    await Deno.remove(source, { recursive: true }).catch(() => {});
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Cannot get the model hf:${repo}@${revision}: ${why}. Nothing is cached in ${folder}. ` +
        `Set MODEL to a local archive (MODEL=./model.nnef.tar deno task serve), convert one with ` +
        `'deno task convert <hf folder> --q40', or set HF_ENDPOINT to a reachable hub`,
      { cause: error },
    );
  }
  deadline.clear();
  await convertQ40(source, archive, `hf:${repo}`, options, log);
  await Deno.remove(source, { recursive: true }).catch(() => {});
  return { location: archive, id, origin: "hub-download" };
}

/** Downloads files in the hub layout `/{repo}/resolve/{revision}/{file}`. */
class HubClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;
  readonly #onProgress: ((progress: LoadProgress) => void) | undefined;
  readonly #signal: AbortSignal;
  readonly #fileTimeoutMs: number;
  requests = 0;

  constructor(
    endpoint: string,
    repo: string,
    revision: string,
    options: ResolveOptions,
    signal: AbortSignal,
  ) {
    this.#base = `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}`;
    const token = options.hfToken ?? envVar("HF_TOKEN");
    this.#headers = token ? { Authorization: `Bearer ${token}` } : {};
    this.#fetch = options.fetch ?? fetch;
    this.#onProgress = options.onProgress;
    this.#signal = signal;
    this.#fileTimeoutMs = memberTimeoutMs(options.memberTimeoutMs);
  }

  /**
   * Saves `file` into `folder`, which it may not leave (its name may come from the hub's
   * index); returns its size, or 0 for a missing optional file.
   */
  async download(file: string, folder: string, required: boolean): Promise<number> {
    const shown = redactLocation(this.#base);
    const target = fileUnder(folder, file, `${shown}/model.safetensors.index.json`);
    const path = file.split("/").map(encodeURIComponent).join("/");
    const url = `${this.#base}/${path}`;
    const limit = this.#fileTimeoutMs;
    const own = startDeadline(
      limit,
      () =>
        new Error(
          `GET ${shown}/${path}: not done within ${secondsText(limit)} (RILL_MEMBER_TIMEOUT)`,
        ),
    );
    const signal = AbortSignal.any([this.#signal, own.signal]);
    this.requests++;
    try {
      const response = await this.#fetch(url, { headers: this.#headers, signal });
      if (response.status === 404 && !required) {
        await response.body?.cancel();
        return 0;
      }
      if (!response.ok || response.body === null) {
        await response.body?.cancel();
        throw new Error(`GET ${shown}/${path} answered ${response.status} ${response.statusText}`);
      }
      await Deno.mkdir(join(target, ".."), { recursive: true });
      const partial = `${target}.part`;
      const out = await Deno.open(partial, { write: true, create: true, truncate: true });
      const length = Number(response.headers.get("Content-Length") ?? NaN);
      const totalBytes = Number.isFinite(length) ? length : undefined;
      let doneBytes = 0;
      const report = this.#onProgress;
      const counted = report === undefined ? response.body : response.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            doneBytes += chunk.length;
            report({ phase: "download", what: file, doneBytes, totalBytes });
            controller.enqueue(chunk);
          },
        }),
      );
      await counted.pipeTo(out.writable);
      await Deno.rename(partial, target);
      return (await Deno.stat(target)).size;
    } catch (e) {
      throw signal.aborted ? signal.reason : e;
    } finally {
      own.clear();
    }
  }
}

function baseName(path: string): string {
  const parts = path.replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] || path;
}
