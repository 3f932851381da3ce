/**
 * Seeded mutations of the real fixtures, for the fuzz test and the larger corpus
 * (`tests/fuzz_corpus.ts`): truncations, bit flips in tar and `.dat` headers and payloads,
 * graph text edits, hostile and duplicate member names, lying sizes, gzip bombs, and broken
 * converter inputs. A mutant is made from its kind and seed alone, so an id such as
 * `dat-header#12` replays it.
 */
import { join } from "node:path";
import { ARCHIVE_INDEX_MEMBER } from "../src/nnef/archive_index.ts";
import { readTensorHeader } from "../src/nnef/tensor_file.ts";
import {
  TAR_BLOCK,
  tarEntryHeader,
  tarPadded,
  type TarWriteEntry,
  writeTar,
} from "../src/nnef/tar.ts";
import { gzip, readMembers, writeIndexedTar } from "./_archives.ts";
import { gzipBomb } from "./_bombs.ts";
import { fixture, randomValues, safetensorsBytes } from "./convert_fixtures.ts";

/** A uniform generator in [0, 1) from a 32-bit seed (mulberry32). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
function pick(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

function choose<T>(random: () => number, items: readonly T[]): T {
  return items[pick(random, items.length)]!;
}

/** The ways an archive is mutated. */
export const ARCHIVE_KINDS = [
  "truncate",
  "tar-header",
  "dat-header",
  "payload",
  "graph-text",
  "hostile-name",
  "duplicate",
  "size-lie",
  "bomb",
] as const;

export type ArchiveKind = typeof ARCHIVE_KINDS[number];

/** One mutated file. */
export interface Mutant {
  /** `kind#seed`: the kind and seed make it again. */
  readonly id: string;
  /** What the file is: an archive (`.tgz`, `.tar`), or a converter input. */
  readonly file: string;
  readonly bytes: Uint8Array;
  /**
   * True when a size, shape, hash, CRC or validator can tell the file is not the original:
   * using it must then fail, or give the original's output. False for changes nothing can
   * see (a payload bit of a tar without an index, an edit of the graph's text).
   */
  readonly detectable: boolean;
  /** What was done, in words (for a failure's report). */
  readonly what: string;
}

/** The stories260K export's members, and the archives made of them once. */
export interface ArchiveBase {
  readonly members: readonly TarWriteEntry[];
  /** The members as a plain tar, and each member's header offset in it. */
  readonly tar: Uint8Array;
  readonly headers: ReadonlyMap<string, number>;
  /** The members as the converter writes them: `rill-index.json` first, with sha256s. */
  readonly indexed: Uint8Array;
  readonly indexedHeaders: ReadonlyMap<string, number>;
}

/** Header offset of every entry of a tar written by `writeTar` from `entries`. */
function headerOffsets(entries: readonly TarWriteEntry[]): Map<string, number> {
  const out = new Map<string, number>();
  let at = 0;
  for (const e of entries) {
    const header = tarEntryHeader(e.name, e.data.length).length;
    out.set(e.name, at + header - TAR_BLOCK);
    at += header + tarPadded(e.data.length);
  }
  return out;
}

/** Reads `archive` (default: the stories260K f32 export) and builds its containers in `dir`. */
export async function archiveBase(
  dir: string,
  archive = fixture("stories260K/nnef/stories260K_f32.nnef.tgz"),
): Promise<ArchiveBase> {
  const members = await readMembers(archive);
  const indexed = await writeIndexedTar(join(dir, "base.nnef.tar"), members);
  const index = JSON.parse(
    new TextDecoder().decode(indexed.subarray(TAR_BLOCK, indexed.indexOf(0x0a, TAR_BLOCK))),
  ) as { members: { name: string; offset: number }[] };
  const indexedHeaders = new Map(index.members.map((m) => [m.name, m.offset - TAR_BLOCK]));
  indexedHeaders.set(ARCHIVE_INDEX_MEMBER, 0);
  return {
    members,
    tar: writeTar(members),
    headers: headerOffsets(members),
    indexed,
    indexedHeaders,
  };
}

type Container = "tgz" | "tar" | "indexed";

/** The members of `base` with `change` applied, in `container`. */
async function render(
  container: Container,
  entries: readonly TarWriteEntry[],
  dir: string,
): Promise<Uint8Array> {
  if (container === "indexed") {
    return await writeIndexedTar(join(dir, `render-${crypto.randomUUID()}.tar`), entries);
  }
  const tar = writeTar(entries);
  return container === "tgz" ? await gzip(tar) : tar;
}

function suffix(container: Container): string {
  return container === "tgz" ? ".nnef.tgz" : ".nnef.tar";
}

function flipBits(bytes: Uint8Array, from: number, to: number, random: () => number): number[] {
  const flips: number[] = [];
  const count = 1 + pick(random, 3);
  for (let i = 0; i < count; i++) {
    const at = from + pick(random, to - from);
    bytes[at]! ^= 1 << pick(random, 8);
    flips.push(at);
  }
  return flips;
}

/** Rewrites the checksum of the tar header at `at`, so that a mutated field is read as such. */
function fixChecksum(tar: Uint8Array, at: number): void {
  const block = tar.subarray(at, at + TAR_BLOCK);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
}

const HOSTILE_NAMES = [
  "../escape.dat",
  "/etc/passwd",
  "a/../../b.dat",
  "./../c.dat",
  "C:\\windows\\d.dat",
  "x/" + "y".repeat(300) + ".dat",
  ".hidden.dat",
  "",
  "graph.nnef/",
  "nul\u0000byte.dat",
];

/** Edits of the graph's text: each returns the new text and what it did. */
const GRAPH_EDITS: ((text: string, random: () => number) => [string, string])[] = [
  function deleteLine(text, random) {
    const lines = text.split("\n");
    const i = pick(random, lines.length);
    return [[...lines.slice(0, i), ...lines.slice(i + 1)].join("\n"), `deleted line ${i + 1}`];
  },
  function duplicateLine(text, random) {
    const lines = text.split("\n");
    const i = pick(random, lines.length);
    return [[...lines.slice(0, i + 1), ...lines.slice(i)].join("\n"), `doubled line ${i + 1}`];
  },
  function selfReference(text, random) {
    const lines = text.split("\n");
    const assignments = lines.flatMap((l, i) => /^\s+(\w+) = \w+\((\w+)/.test(l) ? [i] : []);
    const i = choose(random, assignments);
    const [, left, first] = /^\s+(\w+) = \w+\((\w+)/.exec(lines[i]!)!;
    lines[i] = lines[i]!.replace(`(${first}`, `(${left}`);
    return [lines.join("\n"), `line ${i + 1} reads its own result`];
  },
  function forwardReference(text, random) {
    const lines = text.split("\n");
    const assignments = lines.flatMap((l, i) => /^\s+(\w+) = \w+\((\w+)/.test(l) ? [i] : []);
    const a = pick(random, assignments.length - 1);
    const i = assignments[a]!;
    const later = /^\s+(\w+) =/.exec(
      lines[assignments[a + 1 + pick(random, assignments.length - a - 1)]!]!,
    )![1]!;
    const first = /^\s+\w+ = \w+\((\w+)/.exec(lines[i]!)![1]!;
    lines[i] = lines[i]!.replace(`(${first}`, `(${later}`);
    return [lines.join("\n"), `line ${i + 1} reads '${later}' before it is assigned`];
  },
  function renameOp(text, random) {
    const ops = [...new Set([...text.matchAll(/= (\w+)\(/g)].map((m) => m[1]!))];
    const op = choose(random, ops);
    const other = choose(random, ["conv", "matmul", "add", "tract_core_cast", "reshape", "zz"]);
    return [text.replace(`= ${op}(`, `= ${other}(`), `first '${op}' became '${other}'`];
  },
  function changeNumber(text, random) {
    const numbers = [...text.matchAll(/\b\d+\b/g)];
    const m = choose(random, numbers);
    const value = choose(random, ["0", "-1", "3", "4096", "99999999999", "1e30", "1.5"]);
    return [
      text.slice(0, m.index) + value + text.slice(m.index! + m[0].length),
      `number at ${m.index} became ${value}`,
    ];
  },
  function garbage(text, random) {
    const at = pick(random, text.length);
    const junk = choose(random, ["@", "((((", "}", "\u0000", "\uFFFD", "graph", ";;", "'"]);
    return [text.slice(0, at) + junk + text.slice(at), `inserted ${JSON.stringify(junk)} at ${at}`];
  },
  function addArgument(text, random) {
    const calls = [...text.matchAll(/= (\w+)\(/g)];
    const m = choose(random, calls);
    const at = m.index! + m[0].length;
    return [
      text.slice(0, at) + "bogus = 1, " + text.slice(at),
      `named argument added to '${m[1]}'`,
    ];
  },
];

/**
 * The archive mutant `kind#seed` of `base` (members mutated in memory, containers chosen by the
 * seed; `dir` takes the converter writer's temporary files).
 */
export async function archiveMutant(
  base: ArchiveBase,
  kind: ArchiveKind,
  seed: number,
  dir: string,
): Promise<Mutant> {
  const random = seeded(seed * 7919 + ARCHIVE_KINDS.indexOf(kind));
  const id = `${kind}#${seed}`;
  const container: Container = choose(random, ["tgz", "tar", "indexed"] as const);
  const dats = base.members.filter((m) => m.name.endsWith(".dat"));
  const withMember = (name: string, data: Uint8Array) =>
    base.members.map((m) => (m.name === name ? { name, data } : m));
  switch (kind) {
    case "truncate": {
      const whole = await render(container, base.members, dir);
      const cut = pick(random, whole.length);
      return {
        id,
        file: suffix(container),
        bytes: whole.slice(0, cut),
        // Cutting only end-of-archive zeros (of a tar) leaves it whole.
        detectable: container === "tgz" || cut < lastMemberEnd(whole, container, base),
        what: `${container} cut at ${cut} of ${whole.length} bytes`,
      };
    }
    case "tar-header": {
      const indexed = container === "indexed";
      const tar = (indexed ? base.indexed : base.tar).slice();
      const headers = [...(indexed ? base.indexedHeaders : base.headers).entries()];
      const [name, at] = choose(random, headers);
      const field = choose(
        random,
        [[0, 100], [100, 148], [124, 136], [148, 156], [156, 157], [
          257,
          265,
        ], [0, 512]] as const,
      );
      const flips = flipBits(tar, at + field[0], at + field[1], random);
      const fixed = random() < 0.5;
      if (fixed) fixChecksum(tar, at);
      const out = container === "tgz" ? await gzip(tar) : tar;
      return {
        id,
        file: suffix(container === "tgz" ? "tgz" : "tar"),
        bytes: out,
        detectable: true,
        what: `${container}: bits flipped in the header of '${name}' at ${flips}${
          fixed ? ", checksum fixed" : ""
        }`,
      };
    }
    case "dat-header": {
      const member = choose(random, dats);
      const data = member.data.slice();
      const flips = flipBits(data, 0, 52, random);
      return {
        id,
        file: suffix(container),
        bytes: await render(container, withMember(member.name, data), dir),
        detectable: !otherEncoding(member.data, data),
        what: `${container}: header bytes ${flips} of '${member.name}' flipped`,
      };
    }
    case "payload": {
      if (container === "tgz") {
        // In the compressed bytes: the gzip CRC-32 sees it.
        const tgz = await gzip(base.tar);
        const flips = flipBits(tgz, 10, tgz.length - 8, random);
        return { id, file: ".nnef.tgz", bytes: tgz, detectable: true, what: `tgz bytes ${flips}` };
      }
      const indexed = container === "indexed";
      const tar = (indexed ? base.indexed : base.tar).slice();
      const member = choose(random, dats);
      const at = (indexed ? base.indexedHeaders : base.headers).get(member.name)! + TAR_BLOCK;
      const flips = flipBits(tar, at + 128, at + member.data.length, random);
      return {
        id,
        file: ".nnef.tar",
        bytes: tar,
        // Only the index's sha256 can tell.
        detectable: indexed,
        what: `${container}: payload bytes ${flips} of '${member.name}' flipped`,
      };
    }
    case "graph-text": {
      const graph = base.members.find((m) => m.name === "graph.nnef")!;
      const edit = choose(random, GRAPH_EDITS);
      const [text, what] = edit(new TextDecoder().decode(graph.data), random);
      return {
        id,
        file: suffix(container),
        bytes: await render(
          container,
          withMember("graph.nnef", new TextEncoder().encode(text)),
          dir,
        ),
        detectable: false,
        what: `${container}: ${edit.name}: ${what}`,
      };
    }
    case "hostile-name": {
      const member = choose(random, base.members);
      const name = choose(random, HOSTILE_NAMES);
      const entries = base.members.map((m) => (m === member ? { name, data: m.data } : m));
      const plain = container === "indexed" ? "tar" : container;
      return {
        id,
        file: suffix(plain),
        bytes: await render(plain, entries, dir),
        detectable: true,
        what: `${plain}: '${member.name}' renamed ${JSON.stringify(name)}`,
      };
    }
    case "duplicate": {
      const member = choose(random, dats);
      const copy = {
        name: choose(random, [member.name, `./${member.name}`]),
        data: new Uint8Array(member.data.length),
      };
      copy.data.set(member.data.subarray(0, 128));
      const entries = [...base.members];
      entries.splice(pick(random, entries.length + 1), 0, copy);
      const plain = container === "indexed" ? "tar" : container;
      return {
        id,
        file: suffix(plain),
        bytes: await render(plain, entries, dir),
        detectable: true,
        what: `${plain}: a zeroed second '${copy.name}'`,
      };
    }
    case "size-lie": {
      const tar = base.tar.slice();
      const member = choose(random, base.members);
      const at = base.headers.get(member.name)!;
      const size = choose(random, [
        0,
        member.data.length - 1,
        member.data.length + 1,
        member.data.length + 512,
        2 ** 33,
        pick(random, 2 ** 31),
      ]);
      tar.fill(0, at + 124, at + 136);
      tar.set(new TextEncoder().encode(size.toString(8).padStart(11, "0")), at + 124);
      fixChecksum(tar, at);
      const tgz = random() < 0.5;
      return {
        id,
        file: tgz ? ".nnef.tgz" : ".nnef.tar",
        bytes: tgz ? await gzip(tar) : tar,
        detectable: true,
        what: `${
          tgz ? "tgz" : "tar"
        }: '${member.name}' declares ${size} bytes, holds ${member.data.length}`,
      };
    }
    case "bomb": {
      const form = pick(random, 3);
      const bytes = form === 0
        ? gzipBomb(tarEntryHeader("graph.nnef", 2 ** 34), 2 ** 28)
        : form === 1
        ? gzipBomb(base.tar, 2 ** 28 + pick(random, 2 ** 20))
        : gzipBomb(
          writeTar([{ name: "w.dat", data: new Uint8Array(1) }]).subarray(0, 512),
          2 ** 28,
        );
      return {
        id,
        file: ".nnef.tgz",
        bytes,
        detectable: true,
        what: [
          "a header declaring 16 GiB",
          "the archive then 256 MiB of zeros",
          "a member of 256 MiB of zeros",
        ][form]!,
      };
    }
  }
}

/**
 * True when a mutated `.dat` header still describes the same payload validly, in another
 * encoding of it (Q4_0 and tract's legacy Q4_0 differ by one bit of the item type): nothing but
 * a hash of the member could tell.
 */
function otherEncoding(original: Uint8Array, mutated: Uint8Array): boolean {
  try {
    const a = readTensorHeader(original, "a");
    const b = readTensorHeader(mutated, "b");
    return a.layout !== b.layout && a.dims.join() === b.dims.join() &&
      a.dtype === b.dtype;
  } catch {
    return false;
  }
}

/** Where the last member's payload ends in a rendered tar (a cut past it keeps every member). */
function lastMemberEnd(whole: Uint8Array, container: Container, base: ArchiveBase): number {
  const headers = container === "indexed" ? base.indexedHeaders : base.headers;
  let end = 0;
  for (const m of base.members) {
    end = Math.max(end, headers.get(m.name)! + TAR_BLOCK + m.data.length);
  }
  return Math.min(end, whole.length);
}

/** The ways a converter input is mutated. */
export const CONVERTER_KINDS = [
  "llama2c-truncate",
  "llama2c-header",
  "llama2c-tokenizer",
  "safetensors-header",
  "safetensors-truncate",
  "safetensors-shard-name",
  "hf-config",
  "gguf-bytes",
] as const;

export type ConverterKind = typeof CONVERTER_KINDS[number];

/** A converter input written into a folder: what to convert, and the tokenizer for llama2.c. */
export interface ConverterMutant {
  readonly id: string;
  readonly what: string;
  /** The input path (a file or an HF folder). */
  readonly input: string;
  readonly tokenizer?: string;
  /** True when conversion must fail (a size, offset or name a check can see). */
  readonly mustFail: boolean;
}

/**
 * Writes the converter mutant `kind#seed` into `dir` (which it may fill with several files)
 * from the originals: `hf` is an HF folder (config, tokenizer, one safetensors file).
 */
export async function converterMutant(
  kind: ConverterKind,
  seed: number,
  dir: string,
  hf: string,
): Promise<ConverterMutant> {
  const random = seeded(seed * 104729 + CONVERTER_KINDS.indexOf(kind));
  const id = `${kind}#${seed}`;
  const checkpoint = fixture("stories260K/stories260K.bin");
  const tokenizer = fixture("stories260K/tok512.bin");
  const copyHf = async (): Promise<string> => {
    const folder = join(dir, "hf");
    await Deno.mkdir(folder);
    for await (const e of Deno.readDir(hf)) {
      await Deno.copyFile(join(hf, e.name), join(folder, e.name));
    }
    return folder;
  };
  switch (kind) {
    case "llama2c-truncate": {
      const bytes = await Deno.readFile(checkpoint);
      const cut = pick(random, bytes.length);
      await Deno.writeFile(join(dir, "m.bin"), bytes.subarray(0, cut));
      return {
        id,
        what: `checkpoint cut at ${cut}`,
        input: join(dir, "m.bin"),
        tokenizer,
        mustFail: true,
      };
    }
    case "llama2c-header": {
      const bytes = await Deno.readFile(checkpoint);
      const field = pick(random, 7);
      const value = choose(random, [0, -1, 1, 3, 1 << 20, 2 ** 31 - 1, -(2 ** 31), 7]);
      new DataView(bytes.buffer).setInt32(4 * field, value, true);
      await Deno.writeFile(join(dir, "m.bin"), bytes);
      return {
        id,
        what: `header field ${field} set to ${value}`,
        input: join(dir, "m.bin"),
        tokenizer,
        mustFail: false,
      };
    }
    case "llama2c-tokenizer": {
      const bytes = await Deno.readFile(tokenizer);
      const cut = random() < 0.5;
      const out = cut ? bytes.subarray(0, pick(random, bytes.length)) : bytes.slice();
      if (!cut) flipBits(out, 0, Math.min(out.length, 64), random);
      await Deno.writeFile(join(dir, "tok.bin"), out);
      return {
        id,
        what: cut ? `tokenizer cut at ${out.length}` : "tokenizer head bits flipped",
        input: checkpoint,
        tokenizer: join(dir, "tok.bin"),
        mustFail: cut,
      };
    }
    case "safetensors-header": {
      const folder = await copyHf();
      const path = join(folder, "model.safetensors");
      const bytes = await Deno.readFile(path);
      const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
      const names = Object.keys(header).filter((k) => k !== "__metadata__");
      const name = choose(random, names);
      const entry = header[name] as { dtype: string; shape: number[]; data_offsets: number[] };
      const edit = pick(random, 5);
      let what: string;
      if (edit === 0) {
        const others = names.filter((n) => n !== name);
        const other = header[choose(random, others)] as { data_offsets: number[] };
        entry.data_offsets = [...other.data_offsets];
        what = `'${name}' takes another tensor's offsets`;
      } else if (edit === 1) {
        entry.data_offsets = entry.data_offsets.map((o) => o + 2 * (1 + pick(random, 8)));
        what = `'${name}' shifted into its neighbour`;
      } else if (edit === 2) {
        entry.data_offsets = [entry.data_offsets[0]!, entry.data_offsets[0]! + 2 ** 40];
        what = `'${name}' reaches past the file`;
      } else if (edit === 3) {
        entry.dtype = choose(random, ["I64", "F64", "Q4", ""]);
        what = `'${name}' of dtype ${entry.dtype}`;
      } else {
        entry.shape = entry.shape.map((d) => d * 2);
        what = `'${name}' doubled in shape`;
      }
      let json = JSON.stringify(header);
      while ((8 + json.length) % 8 !== 0) json += " ";
      const text = new TextEncoder().encode(json);
      const out = new Uint8Array(8 + text.length + bytes.length - 8 - length);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      out.set(bytes.subarray(8 + length), 8 + text.length);
      await Deno.writeFile(path, out);
      return { id, what, input: folder, mustFail: edit <= 3 || edit === 4 };
    }
    case "safetensors-truncate": {
      const folder = await copyHf();
      const path = join(folder, "model.safetensors");
      const bytes = await Deno.readFile(path);
      const cut = pick(random, bytes.length);
      await Deno.writeFile(path, bytes.subarray(0, cut));
      return { id, what: `safetensors cut at ${cut}`, input: folder, mustFail: true };
    }
    case "safetensors-shard-name": {
      const folder = await copyHf();
      const name = choose(random, HOSTILE_NAMES);
      await Deno.writeTextFile(
        join(folder, "model.safetensors.index.json"),
        JSON.stringify({ weight_map: { "model.embed_tokens.weight": name } }),
      );
      return {
        id,
        what: `index names the shard ${JSON.stringify(name)}`,
        input: folder,
        mustFail: true,
      };
    }
    case "hf-config": {
      const folder = await copyHf();
      const path = join(folder, "config.json");
      const config = JSON.parse(await Deno.readTextFile(path));
      const key = choose(random, [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "max_position_embeddings",
        "rms_norm_eps",
        "architectures",
      ]);
      const value = choose(random, [0, -1, 1.5, 2 ** 40, "x", null, [], 1e308]);
      config[key] = value;
      await Deno.writeTextFile(path, JSON.stringify(config));
      return {
        id,
        what: `config ${key} = ${JSON.stringify(value)}`,
        input: folder,
        mustFail: false,
      };
    }
    case "gguf-bytes": {
      const bytes = await Deno.readFile(fixture("gguf/llama-2-tiny-random.gguf"));
      const cut = random() < 0.3;
      const out = cut ? bytes.subarray(0, pick(random, bytes.length)) : bytes.slice();
      const flips = cut ? [] : flipBits(out, 0, Math.min(out.length, 1 << 16), random);
      await Deno.writeFile(join(dir, "m.gguf"), out);
      return {
        id,
        what: cut ? `gguf cut at ${out.length}` : `gguf bytes ${flips} flipped`,
        input: join(dir, "m.gguf"),
        mustFail: cut,
      };
    }
  }
}

/** A small Llama in an HF folder (config, the SmolLM2 tokenizer, one F32 safetensors file). */
export async function writeSmallHf(folder: string): Promise<void> {
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 32,
    intermediate_size: 64,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_hidden_layers: 1,
    vocab_size: 16,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  };
  const shapes: [string, number[]][] = [
    ["model.embed_tokens.weight", [16, 32]],
    ["model.layers.0.input_layernorm.weight", [32]],
    ["model.layers.0.self_attn.q_proj.weight", [32, 32]],
    ["model.layers.0.self_attn.k_proj.weight", [16, 32]],
    ["model.layers.0.self_attn.v_proj.weight", [16, 32]],
    ["model.layers.0.self_attn.o_proj.weight", [32, 32]],
    ["model.layers.0.post_attention_layernorm.weight", [32]],
    ["model.layers.0.mlp.gate_proj.weight", [64, 32]],
    ["model.layers.0.mlp.up_proj.weight", [64, 32]],
    ["model.layers.0.mlp.down_proj.weight", [32, 64]],
    ["model.norm.weight", [32]],
  ];
  await Deno.mkdir(folder, { recursive: true });
  await Deno.writeTextFile(join(folder, "config.json"), JSON.stringify(config));
  await Deno.copyFile(
    fixture("tokenizers/smollm2/tokenizer.json"),
    join(folder, "tokenizer.json"),
  );
  const tensors = shapes.map(([name, shape], i) => ({
    name,
    shape,
    values: randomValues(shape.reduce((a, b) => a * b, 1), i + 1, 0.1),
  }));
  await Deno.writeFile(join(folder, "model.safetensors"), safetensorsBytes(tensors, "F32"));
}
