/**
 * Time limits of a model load, so that a server that stalls every body (each request timing out
 * and retried) fails the load with a message instead of keeping it waiting forever: one for the
 * whole load, one for each member.
 */
import { envVar } from "../storage/_env.ts";

/** Default of the whole load, from opening the archive to its last member: 30 minutes. */
const LOAD_TIMEOUT_S = 1800;
/** Default of one member, from its first request to its last byte: 5 minutes. */
const MEMBER_TIMEOUT_S = 300;

function seconds(variable: string, fallback: number): number {
  const text = envVar(variable);
  if (text === undefined) return fallback * 1000;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${variable} must be a number of seconds >= 0, got '${text}'`);
  }
  return value * 1000;
}

/**
 * Milliseconds a whole load may take: `given`, else `$RILL_LOAD_TIMEOUT` seconds, else 30
 * minutes; 0 means no limit.
 *
 * @throws {RangeError} for a `RILL_LOAD_TIMEOUT` that is not a number of seconds
 */
export function loadTimeoutMs(given?: number): number {
  return given ?? seconds("RILL_LOAD_TIMEOUT", LOAD_TIMEOUT_S);
}

/**
 * Milliseconds one member may take from its first request to its last byte (in a `.tgz`
 * stream, from the end of the previous member): `given`, else `$RILL_MEMBER_TIMEOUT` seconds,
 * else 5 minutes; 0 means no limit.
 *
 * @throws {RangeError} for a `RILL_MEMBER_TIMEOUT` that is not a number of seconds
 */
export function memberTimeoutMs(given?: number): number {
  return given ?? seconds("RILL_MEMBER_TIMEOUT", MEMBER_TIMEOUT_S);
}

/** How far one member got. */
export interface MemberProgress {
  /** The member's name. */
  readonly name: string;
  /** Bytes of it arrived so far. */
  readonly bytes: number;
  /** Its size, when known (a `.tgz` without an index knows it only once the member begins). */
  readonly size: number | undefined;
}

/** `'a.dat' (10 of 200 bytes), 'b.dat' (0 of 50 bytes)`, at most four of them. */
export function describeProgress(pending: readonly MemberProgress[]): string {
  const shown = pending.slice(0, 4).map((m) =>
    `'${m.name}' (${m.bytes} of ${m.size === undefined ? "?" : m.size} bytes)`
  );
  const more = pending.length - shown.length;
  return shown.join(", ") + (more > 0 ? ` and ${more} more` : "");
}

/** Seconds of `ms` as text (`1.5 s`). */
export function secondsText(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** A running limit on a load; `signal` aborts with the error `expire` built when it passes. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Stops the timer (the load ended). */
  clear(): void;
}

/**
 * Starts a limit of `ms` (none when 0): when it passes, `signal` aborts with `expire()`, which
 * says what was still awaited.
 */
export function startDeadline(ms: number, expire: () => Error): Deadline {
  const controller = new AbortController();
  const timer = ms > 0 ? setTimeout(() => controller.abort(expire()), ms) : undefined;
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}
