import type { SchedulerStats } from "./step_loop.ts";

const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds per generated token: 1000 tokens/s down to 1. */
const TPOT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** A Prometheus histogram: cumulative buckets, their sum and count. */
class Histogram {
  readonly #bounds: readonly number[];
  readonly #buckets: number[];
  #count = 0;
  #sum = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.#buckets = new Array<number>(bounds.length).fill(0);
  }

  observe(value: number): void {
    this.#count++;
    this.#sum += value;
    // Each bucket counts every observation at or below its bound.
    this.#bounds.forEach((le, i) => {
      if (value <= le) this.#buckets[i]!++;
    });
  }

  samples(name: string): string[] {
    return [
      ...this.#bounds.map((le, i) => `${name}_bucket{le="${le}"} ${this.#buckets[i]}`),
      `${name}_bucket{le="+Inf"} ${this.#count}`,
      `${name}_sum ${this.#sum}`,
      `${name}_count ${this.#count}`,
    ];
  }
}

/** Counters and gauges of the serving layer, rendered in the Prometheus text format. */
export class ServingMetrics {
  readonly #requests = new Map<string, number>();
  #promptTokens = 0;
  #completionTokens = 0;
  #cancellations = 0;
  readonly #ttft = new Histogram(TTFT_BUCKETS);
  readonly #perToken = new Histogram(TPOT_BUCKETS);
  readonly #duration = new Histogram(DURATION_BUCKETS);
  #decodeSeconds = 0;
  #decodeTokens = 0;
  #lastTokensPerSecond = 0;
  #compileCount = 0;
  #compileSeconds = 0;
  #masks = 0;
  #maskSeconds = 0;
  #queueDepth: () => number = () => 0;
  #running: () => number = () => 0;
  #scheduler: () => SchedulerStats | undefined = () => undefined;

  /** Where the scheduler's figures are read from at scrape time. */
  bindScheduler(stats: () => SchedulerStats | undefined): void {
    this.#scheduler = stats;
  }

  /** Where the queue gauges are read from at scrape time. */
  bindQueue(queue: { readonly waiting: number; readonly running: number }): void {
    this.#queueDepth = () => queue.waiting;
    this.#running = () => queue.running;
  }

  /** Counts one finished HTTP request. */
  request(route: string, status: number): void {
    const key = `route="${route}",status="${status}"`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
  }

  /** Counts the tokens of one generation. */
  tokens(prompt: number, completion: number): void {
    this.#promptTokens += prompt;
    this.#completionTokens += completion;
  }

  /** Records the time from request arrival to the first generated token. */
  timeToFirstToken(seconds: number): void {
    this.#ttft.observe(seconds);
  }

  /** Records a generation's time from request arrival to its last token. */
  generationDuration(seconds: number): void {
    this.#duration.observe(seconds);
  }

  /** Records the decode phase of one generation (tokens after the first). */
  decode(tokens: number, seconds: number): void {
    if (tokens <= 0 || seconds <= 0) return;
    this.#perToken.observe(seconds / tokens);
    this.#decodeTokens += tokens;
    this.#decodeSeconds += seconds;
    this.#lastTokensPerSecond = tokens / seconds;
  }

  /** Records the compilation of a structured-output schema or tool grammar. */
  schemaCompile(seconds: number): void {
    this.#compileCount++;
    this.#compileSeconds += seconds;
  }

  /** Records the token masks of one constrained generation: how many, and their time. */
  constrained(masks: number, seconds: number): void {
    this.#masks += masks;
    this.#maskSeconds += seconds;
  }

  /** Counts a generation stopped because its client went away. */
  cancellation(): void {
    this.#cancellations++;
  }

  /** The Prometheus text exposition (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: string[]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
    };
    metric(
      "rill_requests_total",
      "counter",
      "HTTP requests by route and status.",
      [...this.#requests].map(([labels, n]) => `rill_requests_total{${labels}} ${n}`),
    );
    metric("rill_prompt_tokens_total", "counter", "Prompt tokens processed.", [
      `rill_prompt_tokens_total ${this.#promptTokens}`,
    ]);
    metric("rill_completion_tokens_total", "counter", "Tokens generated.", [
      `rill_completion_tokens_total ${this.#completionTokens}`,
    ]);
    metric("rill_cancellations_total", "counter", "Generations cancelled by the client.", [
      `rill_cancellations_total ${this.#cancellations}`,
    ]);
    metric(
      "rill_time_to_first_token_seconds",
      "histogram",
      "Time from request arrival to the first generated token.",
      this.#ttft.samples("rill_time_to_first_token_seconds"),
    );
    metric(
      "rill_time_per_output_token_seconds",
      "histogram",
      "A generation's mean time per token after the first.",
      this.#perToken.samples("rill_time_per_output_token_seconds"),
    );
    metric(
      "rill_generation_duration_seconds",
      "histogram",
      "Time from request arrival to a generation's last token.",
      this.#duration.samples("rill_generation_duration_seconds"),
    );
    metric(
      "rill_decode_seconds_total",
      "counter",
      "Time spent generating tokens after the first.",
      [
        `rill_decode_seconds_total ${this.#decodeSeconds}`,
      ],
    );
    metric("rill_decode_tokens_total", "counter", "Tokens generated after the first.", [
      `rill_decode_tokens_total ${this.#decodeTokens}`,
    ]);
    metric("rill_tokens_per_second", "gauge", "Decode speed of the last generation.", [
      `rill_tokens_per_second ${this.#lastTokensPerSecond}`,
    ]);
    metric(
      "rill_schema_compile_seconds",
      "summary",
      "Time to compile a response_format schema or a tool-call grammar.",
      [
        `rill_schema_compile_seconds_sum ${this.#compileSeconds}`,
        `rill_schema_compile_seconds_count ${this.#compileCount}`,
      ],
    );
    metric(
      "rill_constrained_masks_total",
      "counter",
      "Token masks computed for constrained decoding.",
      [`rill_constrained_masks_total ${this.#masks}`],
    );
    metric(
      "rill_constrained_mask_seconds_total",
      "counter",
      "Time spent computing token masks for constrained decoding.",
      [`rill_constrained_mask_seconds_total ${this.#maskSeconds}`],
    );
    metric("rill_queue_depth", "gauge", "Choices of requests waiting for their turn.", [
      `rill_queue_depth ${this.#queueDepth()}`,
    ]);
    metric("rill_requests_running", "gauge", "Choices of requests generating now.", [
      `rill_requests_running ${this.#running()}`,
    ]);
    const stats = this.#scheduler();
    if (stats) {
      const gauge = (name: string, help: string, value: number, type = "gauge") =>
        metric(name, type, help, [`${name} ${value}`]);
      gauge("rill_sequences_running", "Sequences in the batch.", stats.running);
      gauge("rill_sequences_waiting", "Sequences waiting for KV blocks.", stats.waiting);
      gauge("rill_batch_size", "Sequences in the last step.", stats.batchSize);
      gauge("rill_step_tokens", "Tokens in the last step.", stats.stepTokens);
      gauge("rill_steps_total", "Batched steps run.", stats.steps, "counter");
      gauge(
        "rill_kv_blocks_used",
        "KV blocks held by sequences or the prefix cache.",
        stats.blocksUsed,
      );
      gauge("rill_kv_blocks_free", "KV blocks free.", stats.blocksFree);
      gauge("rill_kv_blocks_cached", "KV blocks kept by the prefix cache.", stats.blocksCached);
      gauge("rill_kv_pool_bytes", "Bytes of the KV pool's blocks, used or free.", stats.poolBytes);
      gauge(
        "rill_prefix_hit_tokens_total",
        "Prompt tokens served from the prefix cache.",
        stats.prefixHitTokens,
        "counter",
      );
      gauge(
        "rill_preemptions_total",
        "Sequences paused to free KV blocks.",
        stats.preemptions,
        "counter",
      );
      gauge(
        "rill_prediction_accepted_tokens_total",
        "Guessed tokens (from predicted outputs) that the sampling took.",
        stats.acceptedGuesses,
        "counter",
      );
      gauge(
        "rill_prediction_rejected_tokens_total",
        "Guessed tokens fed that the sampling did not take.",
        stats.rejectedGuesses,
        "counter",
      );
    }
    return lines.join("\n") + "\n";
  }
}
