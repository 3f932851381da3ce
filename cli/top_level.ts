/**
 * The process's last line of defence: every error that reaches the top of a command, and
 * every rejection or exception nothing handled, becomes one line on stderr and an exit code,
 * never Deno's `error: Uncaught` with a stack.
 */
import { redactText } from "../src/storage/redact.ts";

/**
 * One line saying what went wrong: the message, and its causes when they add to it, with any
 * credentials they quote redacted (a fetch error's cause quotes its URL, query included).
 */
export function errorMessage(error: unknown): string {
  let text = error instanceof Error ? error.message || error.name : String(error);
  let cause = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; cause !== undefined && depth < 4; depth++) {
    const more = cause instanceof Error ? cause.message : String(cause);
    if (more !== "" && !text.includes(more)) text += `: ${more}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return redactText(text);
}

/** How `catchStrayErrors` treats an error nothing handled. */
export interface StrayErrorOptions {
  /**
   * Log it and keep running (a server, whose other requests must not pay for one failure),
   * instead of exiting with code 1 (a one-shot command).
   */
  readonly keepRunning: boolean;
  /** Where the line goes (default: stderr). */
  readonly log?: (line: string) => void;
}

/**
 * Turns unhandled promise rejections and uncaught exceptions into one line prefixed with
 * `prefix` (`rill serve`): a server logs it and keeps answering, a command exits with code 1.
 */
export function catchStrayErrors(prefix: string, options: StrayErrorOptions): void {
  const log = options.log ?? ((line: string) => console.error(line));
  const report = (error: unknown): void => {
    if (options.keepRunning) {
      log(`${prefix}: internal error (still running): ${errorMessage(error)}`);
      return;
    }
    log(`${prefix}: ${errorMessage(error)}`);
    Deno.exit(1);
  };
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report(event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    report(event.error ?? event.message);
  });
}
