/** Recursive-descent parser for `graph.nnef`, accepting the language tract's loader accepts. */
import type {
  Argument,
  Assignment,
  BinaryOp,
  Document,
  Extension,
  FragmentDecl,
  FragmentDef,
  GraphDef,
  Invocation,
  Literal,
  LValue,
  Parameter,
  Position,
  Result,
  RValue,
  TypeName,
  TypeSpec,
} from "./ast.ts";
import { BINARY_PRECEDENCE, describeToken, isPunct, Lexer, type Token } from "./_lexer.ts";

const MAX_DEPTH = 500;

const TYPE_NAMES: ReadonlySet<string> = new Set(["integer", "scalar", "logical", "string"]);

/**
 * Parses the text of a `graph.nnef` document (tract flavour: `extension` lines with free
 * text, `i"…"` identifiers, `-inf` literals, backslash escapes, re-assigned identifiers).
 *
 * @param text the document text
 * @param file the name used in error messages
 * @returns the document's AST
 * @throws {SyntaxError} `file:line:column: Expected …, found …` on malformed text
 * @example
 * ```ts
 * import { parseDocument } from "./parse.ts";
 * const doc = parseDocument("version 1.0;\ngraph g(x) -> (y) { x = external(shape = [1]); y = x; }");
 * console.assert(doc.graph.name === "g");
 * ```
 */
export function parseDocument(text: string, file = "graph.nnef"): Document {
  return new Parser(text, file).document();
}

/** Typing rule of tract's `deser.rs`: scalar when the text has `.`, lower-case `e`, or is inf. */
export function numberLiteral(text: string): Literal & { readonly kind: "number" } {
  const negative = text.startsWith("-");
  const body = negative ? text.slice(1) : text;
  const isInf = body === "inf";
  const value = isInf ? (negative ? -Infinity : Infinity) : Number(text);
  const isScalar = isInf || text.includes(".") || text.includes("e");
  return { kind: "number", text, value, isScalar };
}

function positionOf(token: Token): Position {
  return { line: token.line, column: token.column };
}

function isKeyword(token: Token, word: string): boolean {
  return token.kind === "identifier" && !token.escaped && token.text === word;
}

function isTypeName(token: Token): boolean {
  return (token.kind === "identifier" && !token.escaped && TYPE_NAMES.has(token.text)) ||
    isPunct(token, "?");
}

class Parser {
  readonly #lex: Lexer;
  #depth = 0;

  constructor(text: string, file: string) {
    this.#lex = new Lexer(text, file);
  }

  document(): Document {
    const version = this.#version();
    const extensions: Extension[] = [];
    while (isKeyword(this.#lex.peek(), "extension")) extensions.push(this.#extension());
    const fragments: FragmentDef[] = [];
    while (isKeyword(this.#lex.peek(), "fragment")) fragments.push(this.#fragment());
    const next = this.#lex.peek();
    if (!isKeyword(next, "graph")) {
      throw this.#fail(next, "Expected 'fragment' or 'graph'");
    }
    const graph = this.#graph();
    const end = this.#lex.peek();
    if (end.kind !== "eof") {
      throw this.#fail(end, `Expected end of input after graph '${graph.name}'`);
    }
    return { version, extensions, fragments, graph };
  }

  #fail(token: Token, expected: string): SyntaxError {
    return this.#lex.error(positionOf(token), `${expected}, found ${describeToken(token)}`);
  }

  #expect(text: string, why: string): Token {
    const token = this.#lex.peek();
    if (!isPunct(token, text)) throw this.#fail(token, `Expected '${text}' ${why}`);
    return this.#lex.next();
  }

  #expectKeyword(word: string, why: string): Token {
    const token = this.#lex.peek();
    if (!isKeyword(token, word)) throw this.#fail(token, `Expected '${word}' ${why}`);
    return this.#lex.next();
  }

  #identifier(what: string): string {
    const token = this.#lex.peek();
    if (token.kind !== "identifier") throw this.#fail(token, `Expected ${what}`);
    return this.#lex.next().text;
  }

  #version(): string {
    this.#expectKeyword("version", "at the start of the document");
    const token = this.#lex.peek();
    if (token.kind !== "number") {
      throw this.#fail(token, "Expected a version number after 'version'");
    }
    this.#lex.next();
    this.#expect(";", "after the version number");
    return token.text;
  }

  #extension(): Extension {
    const at = positionOf(this.#lex.next());
    const idToken = this.#lex.peek();
    const id = this.#identifier("an extension name after 'extension'");
    const { text: rest, closed } = this.#lex.rawUntil(";");
    const expected = `Expected ';' to end extension '${id}'`;
    const runaway = /\n([ \t\r]*)(extension|fragment|graph)\b/.exec(rest);
    if (runaway !== null) {
      const newlines = rest.slice(0, runaway.index + 1).split("\n").length - 1;
      const line = idToken.line + newlines;
      const column = runaway[1]!.length + 1;
      throw this.#lex.error({ line, column }, `${expected}, found identifier '${runaway[2]}'`);
    }
    if (!closed) {
      throw this.#lex.error(this.#lex.here(), `${expected}, found end of input`);
    }
    return { id, rest: rest.trim(), at };
  }

  #fragment(): FragmentDef {
    const at = positionOf(this.#lex.next());
    const name = this.#identifier("a fragment name after 'fragment'");
    const where = `fragment '${name}'`;
    let generic: FragmentDecl["generic"] = null;
    if (isPunct(this.#lex.peek(), "<")) {
      this.#lex.next();
      this.#expect("?", `in the generic declaration of ${where}`);
      let fallback: TypeName | null = null;
      if (isPunct(this.#lex.peek(), "=")) {
        this.#lex.next();
        fallback = this.#typeName(`as the generic default of ${where}`);
      }
      this.#closeAngle(`to close the generic declaration of ${where}`);
      generic = { default: fallback };
    }
    this.#expect("(", `to open the parameters of ${where}`);
    const parameters: Parameter[] = [];
    if (!isPunct(this.#lex.peek(), ")")) {
      do parameters.push(this.#parameter(where)); while (this.#comma());
    }
    this.#expect(")", `to close the parameters of ${where}`);
    this.#expect("->", `after the parameters of ${where}`);
    this.#expect("(", `to open the results of ${where}`);
    const results: Result[] = [];
    if (!isPunct(this.#lex.peek(), ")")) {
      do results.push(this.#result(where)); while (this.#comma());
    }
    this.#expect(")", `to close the results of ${where}`);
    const decl: FragmentDecl = { name, generic, parameters, results, at };
    const next = this.#lex.peek();
    if (isPunct(next, ";")) {
      this.#lex.next();
      return { decl, body: null };
    }
    if (!isPunct(next, "{")) throw this.#fail(next, `Expected '{' or ';' after ${where}`);
    return { decl, body: this.#body(where) };
  }

  #comma(): boolean {
    if (!isPunct(this.#lex.peek(), ",")) return false;
    this.#lex.next();
    return true;
  }

  #parameter(where: string): Parameter {
    const name = this.#identifier(`a parameter name in ${where}`);
    this.#expect(":", `after parameter '${name}' of ${where}`);
    const type = this.#typeSpec(`for parameter '${name}' of ${where}`);
    let fallback: RValue | null = null;
    if (isPunct(this.#lex.peek(), "=")) {
      this.#lex.next();
      fallback = this.#literalExpr(`as the default of parameter '${name}' of ${where}`);
    }
    return { name, type, default: fallback };
  }

  #result(where: string): Result {
    const name = this.#identifier(`a result name in ${where}`);
    this.#expect(":", `after result '${name}' of ${where}`);
    return { name, type: this.#typeSpec(`for result '${name}' of ${where}`) };
  }

  #typeName(why: string): TypeName {
    const token = this.#lex.peek();
    if (!isTypeName(token)) {
      throw this.#fail(
        token,
        `Expected a type name (integer, scalar, logical, string or ?) ${why}`,
      );
    }
    this.#lex.next();
    return token.text as TypeName;
  }

  /** Accepts `>`, splitting a `>=` token as tract's character-level parser would. */
  #closeAngle(why: string): void {
    const token = this.#lex.peek();
    if (isPunct(token, ">=")) {
      this.#lex.splitNext(">");
    } else if (!isPunct(token, ">")) {
      throw this.#fail(token, `Expected '>' ${why}`);
    }
    this.#lex.next();
  }

  #typeSpec(why: string): TypeSpec {
    let type = this.#nonArrayType(why);
    while (isPunct(this.#lex.peek(), "[") && isPunct(this.#lex.peek(1), "]")) {
      this.#lex.next();
      this.#lex.next();
      type = { kind: "array", item: type };
    }
    return type;
  }

  #nonArrayType(why: string): TypeSpec {
    return this.#nested(() => this.#nonArrayTypeInner(why));
  }

  #nonArrayTypeInner(why: string): TypeSpec {
    const token = this.#lex.peek();
    if (isPunct(token, "(")) {
      this.#lex.next();
      const items: TypeSpec[] = [];
      if (!isPunct(this.#lex.peek(), ")")) {
        do items.push(this.#typeSpec(why)); while (this.#comma());
      }
      this.#expect(")", `to close a tuple type ${why}`);
      return { kind: "tuple", items };
    }
    if (isKeyword(token, "tensor")) {
      this.#lex.next();
      this.#expect("<", `after 'tensor' ${why}`);
      const name = this.#typeName(`inside 'tensor<>' ${why}`);
      this.#closeAngle(`to close 'tensor<${name}' ${why}`);
      return { kind: "tensor", name };
    }
    if (!isTypeName(token)) {
      throw this.#fail(token, `Expected a type ${why}`);
    }
    return { kind: "type", name: this.#typeName(why) };
  }

  #literalExpr(why: string): RValue {
    const token = this.#lex.peek();
    for (const [open, close, kind] of [["[", "]", "array"], ["(", ")", "tuple"]] as const) {
      if (!isPunct(token, open)) continue;
      this.#lex.next();
      const items: RValue[] = [];
      if (!isPunct(this.#lex.peek(), close)) {
        do items.push(this.#literal(why)); while (this.#comma());
      }
      this.#expect(close, `to close the literal ${kind} ${why}`);
      return { kind, items, at: positionOf(token) };
    }
    return this.#literal(why);
  }

  #literal(why: string): RValue {
    const token = this.#lex.peek();
    const value = this.#tryLiteral();
    if (value === null) throw this.#fail(token, `Expected a literal ${why}`);
    return value;
  }

  /** A numeric, string or logical literal at the next token, or null. */
  #tryLiteral(): RValue | null {
    const token = this.#lex.peek();
    const at = positionOf(token);
    if (token.kind === "number") {
      this.#lex.next();
      return { kind: "literal", literal: numberLiteral(token.text), at };
    }
    if (token.kind === "string") {
      this.#lex.next();
      return { kind: "literal", literal: { kind: "string", value: token.text }, at };
    }
    if (isKeyword(token, "true") || isKeyword(token, "false")) {
      this.#lex.next();
      return { kind: "literal", literal: { kind: "logical", value: token.text === "true" }, at };
    }
    if (isKeyword(token, "inf")) {
      this.#lex.next();
      return { kind: "literal", literal: numberLiteral("inf"), at };
    }
    if (isPunct(token, "-")) {
      const next = this.#lex.peek(1);
      const adjacent = next.start === token.end;
      if (adjacent && (next.kind === "number" || isKeyword(next, "inf"))) {
        this.#lex.next();
        this.#lex.next();
        return { kind: "literal", literal: numberLiteral(`-${next.text}`), at };
      }
    }
    return null;
  }

  #graph(): GraphDef {
    const at = positionOf(this.#lex.next());
    const name = this.#identifier("a graph name after 'graph'");
    const where = `graph '${name}'`;
    const inputs = this.#identifierList(`the inputs of ${where}`);
    this.#expect("->", `after the inputs of ${where}`);
    const outputs = this.#identifierList(`the outputs of ${where}`);
    const next = this.#lex.peek();
    if (!isPunct(next, "{")) throw this.#fail(next, `Expected '{' to open the body of ${where}`);
    return { name, inputs, outputs, body: this.#body(where), at };
  }

  #identifierList(what: string): string[] {
    this.#expect("(", `to open ${what}`);
    const names: string[] = [];
    if (!isPunct(this.#lex.peek(), ")")) {
      do names.push(this.#identifier(`an identifier in ${what}`)); while (this.#comma());
    }
    this.#expect(")", `to close ${what}`);
    return names;
  }

  #body(where: string): Assignment[] {
    this.#lex.next();
    const body: Assignment[] = [];
    for (;;) {
      const token = this.#lex.peek();
      if (isPunct(token, "}")) break;
      const startsDefinition = (isKeyword(token, "graph") || isKeyword(token, "fragment")) &&
        this.#lex.peek(1).kind === "identifier";
      if (token.kind === "eof" || startsDefinition) {
        throw this.#fail(token, `Expected '}' to close ${where}`);
      }
      body.push(this.#assignment(where));
    }
    this.#lex.next();
    return body;
  }

  #assignment(where: string): Assignment {
    const start = this.#lex.peek();
    const left = this.#lvalue(where);
    const target = left.kind === "identifier" ? `'${left.name}'` : "the left-hand side";
    this.#expect("=", `after ${target} in ${where}`);
    const right = this.#rvalue();
    this.#expect(";", `to end the assignment to ${target} in ${where}`);
    return { left, right, at: positionOf(start) };
  }

  #lvalue(where: string): LValue {
    const first = this.#lvalueItem(where);
    if (!isPunct(this.#lex.peek(), ",")) return first;
    const items = [first];
    while (this.#comma()) items.push(this.#lvalueItem(where));
    return { kind: "tuple", items, at: first.at };
  }

  #lvalueItem(where: string): LValue {
    return this.#nested(() => this.#lvalueItemInner(where));
  }

  #lvalueItemInner(where: string): LValue {
    const token = this.#lex.peek();
    const at = positionOf(token);
    for (const [open, close, kind] of [["[", "]", "array"], ["(", ")", "tuple"]] as const) {
      if (!isPunct(token, open)) continue;
      this.#lex.next();
      const items: LValue[] = [];
      if (!isPunct(this.#lex.peek(), close)) {
        do items.push(this.#lvalueItem(where)); while (this.#comma());
      }
      this.#expect(close, `to close the ${kind} left-hand side in ${where}`);
      return { kind, items, at };
    }
    if (token.kind !== "identifier") {
      throw this.#fail(token, `Expected an assignment in ${where}`);
    }
    this.#lex.next();
    return { kind: "identifier", name: token.text, at };
  }

  #rvalue(): RValue {
    return this.#nested(() => {
      const value = this.#binary(0);
      if (!isKeyword(this.#lex.peek(), "if")) return value;
      this.#lex.next();
      const condition = this.#binary(0);
      this.#expectKeyword("else", "after the condition of an if-else expression");
      const otherwise = this.#rvalue();
      return { kind: "if", condition, then: value, otherwise, at: value.at };
    });
  }

  /** Bounds the recursion so that absurdly nested input fails with a SyntaxError. */
  #nested<T>(parse: () => T): T {
    if (++this.#depth > MAX_DEPTH) {
      throw this.#fail(this.#lex.peek(), `Expected at most ${MAX_DEPTH} levels of nesting`);
    }
    const result = parse();
    this.#depth--;
    return result;
  }

  #binaryOp(token: Token): number {
    if (token.kind === "punct" || isKeyword(token, "in")) {
      return BINARY_PRECEDENCE.get(token.text) ?? -1;
    }
    return -1;
  }

  #binary(minPrecedence: number): RValue {
    let left = this.#unary();
    for (;;) {
      const token = this.#lex.peek();
      const precedence = this.#binaryOp(token);
      if (precedence < minPrecedence || precedence < 0) return left;
      this.#lex.next();
      const right = this.#binary(precedence + 1);
      left = { kind: "binary", op: token.text as BinaryOp, left, right, at: left.at };
    }
  }

  #unary(): RValue {
    const token = this.#lex.peek();
    if (token.kind === "identifier" && this.#startsInvocation()) return this.#postfix(this.#atom());
    const literal = this.#tryLiteral();
    if (literal !== null) return this.#postfix(literal);
    if (isPunct(token, "-") || isPunct(token, "+") || isPunct(token, "!")) {
      this.#lex.next();
      const operand = this.#nested(() => this.#unary());
      return { kind: "unary", op: token.text as "+" | "-" | "!", operand, at: positionOf(token) };
    }
    return this.#postfix(this.#atom());
  }

  #postfix(target: RValue): RValue {
    let value = target;
    while (isPunct(this.#lex.peek(), "[")) {
      this.#lex.next();
      let begin: RValue | null = null;
      if (!isPunct(this.#lex.peek(), ":")) {
        begin = this.#rvalue();
        if (!isPunct(this.#lex.peek(), ":")) {
          this.#expect("]", "to close a subscript");
          value = { kind: "subscript", target: value, index: begin, at: value.at };
          continue;
        }
      }
      this.#lex.next();
      const end = isPunct(this.#lex.peek(), "]") ? null : this.#rvalue();
      this.#expect("]", "to close a range subscript");
      value = { kind: "range", target: value, begin, end, at: value.at };
    }
    return value;
  }

  #atom(): RValue {
    const token = this.#lex.peek();
    const at = positionOf(token);
    if (token.kind === "identifier") {
      if (this.#startsInvocation()) {
        const invocation = this.#invocation();
        return { kind: "invocation", invocation, at };
      }
      this.#lex.next();
      return { kind: "identifier", name: token.text, at };
    }
    if (isPunct(token, "(")) {
      this.#lex.next();
      const items: RValue[] = [];
      if (!isPunct(this.#lex.peek(), ")")) {
        do items.push(this.#rvalue()); while (this.#comma());
      }
      this.#expect(")", "to close a parenthesised expression or tuple");
      if (items.length === 1) return items[0]!;
      return { kind: "tuple", items, at };
    }
    if (isPunct(token, "[")) {
      if (
        isKeyword(this.#lex.peek(1), "for") && this.#lex.peek(2).kind === "identifier" &&
        isKeyword(this.#lex.peek(3), "in")
      ) {
        return this.#comprehension();
      }
      this.#lex.next();
      const items: RValue[] = [];
      if (!isPunct(this.#lex.peek(), "]")) {
        do items.push(this.#rvalue()); while (this.#comma());
      }
      this.#expect("]", "to close an array");
      return { kind: "array", items, at };
    }
    throw this.#fail(token, "Expected an expression");
  }

  #startsInvocation(): boolean {
    const next = this.#lex.peek(1);
    if (isPunct(next, "(")) return true;
    return isPunct(next, "<") && isTypeName(this.#lex.peek(2)) &&
      isPunct(this.#lex.peek(3), ">") && isPunct(this.#lex.peek(4), "(");
  }

  #comprehension(): RValue {
    const at = positionOf(this.#lex.next());
    this.#lex.next();
    const loops: { name: string; over: RValue }[] = [];
    do {
      const name = this.#identifier("a loop variable in a comprehension");
      this.#expectKeyword("in", `after loop variable '${name}'`);
      loops.push({ name, over: this.#rvalue() });
    } while (this.#comma());
    this.#expectKeyword("yield", "after the loops of a comprehension");
    const value = this.#rvalue();
    this.#expect("]", "to close a comprehension");
    return { kind: "comprehension", loops, yield: value, at };
  }

  #invocation(): Invocation {
    const token = this.#lex.next();
    const at = positionOf(token);
    const op = token.text;
    let generic: TypeName | null = null;
    if (isPunct(this.#lex.peek(), "<")) {
      this.#lex.next();
      generic = this.#typeName(`as the generic type of '${op}'`);
      this.#lex.next();
    }
    this.#lex.next();
    const args: Argument[] = [];
    if (!isPunct(this.#lex.peek(), ")")) {
      do args.push(this.#argument()); while (this.#comma());
    }
    const close = this.#lex.peek();
    if (!isPunct(close, ")")) {
      throw this.#fail(close, `Expected ',' or ')' in the arguments of '${op}'`);
    }
    this.#lex.next();
    return { op, generic, args, at };
  }

  #argument(): Argument {
    const token = this.#lex.peek();
    if (token.kind === "identifier" && isPunct(this.#lex.peek(1), "=")) {
      this.#lex.next();
      this.#lex.next();
      return { name: token.text, value: this.#rvalue() };
    }
    return { name: null, value: this.#rvalue() };
  }
}
