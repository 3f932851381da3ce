/** Position of a token in a `graph.nnef` text, 1-based. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

export type TypeName = "integer" | "scalar" | "logical" | "string" | "?";

export type TypeSpec =
  | { readonly kind: "type"; readonly name: TypeName }
  | { readonly kind: "tensor"; readonly name: TypeName }
  | { readonly kind: "tuple"; readonly items: readonly TypeSpec[] }
  | { readonly kind: "array"; readonly item: TypeSpec };

export type Literal =
  | {
    readonly kind: "number";
    readonly text: string;
    readonly value: number;
    readonly isScalar: boolean;
  }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "logical"; readonly value: boolean };

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

export interface Argument {
  /** Null for a positional argument. */
  readonly name: string | null;
  readonly value: RValue;
}

export interface Invocation {
  readonly op: string;
  /** The `<type>` after the op name, e.g. `variable<scalar>`. */
  readonly generic: TypeName | null;
  readonly args: readonly Argument[];
  readonly at: Position;
}

export type LValue =
  | { readonly kind: "identifier"; readonly name: string; readonly at: Position }
  | { readonly kind: "array"; readonly items: readonly LValue[]; readonly at: Position }
  | { readonly kind: "tuple"; readonly items: readonly LValue[]; readonly at: Position };

export interface Assignment {
  readonly left: LValue;
  readonly right: RValue;
  readonly at: Position;
}

export interface Parameter {
  readonly name: string;
  readonly type: TypeSpec;
  /** A literal, or an array/tuple of literals. */
  readonly default: RValue | null;
}

export interface Result {
  readonly name: string;
  readonly type: TypeSpec;
}

export interface FragmentDecl {
  readonly name: string;
  /** `<?>` or `<? = scalar>`: null when the fragment is not generic. */
  readonly generic: { readonly default: TypeName | null } | null;
  readonly parameters: readonly Parameter[];
  readonly results: readonly Result[];
  readonly at: Position;
}

export interface FragmentDef {
  readonly decl: FragmentDecl;
  /** Null for a declaration without a body (`fragment f(...) -> (...);`). */
  readonly body: readonly Assignment[] | null;
}

export interface GraphDef {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly body: readonly Assignment[];
  readonly at: Position;
}

/** One `extension <id> <free text>;` line, with tract's free text kept verbatim (trimmed). */
export interface Extension {
  readonly id: string;
  readonly rest: string;
  readonly at: Position;
}

export interface Document {
  readonly version: string;
  readonly extensions: readonly Extension[];
  readonly fragments: readonly FragmentDef[];
  readonly graph: GraphDef;
}
