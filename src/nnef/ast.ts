/**
 * The syntax tree of a `graph.nnef` text, as `parseDocument` writes it: the version, the
 * extensions, the fragments and the graph, each node with its position in the text.
 *
 * @module
 */

/** Position of a token in a `graph.nnef` text, 1-based. */
export interface Position {
  /** Line, from 1. */
  readonly line: number;
  /** Column, from 1, in UTF-16 code units. */
  readonly column: number;
}

/** A primitive NNEF type name; `?` is the generic type of a fragment. */
export type TypeName = "integer" | "scalar" | "logical" | "string" | "?";

/** A type as a fragment declares it: a primitive, a tensor of one, a tuple or an array. */
export type TypeSpec =
  | { readonly kind: "type"; readonly name: TypeName }
  | { readonly kind: "tensor"; readonly name: TypeName }
  | { readonly kind: "tuple"; readonly items: readonly TypeSpec[] }
  | { readonly kind: "array"; readonly item: TypeSpec };

/** A literal value; a number keeps its text and whether it was written as a scalar (`1.0`). */
export type Literal =
  | {
    readonly kind: "number";
    readonly text: string;
    readonly value: number;
    readonly isScalar: boolean;
  }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "logical"; readonly value: boolean };

/** An expression (right-hand side), with the position where it begins. */
export type RValue =
  & { readonly at: Position }
  & (
    | { readonly kind: "literal"; readonly literal: Literal }
    | { readonly kind: "identifier"; readonly name: string }
    | { readonly kind: "array"; readonly items: readonly RValue[] }
    | { readonly kind: "tuple"; readonly items: readonly RValue[] }
    | { readonly kind: "invocation"; readonly invocation: Invocation }
    | {
      readonly kind: "binary";
      readonly op: BinaryOp;
      readonly left: RValue;
      readonly right: RValue;
    }
    | { readonly kind: "unary"; readonly op: "+" | "-" | "!"; readonly operand: RValue }
    | {
      readonly kind: "if";
      readonly condition: RValue;
      readonly then: RValue;
      readonly otherwise: RValue;
    }
    | { readonly kind: "subscript"; readonly target: RValue; readonly index: RValue }
    | {
      readonly kind: "range";
      readonly target: RValue;
      readonly begin: RValue | null;
      readonly end: RValue | null;
    }
    | {
      readonly kind: "comprehension";
      readonly loops: readonly { readonly name: string; readonly over: RValue }[];
      readonly yield: RValue;
    }
  );

/** The binary operators of NNEF expressions (`in` for comprehensions). */
export type BinaryOp =
  | "+"
  | "-"
  | "*"
  | "/"
  | "^"
  | "<"
  | ">"
  | "<="
  | ">="
  | "=="
  | "!="
  | "&&"
  | "||"
  | "in";

/** One argument of an invocation. */
export interface Argument {
  /** Null for a positional argument. */
  readonly name: string | null;
  /** The expression passed. */
  readonly value: RValue;
}

/** A call of an operator or fragment: `op<generic>(args)`. */
export interface Invocation {
  /** The operator or fragment name. */
  readonly op: string;
  /** The `<type>` after the op name, e.g. `variable<scalar>`. */
  readonly generic: TypeName | null;
  /** The arguments in the order written. */
  readonly args: readonly Argument[];
  /** Where the op name stands. */
  readonly at: Position;
}

/** The left-hand side of an assignment: a name, or an array or tuple of them to unpack. */
export type LValue =
  | { readonly kind: "identifier"; readonly name: string; readonly at: Position }
  | { readonly kind: "array"; readonly items: readonly LValue[]; readonly at: Position }
  | { readonly kind: "tuple"; readonly items: readonly LValue[]; readonly at: Position };

/** One `left = right;` statement. */
export interface Assignment {
  /** The names assigned. */
  readonly left: LValue;
  /** The expression assigned to them. */
  readonly right: RValue;
  /** Where the statement begins. */
  readonly at: Position;
}

/** One parameter of a fragment declaration. */
export interface Parameter {
  /** The parameter name. */
  readonly name: string;
  /** Its declared type. */
  readonly type: TypeSpec;
  /** A literal, or an array/tuple of literals. */
  readonly default: RValue | null;
}

/** One result of a fragment declaration. */
export interface Result {
  /** The result name. */
  readonly name: string;
  /** Its declared type. */
  readonly type: TypeSpec;
}

/** The signature of a fragment: name, generic type, parameters and results. */
export interface FragmentDecl {
  /** The fragment name. */
  readonly name: string;
  /** `<?>` or `<? = scalar>`: null when the fragment is not generic. */
  readonly generic: { readonly default: TypeName | null } | null;
  /** The parameters in order. */
  readonly parameters: readonly Parameter[];
  /** The results in order. */
  readonly results: readonly Result[];
  /** Where `fragment` stands. */
  readonly at: Position;
}

/** A fragment: its declaration and, when it has one, its body. */
export interface FragmentDef {
  /** The signature. */
  readonly decl: FragmentDecl;
  /** Null for a declaration without a body (`fragment f(...) -> (...);`). */
  readonly body: readonly Assignment[] | null;
}

/** The `graph` block: its name, input and output names, and statements. */
export interface GraphDef {
  /** The graph name. */
  readonly name: string;
  /** The names of the graph inputs, as declared. */
  readonly inputs: readonly string[];
  /** The names of the graph outputs, as declared. */
  readonly outputs: readonly string[];
  /** The statements in order. */
  readonly body: readonly Assignment[];
  /** Where `graph` stands. */
  readonly at: Position;
}

/** One `extension <id> <free text>;` line, with tract's free text kept verbatim (trimmed). */
export interface Extension {
  /** The extension name, e.g. `tract_symbol`. */
  readonly id: string;
  /** The rest of the line. */
  readonly rest: string;
  /** Where `extension` stands. */
  readonly at: Position;
}

/** A parsed `graph.nnef`. */
export interface Document {
  /** The `version` line, e.g. `1.0`. */
  readonly version: string;
  /** The `extension` lines in order. */
  readonly extensions: readonly Extension[];
  /** The fragments declared or defined, in order. */
  readonly fragments: readonly FragmentDef[];
  /** The graph block. */
  readonly graph: GraphDef;
}
