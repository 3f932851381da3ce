/** Prints rvalues back as NNEF text, e.g. shape items `S + P` or `[1, 4, P, 8]`. */
import type { Literal, RValue, TypeName } from "./ast.ts";
import { BINARY_PRECEDENCE } from "./_lexer.ts";

const UNARY_PRECEDENCE = 70;

function formatLiteral(literal: Literal): string {
  switch (literal.kind) {
    case "number":
      return literal.text;
    case "logical":
      return String(literal.value);
    case "string":
      return `'${literal.value.replace(/[\\'"]/g, "\\$&")}'`;
  }
}

function isPlainIdentifier(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

function formatIdentifier(name: string): string {
  return isPlainIdentifier(name) ? name : `i"${name.replace(/[\\'"]/g, "\\$&")}"`;
}

function precedenceOf(value: RValue): number {
  if (value.kind === "binary") return BINARY_PRECEDENCE.get(value.op)!;
  if (value.kind === "if") return 0;
  if (value.kind === "unary") return UNARY_PRECEDENCE;
  return 100;
}

function wrap(value: RValue, minimum: number): string {
  const text = formatRValue(value);
  return precedenceOf(value) < minimum ? `(${text})` : text;
}

/**
 * Formats an rvalue as NNEF text that parses back to the same tree: binary operators with
 * spaces and only the parentheses precedence needs, `i"…"` for non-plain identifiers.
 */
export function formatRValue(value: RValue): string {
  switch (value.kind) {
    case "literal":
      return formatLiteral(value.literal);
    case "identifier":
      return formatIdentifier(value.name);
    case "array":
      return `[${value.items.map(formatRValue).join(", ")}]`;
    case "tuple":
      return `(${value.items.map(formatRValue).join(", ")})`;
    case "invocation": {
      const { op, generic, args } = value.invocation;
      const shown = args.map((a) =>
        a.name === null
          ? formatRValue(a.value)
          : `${formatIdentifier(a.name)} = ${formatRValue(a.value)}`
      );
      const type = generic === null ? "" : `<${generic satisfies TypeName}>`;
      return `${formatIdentifier(op)}${type}(${shown.join(", ")})`;
    }
    case "binary": {
      const precedence = BINARY_PRECEDENCE.get(value.op)!;
      return `${wrap(value.left, precedence)} ${value.op} ${wrap(value.right, precedence + 1)}`;
    }
    case "unary": {
      const operand = value.operand;
      const isNumber = operand.kind === "literal" && operand.literal.kind === "number";
      return `${value.op}${isNumber ? " " : ""}${wrap(operand, UNARY_PRECEDENCE)}`;
    }
    case "if":
      return `${wrap(value.then, 1)} if ${wrap(value.condition, 1)} else ${
        formatRValue(value.otherwise)
      }`;
    case "subscript":
      return `${wrap(value.target, 100)}[${formatRValue(value.index)}]`;
    case "range": {
      const begin = value.begin === null ? "" : formatRValue(value.begin);
      const end = value.end === null ? "" : formatRValue(value.end);
      return `${wrap(value.target, 100)}[${begin}:${end}]`;
    }
    case "comprehension": {
      const loops = value.loops.map((l) =>
        `${formatIdentifier(l.name)} in ${formatRValue(l.over)}`
      );
      return `[for ${loops.join(", ")} yield ${formatRValue(value.yield)}]`;
    }
  }
}
