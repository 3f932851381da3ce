import { loadModel, type LoadStats, type Model } from "../graph/model.ts";
import { normalizeMemberName, openArchive } from "../nnef/archive.ts";
import { isTarEndBlock, parseTarHeader, TAR_BLOCK, tarPadded } from "../nnef/tar.ts";
import { concatBytes } from "../storage/bytes.ts";
import { openFileSource } from "../storage/file_source.ts";
import { openHttpSource } from "../storage/http_source.ts";
import { openS3Source } from "../storage/s3.ts";
import { chatTemplateOf, readChatTemplate, renderChatTemplate } from "./chat_template.ts";
import { HfTokenizer } from "./hf_tokenizer.ts";
import { loadTokenizer } from "./load_tokenizer.ts";
import { InferenceService, type TokenModel } from "./service.ts";
import { Session, type SessionOptions } from "./session.ts";
import type { Kernels } from "../../kernels/mod.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** Options of `loadService`. */
export interface LoadServiceOptions {
  /** Name clients see in `/v1/models`. */
  readonly modelId: string;
  /** Tokenizer file or folder; default: the archive's own `tokenizer.json`. */
  readonly tokenizer?: string;
  /** Fixed prompt tokens per prefill step (default: adapted, see `InferenceServiceOptions`). */
  readonly prefillChunk?: number;
  /** Target duration of an adapted prefill step in milliseconds. */
  readonly prefillBudgetMs?: number;
  /** WASM kernels to run the linear layers in (the caller owns and closes them). */
  readonly kernels?: Kernels;
}

/** A loaded service and what it came from. */
export interface LoadedService {
  readonly service: InferenceService;
  /** Bytes of the weight members (`.dat`) of the archive, all of which are placed once. */
  readonly bytes: number;
  /** Where the tokenizer came from (a path, or "archive"). */
  readonly tokenizerFrom: string;
  /**
   * Resolves with the load's figures once every weight is in place (the service answers
   * before that: the first requests wait per node for the weights they read); rejects when
   * the weights could not be loaded.
   */
  readonly weightsReady: Promise<LoadStats>;
}

/** The small members read besides the weights. */
const SIDE_MEMBERS = [
  "tokenizer_config.json",
  "chat_template.jinja",
  "tokenizer.json",
  "generation_config.json",
];

/**
 * Loads a model archive (path or URL), its tokenizer and chat template into an
 * `InferenceService`. Resolves once the graph is built; the weights keep arriving (see
 * `weightsReady`), each placed once: a `.tgz` is not opened whole in memory, the model
 * streams it and only the tokenizer's members are read from it beforehand.
 *
 * @throws {TypeError} when there is no tokenizer in the archive and none was given
 */
export async function loadService(
  location: string,
  options: LoadServiceOptions,
): Promise<LoadedService> {
  const archive = await isGzip(location) ? undefined : await openArchive(location);
  let handedOver = false;
  try {
    const side: SideMembers = archive ?? await readTgzSide(location, SIDE_MEMBERS);
    const name = side.name;
    const json = (member: string) =>
      readJsonMember(name, member, side.has(member) ? side.read(member) : null);
    const config = await json("tokenizer_config.json");
    let template = side.has("chat_template.jinja")
      ? new TextDecoder().decode(await side.read("chat_template.jinja"))
      : chatTemplateOf(config);
    let tokenizer: Tokenizer;
    let tokenizerFrom: string;
    if (options.tokenizer !== undefined) {
      tokenizer = await loadTokenizer(options.tokenizer);
      tokenizerFrom = options.tokenizer;
      template ??= await readChatTemplate(await folderOf(options.tokenizer));
    } else if (side.has("tokenizer.json")) {
      tokenizer = new HfTokenizer(
        await json("tokenizer.json"),
        config,
        await json("generation_config.json"),
      );
      tokenizerFrom = `${name} (tokenizer.json)`;
    } else {
      throw new TypeError(
        `${name} holds no tokenizer.json; give one with --tokenizer or TOKENIZER`,
      );
    }
    const bytes = side.members().filter((m) => m.name.endsWith(".dat")).reduce(
      (n, m) => n + m.size,
      0,
    );
    const graph = await loadModel(archive ?? location, {
      ...(options.kernels === undefined ? {} : { kernels: options.kernels }),
      lazy: true,
    });
    handedOver = true;
    // The model reads from the archive until its last weight is in.
    const weightsReady = graph.weightsReady.finally(() => archive?.close()).then(() =>
      graph.loadStats!
    );
    weightsReady.catch(() => {});
    const model = tokenModel(
      graph,
      options.kernels === undefined ? {} : { kernels: options.kernels },
    );
    const renderConfig = tokenizer instanceof HfTokenizer
      ? { ...tokenizer.config, ...config }
      : config;
    const service = new InferenceService({
      model,
      tokenizer,
      modelId: options.modelId,
      renderChat: (messages) =>
        renderChatTemplate(renderConfig, messages, template === null ? {} : { template }),
      ...(options.prefillChunk === undefined ? {} : { prefillChunk: options.prefillChunk }),
      ...(options.prefillBudgetMs === undefined
        ? {}
        : { prefillBudgetMs: options.prefillBudgetMs }),
    });
    return { service, bytes, tokenizerFrom, weightsReady };
  } finally {
    if (!handedOver) await archive?.close();
  }
}

/** The archive's small members and its list (an `Archive`, or what one pass over a `.tgz` kept). */
interface SideMembers {
  readonly name: string;
  members(): readonly { readonly name: string; readonly size: number }[];
  has(name: string): boolean;
  read(name: string): Promise<Uint8Array>;
}

/** True when `location` is a gzip'd file: a local file starting with `1f 8b`, or a `.tgz`/`.gz` URL. */
async function isGzip(location: string): Promise<boolean> {
  if (/^(https?|s3):\/\//i.test(location)) {
    return /\.(tgz|gz)$/i.test(new URL(location).pathname);
  }
  if (!(await Deno.stat(location)).isFile) return false;
  const file = await Deno.open(location);
  try {
    const magic = new Uint8Array(2);
    const n = await file.read(magic);
    return n === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    file.close();
  }
}

/**
 * One pass over a gzip'd tar keeping only the members `wanted` (small ones: the tokenizer's),
 * and the sizes of all members.
 */
async function readTgzSide(
  location: string,
  wanted: readonly string[],
): Promise<SideMembers> {
  const remote = /^(https?|s3):\/\//i.test(location);
  const source = /^s3:\/\//i.test(location)
    ? await openS3Source(location)
    : remote
    ? await openHttpSource(location)
    : await openFileSource(location);
  const files = new Map<string, Uint8Array>();
  const sizes: { name: string; size: number }[] = [];
  try {
    const size = await source.size();
    const reader = source.stream(0, size)
      .pipeThrough(
        new DecompressionStream("gzip") as unknown as TransformStream<
          Uint8Array,
          Uint8Array
        >,
      )
      .getReader();
    let pending: Uint8Array = new Uint8Array(0);
    let at = 0; // tar offset of the next header
    let member:
      | { name: string | undefined; size: number; got: number; chunks: Uint8Array[] }
      | undefined;
    let skip = 0; // payload and padding bytes still to pass
    let ended = false;
    const want = new Set(wanted);
    try {
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) break;
        let chunk: Uint8Array = value;
        while (chunk.length > 0 && !ended) {
          if (skip > 0) {
            const n = Math.min(skip, chunk.length);
            if (member?.name !== undefined) {
              const take = Math.min(n, member.size - member.got);
              if (take > 0) member.chunks.push(chunk.slice(0, take));
              member.got += Math.max(0, take);
            }
            skip -= n;
            at += n;
            chunk = chunk.subarray(n);
            if (skip === 0 && member) {
              if (member.name !== undefined) {
                files.set(member.name, concatBytes(member.chunks, member.size));
              }
              member = undefined;
            }
            continue;
          }
          const need = TAR_BLOCK - pending.length;
          const n = Math.min(need, chunk.length);
          pending = concatBytes([pending, chunk.subarray(0, n)]);
          chunk = chunk.subarray(n);
          if (pending.length < TAR_BLOCK) continue;
          const block = pending;
          pending = new Uint8Array(0);
          if (isTarEndBlock(block)) {
            ended = true;
            break;
          }
          const header = parseTarHeader(block, at, location);
          at += TAR_BLOCK;
          const name = header.type === "0" ? normalizeMemberName(header.name, location) : undefined;
          if (name !== undefined) sizes.push({ name, size: header.size });
          skip = tarPadded(header.size);
          const keep = name !== undefined && want.has(name) ? name : undefined;
          if (skip > 0) member = { name: keep, size: header.size, got: 0, chunks: [] };
          else if (keep !== undefined) files.set(keep, new Uint8Array(0));
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  } finally {
    await source.close();
  }
  const name = source.name;
  return {
    name,
    members: () => sizes,
    has: (member) => files.has(member),
    read: (member) => {
      const bytes = files.get(member);
      return bytes ? Promise.resolve(bytes) : Promise.reject(
        new RangeError(`${name}: member '${member}' was not kept`),
      );
    },
  };
}

/** The folder of a tokenizer path (itself when it is a folder). */
async function folderOf(path: string): Promise<string> {
  if ((await Deno.stat(path)).isDirectory) return path;
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : path.slice(0, slash) || "/";
}

async function readJsonMember(
  archive: string,
  name: string,
  bytes: Promise<Uint8Array> | null,
): Promise<Record<string, unknown>> {
  if (bytes === null) return {};
  const text = new TextDecoder().decode(await bytes);
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? value : {};
  } catch (e) {
    throw new SyntaxError(`${archive}: member ${name} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The graph runtime behind the `TokenModel` interface; sessions are reused one at a time.
 * Steps wait per node for weights still arriving (the first pass of a lazy load).
 */
function tokenModel(graph: Model, sessionOptions: SessionOptions): TokenModel {
  const free: Session[] = [new Session(graph, sessionOptions)];
  const contextLength = largestFit(free[0]!);
  return {
    contextLength,
    newSession() {
      const session = free.pop() ?? new Session(graph, sessionOptions);
      session.reset();
      let disposed = false;
      return {
        prefill: (ids) => session.prefillAsync(ids),
        decode: (id) => session.decodeAsync(id),
        dispose: () => {
          if (disposed) return;
          disposed = true;
          session.reset();
          free.push(session);
        },
      };
    },
  };
}

/** The most positions a fresh session accepts (from the graph's assertions, e.g. `S+P < 512`). */
function largestFit(session: Session): number {
  const ceiling = 1 << 24;
  if (session.fits(ceiling)) return ceiling;
  let lo = 0;
  let hi = ceiling;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (session.fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
