/**
 * Fill in the middle: a code model given the text before and after a gap writes the gap. Such
 * models read the two parts between special tokens of their vocabulary, prefix first
 * (`<|fim_prefix|>` prefix `<|fim_suffix|>` suffix `<|fim_middle|>`, then the middle).
 */
import type { Tokenizer } from "../tokenizer/tokenizer.ts";

/**
 * The ids of the tokens that open the prefix, the suffix and the middle, and those that open a
 * repository's name and each of its files, for the code around the gap (null where the
 * vocabulary has none).
 */
export interface FimTokens {
  readonly prefix: number;
  readonly suffix: number;
  readonly middle: number;
  readonly repository: number | null;
  readonly file: number | null;
}

/** The families' markers, by the vocabularies that have them. */
const FAMILIES: readonly (readonly [string, string, string])[] = [
  // Qwen2.5-Coder, CodeGemma.
  ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
  // StarCoder, SantaCoder.
  ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
  // DeepSeek-Coder: begin, hole, end.
  ["<\uFF5Cfim\u2581begin\uFF5C>", "<\uFF5Cfim\u2581hole\uFF5C>", "<\uFF5Cfim\u2581end\uFF5C>"],
];

/** Qwen2.5-Coder's, StarCoder's. */
const REPOSITORY_MARKERS = ["<|repo_name|>", "<repo_name>", "<reponame>"];
/** Qwen2.5-Coder's, StarCoder's, CodeGemma's. */
const FILE_MARKERS = ["<|file_sep|>", "<file_sep>", "<|file_separator|>"];

const found = new WeakMap<Tokenizer, FimTokens | null>();

/** The markers of `tokenizer`'s vocabulary, each a token of its own; null when it has none. */
export function fimTokens(tokenizer: Tokenizer): FimTokens | null {
  let tokens = found.get(tokenizer);
  if (tokens === undefined) {
    tokens = search(tokenizer);
    found.set(tokenizer, tokens);
  }
  return tokens;
}

/**
 * The first family whose three markers each encode to one token of that name, and the first
 * repository and file markers that do.
 */
function search(tokenizer: Tokenizer): FimTokens | null {
  const single = (marker: string) => {
    const ids = tokenizer.encode(marker, { addBos: false });
    return ids.length === 1 && tokenizer.piece?.(ids[0]!) === marker ? ids[0]! : null;
  };
  const first = (markers: readonly string[]) =>
    markers.map(single).find((id) => id !== null) ?? null;
  for (const [p, s, m] of FAMILIES) {
    const [prefix, suffix, middle] = [single(p), single(s), single(m)];
    if (prefix !== null && suffix !== null && middle !== null) {
      return {
        prefix,
        suffix,
        middle,
        repository: first(REPOSITORY_MARKERS),
        file: first(FILE_MARKERS),
      };
    }
  }
  return null;
}

/**
 * The prompt (ids) that asks for the middle between `prefix` (text, or ids as they are) and
 * `suffix`, after BOS when the tokenizer starts its texts with it.
 */
export function fimPrompt(
  tokenizer: Tokenizer,
  tokens: FimTokens,
  prefix: string | readonly number[],
  suffix: string,
): number[] {
  const before = typeof prefix === "string" ? tokenizer.encode(prefix) : [...prefix];
  const bos = tokenizer.bos !== null && before[0] === tokenizer.bos ? [tokenizer.bos] : [];
  return [
    ...bos,
    tokens.prefix,
    ...before.slice(bos.length),
    tokens.suffix,
    ...tokenizer.encode(suffix, { addBos: false }),
    tokens.middle,
  ];
}

/** The markers of the families above, for messages. */
export const FIM_MARKERS: readonly string[] = FAMILIES.map((f) => f[0]);

/** A file of the project, read ahead of the code around the gap (llama.cpp's `input_extra`). */
export interface ProjectFile {
  readonly filename: string;
  readonly text: string;
}

/** What an infill request asks for, its texts as ids (none with BOS). */
export interface InfillParts {
  /** The code before the gap. */
  readonly prefix: readonly number[];
  /** The code after the gap. */
  readonly suffix: readonly number[];
  /** Text right before the gap, after the prefix and never cut (the cursor's line). */
  readonly prompt: readonly number[];
  readonly files: readonly ProjectFile[];
  /** Tokens the prefix, the prompt and the suffix may take together. */
  readonly window: number;
  /** Tokens the project's files may take. */
  readonly room: number;
  /**
   * The suffix before the prefix (llama.cpp's `--spm-infill`: suffix, prefix, middle), for the
   * models trained in that order.
   */
  readonly suffixFirst?: boolean;
}

/**
 * The prompt of code infilling with the project around it, as llama.cpp's `/infill` lays it
 * out. With repository and file tokens, the files come first as a repository
 * (`<|repo_name|>myproject\n<|file_sep|>name\ntext...<|file_sep|>filename\n`); without, each
 * file's text follows a `--- snippet ---` line. Then the prefix with the prompt and the suffix
 * (the other way round with `suffixFirst`), each after its marker, and the middle marker. Three quarters of the window go to the prefix (its end), the rest to the
 * prompt and the suffix (its start); the files keep their last `room` tokens.
 */
export function infillPrompt(
  tokenizer: Tokenizer,
  tokens: FimTokens,
  parts: InfillParts,
): number[] {
  const encode = (text: string) => tokenizer.encode(text, { addBos: false });
  const project: number[] = [];
  if (tokens.repository !== null) project.push(tokens.repository, ...encode("myproject\n"));
  for (const { filename, text } of parts.files) {
    if (tokens.file !== null) project.push(tokens.file, ...encode(`${filename}\n`));
    else project.push(...encode("\n\n--- snippet ---\n\n"));
    project.push(...encode(text));
  }
  if (tokens.file !== null) project.push(tokens.file, ...encode("filename\n"));
  const quarter = Math.floor(parts.window / 4);
  const prefix = parts.prefix.slice(Math.max(0, parts.prefix.length - 3 * quarter));
  const suffix = parts.suffix.slice(0, Math.max(0, quarter - 2 - parts.prompt.length));
  const bos = tokenizer.bos !== null && tokenizer.encode("")[0] === tokenizer.bos
    ? [tokenizer.bos]
    : [];
  const before = [tokens.prefix, ...prefix, ...parts.prompt];
  const after = [tokens.suffix, ...suffix];
  return [
    ...bos,
    ...project.slice(Math.max(0, project.length - Math.max(0, parts.room))),
    ...(parts.suffixFirst ? [...after, ...before] : [...before, ...after]),
    tokens.middle,
  ];
}
