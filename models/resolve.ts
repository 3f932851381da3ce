import { join } from "node:path";
import { envVar } from "../src/storage/_env.ts";
import { s3HttpUrl } from "../src/storage/s3.ts";
import { convertModel } from "./convert.ts";
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
  /** Used for every hub request (default: global fetch). */
  readonly fetch?: typeof fetch;
}

/** A model location that `loadModel` / `openArchive` can open. */
export interface ResolvedModel {
  /** Local path, http(s) URL or s3:// URL of the archive (what `openArchive` takes). */
  readonly location: string;
  /** Name to show in `/v1/models` (the hub id, or the file name). */
  readonly id: string;
  /** How it was found: "local", "url", "s3", "hub-cache" or "hub-download". */
  readonly origin: "local" | "url" | "s3" | "hub-cache" | "hub-download";
}

/**
 * Turns a `MODEL` value into a location to load: a local archive or folder, an
 * `http(s)://` URL, an `s3://bucket/key` URL (read signed with the `AWS_*` credentials), or
 * `hf:org/name[@revision]`, downloaded once from the hub into the cache, converted to a
 * Q4_0 `.nnef.tar` and reused afterwards without any request.
 *
 * @param spec the `MODEL` value; undefined or "" means `DEFAULT_MODEL`
 * @throws {Error} when a hub model is neither cached nor downloadable, saying how to set MODEL
 * @throws {Deno.errors.NotFound} when a local path does not exist
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
  try {
    await Deno.stat(model);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(
        `MODEL '${model}' is not a file or folder (use a path, an http(s):// or s3:// URL, or hf:org/name)`,
      );
    }
    throw e;
  }
  return { location: model, id: baseName(model), origin: "local" };
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
  log(`rill: hf:${repo}@${revision} is not cached in ${folder}; downloading from ${endpoint}`);
  try {
    await Deno.mkdir(source, { recursive: true });
    const hub = new HubClient(endpoint, repo, revision, options);
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
      ) as { weight_map?: Record<string, string> };
      for (const shard of new Set(Object.values(index.weight_map ?? {}))) {
        bytes += await hub.download(shard, source, true);
      }
    } else {
      bytes += await hub.download("model.safetensors", source, true);
    }
    log(`rill: downloaded ${bytes} bytes in ${hub.requests} requests; converting to Q4_0`);
  } catch (error) {
    await Deno.remove(source, { recursive: true }).catch(() => {});
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Cannot get the model hf:${repo}@${revision}: ${why}. Nothing is cached in ${folder}. ` +
        `Set MODEL to a local archive (MODEL=./model.nnef.tar deno task serve), convert one with ` +
        `'deno task convert <hf folder> --q40', or set HF_ENDPOINT to a reachable hub`,
      { cause: error },
    );
  }
  const started = performance.now();
  await convertModel(source, archive, { q40: true });
  const size = (await Deno.stat(archive)).size;
  log(
    `rill: converted hf:${repo} to ${archive} (${size} bytes) in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
  await Deno.remove(source, { recursive: true }).catch(() => {});
  return { location: archive, id, origin: "hub-download" };
}

/** Downloads files in the hub layout `/{repo}/resolve/{revision}/{file}`. */
class HubClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;
  requests = 0;

  constructor(endpoint: string, repo: string, revision: string, options: ResolveOptions) {
    this.#base = `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}`;
    const token = options.hfToken ?? envVar("HF_TOKEN");
    this.#headers = token ? { Authorization: `Bearer ${token}` } : {};
    this.#fetch = options.fetch ?? fetch;
  }

  /** Saves `file` into `folder`; returns its size, or 0 for a missing optional file. */
  async download(file: string, folder: string, required: boolean): Promise<number> {
    const url = `${this.#base}/${file.split("/").map(encodeURIComponent).join("/")}`;
    this.requests++;
    const response = await this.#fetch(url, { headers: this.#headers });
    if (response.status === 404 && !required) {
      await response.body?.cancel();
      return 0;
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel();
      throw new Error(`GET ${url} answered ${response.status} ${response.statusText}`);
    }
    const target = join(folder, file);
    await Deno.mkdir(join(target, ".."), { recursive: true });
    const partial = `${target}.part`;
    const out = await Deno.open(partial, { write: true, create: true, truncate: true });
    await response.body.pipeTo(out.writable);
    await Deno.rename(partial, target);
    return (await Deno.stat(target)).size;
  }
}

function baseName(path: string): string {
  const parts = path.replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] || path;
}
