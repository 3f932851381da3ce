/** The NNEF declaration of an op, parsed from its `signature` text once. */
import type { Parameter } from "../nnef/ast.ts";
import { parseDocument } from "../nnef/parse.ts";
import { type Op, opName } from "./op.ts";

/** An op's declaration: its parameters (with defaults), result count and generic default. */
export interface OpSignature {
  readonly name: string;
  readonly parameters: readonly Parameter[];
  readonly resultCount: number;
  readonly genericDefault: string | null;
}

const SIGNATURES = new Map<Op, OpSignature>();

/** The parsed NNEF declaration of an op (cached). */
export function signatureOf(op: Op): OpSignature {
  let sig = SIGNATURES.get(op);
  if (sig) return sig;
  const text = `version 1.0;\n${op.signature};\ngraph g(x) -> (x) { x = external(shape = [1]); }`;
  const doc = parseDocument(text, `signature of ${opName(op)}`);
  const decl = doc.fragments[0]!.decl;
  sig = {
    name: decl.name,
    parameters: decl.parameters,
    resultCount: decl.results.length,
    genericDefault: decl.generic?.default ?? null,
  };
  SIGNATURES.set(op, sig);
  return sig;
}
