/** Progress of a model's download, conversion and load on stderr, for `serve` and `generate`. */
import type { LoadProgress } from "../src/engine/load_service.ts";

/** Options of `ProgressReporter`. */
export interface ProgressReporterOptions {
  /** Where lines go when not drawing a bar (default: stderr). */
  readonly log?: (line: string) => void;
  /** Draw a bar redrawn in place on stderr (default: whether stderr is a terminal). */
  readonly terminal?: boolean;
  /** Milliseconds between two lines of the same phase when not drawing a bar (default 2000). */
  readonly intervalMs?: number;
}

const BAR_WIDTH = 30;
const BAR_REDRAW_MS = 100;

/**
 * Shows how a model's download, conversion and load advance: on a terminal, one bar per phase
 * redrawn in place; elsewhere (logs, pipes), a line when a phase begins, then at most one every
 * `intervalMs`, and one when it ends.
 */
export class ProgressReporter {
  readonly #log: (line: string) => void;
  readonly #terminal: boolean;
  readonly #intervalMs: number;
  #shown: LoadProgress | undefined;
  #shownAt = 0;
  #barOpen = false;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: ProgressReporterOptions = {}) {
    this.#log = options.log ?? ((line) => console.error(line));
    this.#terminal = options.terminal ?? Deno.stderr.isTerminal();
    this.#intervalMs = options.intervalMs ?? 2000;
  }

  /** Takes the latest progress of a phase; shows it when due. */
  update(progress: LoadProgress): void {
    const now = performance.now();
    const previous = this.#shown;
    const begins = previous === undefined || previous.phase !== progress.phase ||
      previous.what !== progress.what;
    const ends = progress.totalBytes !== undefined && progress.doneBytes >= progress.totalBytes;
    const wait = this.#terminal ? BAR_REDRAW_MS : this.#intervalMs;
    if (!begins && !ends && now - this.#shownAt < wait) return;
    if (!begins && ends && previous?.doneBytes === progress.doneBytes) return;
    this.#shown = progress;
    this.#shownAt = now;
    if (this.#terminal) this.#drawBar(progress, begins, ends);
    else if (!begins || ends || progress.totalBytes !== undefined) {
      this.#log(`rill: ${describe(progress)}`);
    }
  }

  /**
   * Polls `read` (at the pace of `update`) until `until` settles, then shows its last value:
   * for a phase that reports nothing by itself, such as placing an archive's members.
   */
  follow(read: () => LoadProgress, until: Promise<unknown>): void {
    this.stop();
    this.update(read());
    const timer = setInterval(
      () => this.update(read()),
      this.#terminal ? BAR_REDRAW_MS : Math.min(this.#intervalMs, 500),
    );
    this.#timer = timer;
    const last = () => {
      if (this.#timer !== timer) return;
      this.stop();
      const final = read();
      this.update({ ...final, totalBytes: final.totalBytes ?? final.doneBytes });
      this.#closeBar();
    };
    until.then(last, last);
  }

  /** Stops following and ends a bar left open. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#closeBar();
  }

  #drawBar(progress: LoadProgress, begins: boolean, ends: boolean): void {
    if (begins) this.#closeBar();
    const { doneBytes, totalBytes } = progress;
    const fraction = totalBytes ? Math.min(1, doneBytes / totalBytes) : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = totalBytes === undefined
      ? ""
      : `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] `;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${bar}${describe(progress)}`));
    this.#barOpen = true;
    if (ends) this.#closeBar();
  }

  #closeBar(): void {
    if (!this.#barOpen) return;
    Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    this.#barOpen = false;
  }
}

const PHASE_NAMES: Record<LoadProgress["phase"], string> = {
  download: "downloading",
  convert: "converting",
  load: "loading",
};

/** `loading 12.3 of 160.0 MB (8%)`, `downloading model.safetensors 1.0 MB`. */
export function describe(progress: LoadProgress): string {
  const { phase, what, doneBytes, totalBytes } = progress;
  const head = what === undefined ? PHASE_NAMES[phase] : `${PHASE_NAMES[phase]} ${what}`;
  if (totalBytes === undefined) return `${head} ${megabytes(doneBytes)} MB`;
  const percent = totalBytes === 0 ? 100 : Math.floor((100 * doneBytes) / totalBytes);
  return `${head} ${megabytes(doneBytes)} of ${megabytes(totalBytes)} MB (${percent}%)`;
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
