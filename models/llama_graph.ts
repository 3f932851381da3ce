/**
 * The NNEF graph of a Llama-family model, with the IO torch_to_nnef gives LLM exports (see
 * `buildLlamaGraph`).
 */
import {
  EMBED_NAME,
  INV_FREQ_NAME,
  type LlamaConfig,
  LM_HEAD_NAME,
  LOCAL_INV_FREQ_NAME,
  type WeightDType,
} from "./llama.ts";

/** An NNEF identifier for a weight label: every character outside `[A-Za-z0-9_]` becomes `_`. */
function identifierOf(label: string): string {
  const id = label.replace(/[^A-Za-z0-9_]/g, "_");
  return /^[A-Za-z_]/.test(id) ? id : `_${id}`;
}

/** A scalar literal tract reads as a float (it has a `.` or an `e`). */
function scalarLiteral(x: number): string {
  const s = String(x);
  return /[.e]/.test(s) || !Number.isFinite(x) ? s : `${s}.0`;
}

function stringLiteral(s: string): string {
  return `"${s.replace(/["'\\{}%#]/g, (c) => (c === "\\" || c === '"' ? `\\${c}` : "_"))}"`;
}

/** Writes one assignment per line, flat (no nested invocations). */
class GraphText {
  readonly #lines: string[] = [];
  readonly #declared = new Set<string>();

  line(lhs: string, rhs: string): string {
    this.#lines.push(`    ${lhs} = ${rhs};`);
    return lhs;
  }

  /** Declares a weight once; f16 weights are cast to f32 so that compute stays in f32. */
  weight(label: string, shape: readonly number[], dtype: WeightDType): string {
    const id = identifierOf(label);
    if (this.#declared.has(id)) return dtype === "f16" ? `${id}_f32` : id;
    this.#declared.add(id);
    const generic = dtype === "q40" ? "" : "<scalar>";
    this.line(id, `variable${generic}(label = '${label}', shape = [${shape.join(", ")}])`);
    if (dtype === "f16") return this.line(`${id}_f32`, `tract_core_cast(${id}, to = 'f32')`);
    return id;
  }

  get lines(): readonly string[] {
    return this.#lines;
  }
}

/** Options of `buildLlamaGraph`. */
export interface LlamaGraphOptions {
  /** Storage type of each weight, by name (absent means f32). */
  readonly dtypes: ReadonlyMap<string, WeightDType>;
  /** Key/value pairs for the `tract_core_properties` fragment. */
  readonly properties?: ReadonlyArray<readonly [string, string]>;
}

const F32_LOWEST = "-3.4028234663852886e+38";

/**
 * The `graph.nnef` text of a model: IO `input_ids` [1,S] i64 and `in_cache_{key,value}_i`
 * [1,kvH,P,hd] f32 in, `outputs` [1,1,V] (logits of the last position) and
 * `out_cache_{key,value}_i` [1,kvH,P+S,hd] out; symbols S and P with torch_to_nnef's asserts.
 * Only standard NNEF and `tract_core_*` operators, one flat assignment per line.
 */
export function buildLlamaGraph(config: LlamaConfig, options: LlamaGraphOptions): string {
  const c = config;
  const dtypeOf = (name: string): WeightDType => options.dtypes.get(name) ?? "f32";
  const g = new GraphText();
  const weight = (name: string, shape: readonly number[]): string =>
    g.weight(name, shape, dtypeOf(name));
  const linearWeight = (name: string, shape: readonly number[]): string =>
    g.line(`${identifierOf(name)}_aligned`, `unsqueeze(${weight(name, shape)}, axes = [0])`);
  const inputs = ["input_ids"];
  const outputs = ["outputs"];
  for (let i = 0; i < c.numLayers; i++) {
    inputs.push(`in_cache_key_${i}`, `in_cache_value_${i}`);
    outputs.push(`out_cache_key_${i}`, `out_cache_value_${i}`);
  }
  const kvShape = `[1, ${c.numKvHeads}, P, ${c.headDim}]`;
  g.line("input_ids", "tract_core_external(shape = [1, S], datum_type = 'i64')");
  for (const name of inputs.slice(1)) {
    g.line(name, `tract_core_external(shape = ${kvShape}, datum_type = 'f32')`);
  }

  // Positions P..P+S-1 and the additive causal mask (1, 1, S, P+S).
  g.line("input_ids_shape", "tract_core_shape_of(input_ids)");
  g.line(
    "seq_len_1",
    "slice(input_ids_shape, axes = [0], begin = [1], end = [2], stride = [1])",
  );
  g.line("seq_len", "squeeze(seq_len_1, axes = [0])");
  g.line("past_shape", "tract_core_shape_of(in_cache_key_0)");
  g.line("past_len_1", "slice(past_shape, axes = [0], begin = [2], end = [3], stride = [1])");
  g.line("past_len", "squeeze(past_len_1, axes = [0])");
  g.line("total_len", "add(past_len, seq_len)");
  g.line("arange_new", "tract_core_range(0, seq_len, step = 1)");
  g.line("past_len_aligned", "unsqueeze(past_len, axes = [0])");
  g.line("positions", "add(arange_new, past_len_aligned)"); // (S,)
  g.line("key_positions", "tract_core_range(0, total_len, step = 1)"); // (P+S,)
  g.line("key_positions_row", "unsqueeze(key_positions, axes = [0])"); // (1, P+S)
  g.line("positions_col", "unsqueeze(positions, axes = [1])"); // (S, 1)
  g.line("future", "gt(key_positions_row, positions_col)"); // (S, P+S)
  g.line("mask_fill", `tract_core_cast(${F32_LOWEST}, to = 'f32')`);
  g.line("mask_zero", "tract_core_cast(0.0, to = 'f32')");
  g.line("mask_2d", "select(future, mask_fill, mask_zero)");
  g.line("mask", "unsqueeze(mask_2d, axes = [0, 1])"); // (1, 1, S, P+S)
  if (c.slidingWindow !== undefined) {
    // Sliding layers also drop the positions `slidingWindow` or more before the query's.
    g.line("window_start", `add(positions_col, ${1 - c.slidingWindow})`); // (S, 1)
    g.line("too_old", "lt(key_positions_row, window_start)"); // (S, P+S)
    g.line("outside", "or(future, too_old)");
    g.line("sliding_mask_2d", "select(outside, mask_fill, mask_zero)");
    g.line("sliding_mask", "unsqueeze(sliding_mask_2d, axes = [0, 1])"); // (1, 1, S, P+S)
  }

  // RoPE tables (1, 1, S, rd), rotate-half convention, over the rd turned dims of a head.
  const rotary = c.rotaryDim ?? c.headDim;
  g.line("positions_f32", "tract_core_cast(positions_col, to = 'f32')"); // (S, 1)
  const ropeTables = (prefix: string, name: string): [string, string] => {
    const invFreq = weight(name, [rotary / 2]);
    g.line(`${prefix}inv_freq_row`, `unsqueeze(${invFreq}, axes = [0])`); // (1, rd/2)
    g.line(`${prefix}freqs`, `mul(positions_f32, ${prefix}inv_freq_row)`); // (S, rd/2)
    g.line(`${prefix}freqs_full`, `concat([${prefix}freqs, ${prefix}freqs], axis = 1)`); // (S, rd)
    g.line(`${prefix}rope_cos_2d`, `cos(${prefix}freqs_full)`);
    g.line(`${prefix}rope_sin_2d`, `sin(${prefix}freqs_full)`);
    return [
      g.line(`${prefix}rope_cos`, `unsqueeze(${prefix}rope_cos_2d, axes = [0, 1])`),
      g.line(`${prefix}rope_sin`, `unsqueeze(${prefix}rope_sin_2d, axes = [0, 1])`),
    ];
  };
  const globalRope = ropeTables("", INV_FREQ_NAME);
  const localRope = c.localRopeTheta === undefined
    ? globalRope
    : ropeTables("local_", LOCAL_INV_FREQ_NAME);

  const embedDtype = dtypeOf(EMBED_NAME);
  const embed = weight(EMBED_NAME, [c.vocabSize, c.hiddenSize]);
  const gatherType = embedDtype === "q40" ? ", datum_type = 'f32'" : "";
  let x = g.line("embeddings", `tract_core_gather(${embed}, input_ids, axis = 0${gatherType})`);
  // A tied embedding is stored divided by the logits' divisor (see `logitScale`).
  const embedScale = (c.embedScale ?? 1) * (c.tieWordEmbeddings ? c.logitScale ?? 1 : 1);
  if (embedScale !== 1) {
    x = g.line("embeddings_scaled", `mul(${x}, ${scalarLiteral(Math.fround(embedScale))})`);
  }

  /** RMSNorm over the last axis of `input` (rank `rank`, last axis `size`). */
  const rmsNorm = (
    prefix: string,
    input: string,
    weightName: string,
    size = c.hiddenSize,
    rank = 3,
  ): string => {
    const w = weight(weightName, [size]);
    const lead = Array.from({ length: rank - 1 }, (_, i) => i).join(", ");
    g.line(`${prefix}_sq`, `sqr(${input})`);
    g.line(`${prefix}_mean`, `mean_reduce(${prefix}_sq, axes = [${rank - 1}])`); // (..., 1)
    g.line(`${prefix}_eps`, `add(${prefix}_mean, ${scalarLiteral(c.rmsNormEps)})`);
    g.line(`${prefix}_rsqrt`, `rsqrt(${prefix}_eps)`);
    g.line(`${prefix}_normed`, `mul(${input}, ${prefix}_rsqrt)`);
    g.line(`${prefix}_weight`, `unsqueeze(${w}, axes = [${lead}])`); // (1, ..., size)
    return g.line(`${prefix}_out`, `mul(${prefix}_weight, ${prefix}_normed)`);
  };
  const linear = (out: string, input: string, name: string, shape: number[], bias: boolean) => {
    const w = linearWeight(`${name}.weight`, shape);
    let b = "0.0";
    if (bias) {
      const raw = weight(`${name}.bias`, [shape[0]!]);
      b = g.line(`${identifierOf(name)}_bias_aligned`, `unsqueeze(${raw}, axes = [0, 1])`);
    }
    return g.line(out, `linear(${input}, ${w}, ${b})`);
  };
  const slice = (input: string, begin: number, end: number) =>
    `slice(${input}, axes = [3], begin = [${begin}], end = [${end}], stride = [1])`;
  /** (1, n, S, hd) with its leading `rotary` dims turned; the others pass as they are. */
  const rope = (prefix: string, input: string, [cos, sin]: [string, string]): string => {
    const half = rotary / 2;
    const x = rotary === c.headDim ? input : g.line(`${prefix}_turned`, slice(input, 0, rotary)); // (1, n, S, rd)
    g.line(`${prefix}_x1`, slice(x, 0, half));
    g.line(`${prefix}_x2`, slice(x, half, rotary));
    g.line(`${prefix}_x2_neg`, `neg(${prefix}_x2)`);
    g.line(`${prefix}_rotated`, `concat([${prefix}_x2_neg, ${prefix}_x1], axis = 3)`);
    g.line(`${prefix}_cos`, `mul(${x}, ${cos})`);
    g.line(`${prefix}_sin`, `mul(${prefix}_rotated, ${sin})`);
    const roped = g.line(`${prefix}_roped`, `add(${prefix}_cos, ${prefix}_sin)`);
    if (rotary === c.headDim) return roped;
    g.line(`${prefix}_passed`, slice(input, rotary, c.headDim)); // (1, n, S, hd - rd)
    return g.line(`${prefix}_positioned`, `concat([${roped}, ${prefix}_passed], axis = 3)`);
  };
  /** (1, S, n * hd) as (1, n, S, hd), each head RMS-normed first when `norm` names a weight. */
  const heads = (prefix: string, input: string, n: number, norm?: string): string => {
    let split = g.line(`${prefix}_split`, `reshape(${input}, shape = [1, -1, ${n}, ${c.headDim}])`);
    if (norm !== undefined) split = rmsNorm(`${prefix}_norm`, split, norm, c.headDim, 4);
    return g.line(`${prefix}_heads`, `transpose(${split}, axes = [0, 2, 1, 3])`);
  };
  const repeatKv = (prefix: string, input: string): string => {
    const rep = c.numHeads / c.numKvHeads;
    if (rep === 1) return input;
    g.line(`${prefix}_5d`, `unsqueeze(${input}, axes = [2])`); // (1, kvH, 1, P+S, hd)
    g.line(`${prefix}_tiled`, `tile(${prefix}_5d, repeats = [1, 1, ${rep}, 1, 1])`);
    return g.line(
      `${prefix}_repeated`,
      `reshape(${prefix}_tiled, shape = [1, ${c.numHeads}, -1, ${c.headDim}])`,
    );
  };

  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const scale = scalarLiteral(c.attentionScale ?? 1 / Math.sqrt(c.headDim));
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    const l = `layer${i}`;
    const sliding = c.slidingLayers?.[i] === true;
    const tables = sliding ? localRope : globalRope;
    const h = rmsNorm(`${l}_attn_norm`, x, `${p}.input_layernorm.weight`); // (1, S, D)
    const qp = linear(`${l}_q`, h, `${p}.self_attn.q_proj`, [q, c.hiddenSize], c.qkvBias);
    const kp = linear(`${l}_k`, h, `${p}.self_attn.k_proj`, [kv, c.hiddenSize], c.qkvBias);
    const vp = linear(`${l}_v`, h, `${p}.self_attn.v_proj`, [kv, c.hiddenSize], c.qkvBias);
    const qNorm = c.qkNorm ? `${p}.self_attn.q_norm.weight` : undefined;
    const kNorm = c.qkNorm ? `${p}.self_attn.k_norm.weight` : undefined;
    const positioned = (prefix: string, input: string) =>
      c.ropeLayers?.[i] === false ? input : rope(prefix, input, tables);
    const qh = positioned(`${l}_q`, heads(`${l}_q`, qp, c.numHeads, qNorm)); // (1, H, S, hd)
    const kh = positioned(`${l}_k`, heads(`${l}_k`, kp, c.numKvHeads, kNorm)); // (1, kvH, S, hd)
    const vh = heads(`${l}_v`, vp, c.numKvHeads); // (1, kvH, S, hd)
    const keys = g.line(`out_cache_key_${i}`, `concat([in_cache_key_${i}, ${kh}], axis = 2)`);
    const values = g.line(
      `out_cache_value_${i}`,
      `concat([in_cache_value_${i}, ${vh}], axis = 2)`,
    );
    const k = repeatKv(`${l}_keys`, keys); // (1, H, P+S, hd)
    const v = repeatKv(`${l}_values`, values); // (1, H, P+S, hd)
    g.line(
      `${l}_scores`,
      `tract_core_einsum(inputs = [${qh}, ${k}], expr = 'bcij,bckj->bcik', acc = 'f32')`,
    ); // (1, H, S, P+S)
    g.line(`${l}_scaled`, `mul(${l}_scores, ${scale})`);
    g.line(`${l}_masked`, `add(${l}_scaled, ${sliding ? "sliding_mask" : "mask"})`);
    g.line(`${l}_probs`, `softmax(${l}_masked, axes = [3])`);
    g.line(
      `${l}_context`,
      `tract_core_einsum(inputs = [${l}_probs, ${v}], expr = 'bcij,bcjk->bcik', acc = 'f32')`,
    ); // (1, H, S, hd)
    g.line(`${l}_context_t`, `transpose(${l}_context, axes = [0, 2, 1, 3])`);
    g.line(`${l}_context_2d`, `reshape(${l}_context_t, shape = [1, -1, ${q}])`);
    let o = linear(`${l}_o`, `${l}_context_2d`, `${p}.self_attn.o_proj`, [
      c.hiddenSize,
      q,
    ], c.oBias);
    if (c.sandwichNorms) {
      o = rmsNorm(`${l}_attn_out_norm`, o, `${p}.post_attention_layernorm.weight`);
    }
    const r = g.line(`${l}_attn_residual`, `add(${x}, ${o})`);
    const m = rmsNorm(
      `${l}_mlp_norm`,
      r,
      `${p}.${c.sandwichNorms ? "pre_feedforward_layernorm" : "post_attention_layernorm"}.weight`,
    );
    const ffShape = [c.intermediateSize, c.hiddenSize];
    const gate = linear(`${l}_gate`, m, `${p}.mlp.gate_proj`, ffShape, false);
    const up = linear(`${l}_up`, m, `${p}.mlp.up_proj`, ffShape, false);
    if (c.activation === "gelu_tanh") {
      g.line(`${l}_gate_act`, `tract_core_gelu_approx(${gate}, fast_impl = false)`);
    } else {
      g.line(`${l}_gate_sigmoid`, `sigmoid(${gate})`);
      g.line(`${l}_gate_act`, `mul(${gate}, ${l}_gate_sigmoid)`);
    }
    g.line(`${l}_gated`, `mul(${l}_gate_act, ${up})`);
    let down = linear(`${l}_down`, `${l}_gated`, `${p}.mlp.down_proj`, [
      c.hiddenSize,
      c.intermediateSize,
    ], false);
    if (c.sandwichNorms) {
      down = rmsNorm(`${l}_mlp_out_norm`, down, `${p}.post_feedforward_layernorm.weight`);
    }
    x = g.line(`${l}_mlp_residual`, `add(${r}, ${down})`);
  }
  const final = rmsNorm("final_norm", x, "model.norm.weight");
  g.line("last_begin", "add(seq_len, -1)");
  g.line(
    "last_hidden",
    `slice(${final}, axes = [1], begin = [last_begin], end = [seq_len], stride = [1])`,
  );
  const head = c.tieWordEmbeddings
    ? g.line("lm_head_aligned", `unsqueeze(${embed}, axes = [0])`)
    : linearWeight(LM_HEAD_NAME, [c.vocabSize, c.hiddenSize]);
  g.line("outputs", `linear(last_hidden, ${head}, 0.0)`); // (1, 1, V)

  const header = [
    "version 1.0;",
    "",
    "extension tract_registry tract_core;",
    "extension tract_symbol S;",
    "extension tract_symbol P;",
    "extension tract_assert P >= 0;",
    "extension tract_assert S >= 1;",
    `extension tract_assert S+P < ${c.maxPositions};`,
    "extension tract_assert tg: S==1;",
    "extension tract_assert pp: P==0;",
    "",
  ];
  const properties = options.properties ?? [];
  if (properties.length > 0) {
    header.push(
      "fragment tract_core_properties(",
      ") -> (properties: (string, tensor<scalar>)[])",
      "{",
      "  properties = [",
      properties.map(([k, v]) => `    (${stringLiteral(k)}, ${stringLiteral(v)})`).join(",\n"),
      "  ];",
      "}",
      "",
    );
  }
  return [
    ...header,
    `graph network(${inputs.join(", ")}) -> (${outputs.join(", ")})`,
    "{",
    ...g.lines,
    "}",
    "",
  ].join("\n");
}
