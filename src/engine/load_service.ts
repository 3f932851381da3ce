import { loadModel } from "../graph/model.ts";
import { type Archive, openArchive } from "../nnef/archive.ts";
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
  /** Bytes of weights placed in memory (each once). */
  readonly bytes: number;
  /** Where the tokenizer came from (a path, or "archive"). */
  readonly tokenizerFrom: string;
}

/**
 * Loads a model archive (path or URL), its tokenizer and chat template into an
 * `InferenceService`.
 *
 * @throws {TypeError} when there is no tokenizer in the archive and none was given
 */
export async function loadService(
  location: string,
  options: LoadServiceOptions,
): Promise<LoadedService> {
  const archive = await openArchive(location);
  try {
    const config = await readJsonMember(archive, "tokenizer_config.json");
    let template = archive.has("chat_template.jinja")
      ? new TextDecoder().decode(await archive.read("chat_template.jinja"))
      : chatTemplateOf(config);
    let tokenizer: Tokenizer;
    let tokenizerFrom: string;
    if (options.tokenizer !== undefined) {
      tokenizer = await loadTokenizer(options.tokenizer);
      tokenizerFrom = options.tokenizer;
      template ??= await readChatTemplate(await folderOf(options.tokenizer));
    } else if (archive.has("tokenizer.json")) {
      tokenizer = new HfTokenizer(
        await readJsonMember(archive, "tokenizer.json"),
        config,
        await readJsonMember(archive, "generation_config.json"),
      );
      tokenizerFrom = `${archive.name} (tokenizer.json)`;
    } else {
      throw new TypeError(
        `${archive.name} holds no tokenizer.json; give one with --tokenizer or TOKENIZER`,
      );
    }
    const { model, bytes } = await openTokenModel(
      archive,
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
    return { service, bytes, tokenizerFrom };
  } finally {
    await archive.close();
  }
}

/** The folder of a tokenizer path (itself when it is a folder). */
async function folderOf(path: string): Promise<string> {
  if ((await Deno.stat(path)).isDirectory) return path;
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : path.slice(0, slash) || "/";
}

async function readJsonMember(archive: Archive, name: string): Promise<Record<string, unknown>> {
  if (!archive.has(name)) return {};
  const text = new TextDecoder().decode(await archive.read(name));
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? value : {};
  } catch (e) {
    throw new SyntaxError(
      `${archive.name}: member ${name} is not valid JSON: ${(e as Error).message}`,
    );
  }
}

/** The graph runtime behind the `TokenModel` interface; sessions are reused one at a time. */
async function openTokenModel(
  archive: Archive,
  sessionOptions: SessionOptions,
): Promise<{ model: TokenModel; bytes: number }> {
  const graph = await loadModel(
    archive,
    sessionOptions.kernels ? { kernels: sessionOptions.kernels } : {},
  );
  const free: Session[] = [new Session(graph, sessionOptions)];
  const contextLength = largestFit(free[0]!);
  const model: TokenModel = {
    contextLength,
    newSession() {
      const session = free.pop() ?? new Session(graph, sessionOptions);
      session.reset();
      let disposed = false;
      return {
        prefill: (ids) => Promise.resolve(session.prefill(ids)),
        decode: (id) => Promise.resolve(session.decode(id)),
        dispose: () => {
          if (disposed) return;
          disposed = true;
          session.reset();
          free.push(session);
        },
      };
    },
  };
  const bytes = graph.loadStats?.bytes ?? archive.members().reduce((sum, m) => sum + m.size, 0);
  return { model, bytes };
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
