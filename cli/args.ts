/** Parsed command-line flags: `--name value`, `--flag`, and positional arguments. */
export interface CliArgs {
  readonly positional: string[];
  readonly flags: Map<string, string | true>;
}

/** The flags a command accepts. */
export interface CliSpec {
  /** Flags that never take a value (`--json`). */
  readonly booleans: readonly string[];
  /** Flags that take one (`--model x` or `--model=x`). */
  readonly values: readonly string[];
}

/**
 * Parses `--name value`, `--name=value` and bare `--flag` forms against `spec`; a lone `--`
 * ends the flags.
 *
 * @throws {TypeError} for a flag the spec does not list (the message lists the valid ones, and
 * the closest when it looks like a typo), a value flag without its value, or a value given to a
 * boolean flag
 */
export function parseCliArgs(args: readonly string[], spec: CliSpec): CliArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (spec.booleans.includes(name)) {
      if (eq >= 0) throw new TypeError(`Option '--${name}' takes no value, got '${arg}'`);
      flags.set(name, true);
    } else if (spec.values.includes(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || (eq < 0 && value.startsWith("--"))) {
        throw new TypeError(`Option '--${name}' needs a value`);
      }
      flags.set(name, value);
    } else {
      throw new TypeError(unknownOption(name, spec));
    }
  }
  return { positional, flags };
}

function unknownOption(name: string, spec: CliSpec): string {
  const known = [...spec.values, ...spec.booleans].sort();
  const closest = known
    .map((k) => ({ k, d: editDistance(name, k) }))
    .filter(({ d }) => d <= 2)
    .sort((a, b) => a.d - b.d)[0];
  const hint = closest === undefined ? "" : ` (did you mean '--${closest.k}'?)`;
  return `Unknown option '--${name}'${hint}; valid options: ${
    known.map((k) => `--${k}`).join(", ")
  }`;
}

/** Levenshtein distance between two short strings. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + cost));
    }
    row = next;
  }
  return row[b.length]!;
}
