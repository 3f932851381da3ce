/** Parser for `graph.quant`: per-tensor quantization parameters keyed by graph identifier. */
import { describeToken, isPunct, Lexer, type Token } from "./_lexer.ts";

/** One `graph.quant` entry. `linear_quantize` is always signed in tract. */
export type QuantSpec =
  | {
    readonly kind: "zero_point_linear_quantize";
    readonly zeroPoint: number;
    readonly scale: number;
    readonly bits: number;
    readonly signed: boolean;
    /** Null when the entry does not say. */
    readonly symmetric: boolean | null;
  }
  | {
    readonly kind: "linear_quantize";
    readonly min: number;
    readonly max: number;
    readonly bits: number;
  };

type ArgKind = "integer" | "number" | "logical";

const SIGNATURES: Readonly<Record<QuantSpec["kind"], Readonly<Record<string, ArgKind>>>> = {
  zero_point_linear_quantize: {
    zero_point: "integer",
    scale: "number",
    bits: "integer",
    signed: "logical",
    symmetric: "logical",
  },
  linear_quantize: { min: "number", max: "number", bits: "integer" },
};

const OPTIONAL: ReadonlySet<string> = new Set(["symmetric"]);

/**
 * Parses a `graph.quant` file: `"name": zero_point_linear_quantize(zero_point = 0,
 * scale = 0.5, bits = 8, signed = false, symmetric = true);` or `linear_quantize(min, max,
 * bits)` entries, arguments in any order, commas optional, names quoted or `i"…"`.
 *
 * @param text the file's text
 * @param file the name used in error messages
 * @returns the specs by tensor identifier (a later entry for the same name wins)
 * @throws {SyntaxError} `file:line:column: …` on malformed text or missing arguments
 */
export function parseQuant(text: string, file = "graph.quant"): Map<string, QuantSpec> {
  const lex = new Lexer(text, file);
  const specs = new Map<string, QuantSpec>();
  for (;;) {
    const token = lex.peek();
    if (token.kind === "eof") return specs;
    if (token.kind !== "string" && !(token.kind === "identifier" && token.escaped)) {
      throw fail(lex, token, "Expected a quoted tensor name");
    }
    lex.next();
    const name = token.text;
    expect(lex, ":", `after tensor name '${name}'`);
    const opToken = lex.next();
    if (opToken.kind !== "identifier" || !Object.hasOwn(SIGNATURES, opToken.text)) {
      throw fail(
        lex,
        opToken,
        `Expected 'zero_point_linear_quantize' or 'linear_quantize' for '${name}'`,
      );
    }
    const kind = opToken.text as QuantSpec["kind"];
    expect(lex, "(", `after '${kind}' for '${name}'`);
    const args = parseArgs(lex, kind, name);
    expect(lex, ")", `to close '${kind}' for '${name}'`);
    expect(lex, ";", `after the entry for '${name}'`);
    for (const [arg] of Object.entries(SIGNATURES[kind])) {
      if (!args.has(arg) && !OPTIONAL.has(arg)) {
        throw lex.error(
          { line: opToken.line, column: opToken.column },
          `Missing argument '${arg}' in '${kind}' for '${name}'`,
        );
      }
    }
    specs.set(name, buildSpec(kind, args));
  }
}

function buildSpec(kind: QuantSpec["kind"], args: Map<string, number | boolean>): QuantSpec {
  const bits = args.get("bits") as number;
  if (kind === "linear_quantize") {
    return { kind, min: args.get("min") as number, max: args.get("max") as number, bits };
  }
  const symmetric = args.get("symmetric");
  return {
    kind,
    zeroPoint: args.get("zero_point") as number,
    scale: args.get("scale") as number,
    bits,
    signed: args.get("signed") as boolean,
    symmetric: symmetric === undefined ? null : symmetric as boolean,
  };
}

function parseArgs(
  lex: Lexer,
  kind: QuantSpec["kind"],
  name: string,
): Map<string, number | boolean> {
  const signature = SIGNATURES[kind];
  const args = new Map<string, number | boolean>();
  while (!isPunct(lex.peek(), ")")) {
    const argToken = lex.next();
    const argKind = argToken.kind === "identifier" && Object.hasOwn(signature, argToken.text)
      ? signature[argToken.text]
      : undefined;
    if (argKind === undefined) {
      throw fail(
        lex,
        argToken,
        `Expected one of ${Object.keys(signature).join(", ")} in '${kind}' for '${name}'`,
      );
    }
    if (args.has(argToken.text)) {
      throw lex.error(
        { line: argToken.line, column: argToken.column },
        `Duplicate argument '${argToken.text}' in '${kind}' for '${name}'`,
      );
    }
    expect(lex, "=", `after argument '${argToken.text}'`);
    args.set(argToken.text, parseValue(lex, argKind, argToken.text));
    if (isPunct(lex.peek(), ",")) lex.next();
  }
  return args;
}

function parseValue(lex: Lexer, kind: ArgKind, arg: string): number | boolean {
  const token = lex.next();
  if (kind === "logical") {
    if (token.kind === "identifier" && (token.text === "true" || token.text === "false")) {
      return token.text === "true";
    }
    throw fail(lex, token, `Expected true or false for '${arg}'`);
  }
  let text = token.text;
  let numberToken = token;
  if (isPunct(token, "-") || isPunct(token, "+")) {
    numberToken = lex.next();
    text = token.text + numberToken.text;
  }
  const isNumber = numberToken.kind === "number" ||
    (kind === "number" && numberToken.kind === "identifier" && numberToken.text === "inf");
  const value = text.endsWith("inf") ? (text.startsWith("-") ? -Infinity : Infinity) : Number(text);
  if (!isNumber || (kind === "integer" && !Number.isInteger(value)) || Number.isNaN(value)) {
    throw fail(
      lex,
      numberToken,
      `Expected ${kind === "integer" ? "an integer" : "a number"} for '${arg}'`,
    );
  }
  return value;
}

function expect(lex: Lexer, text: string, why: string): void {
  const token = lex.next();
  if (!isPunct(token, text)) throw fail(lex, token, `Expected '${text}' ${why}`);
}

function fail(lex: Lexer, token: Token, expected: string): SyntaxError {
  return lex.error(
    { line: token.line, column: token.column },
    `${expected}, found ${describeToken(token)}`,
  );
}
