/** Tokenizer shared by the `graph.nnef` and `graph.quant` parsers (tract's lexical rules). */
import type { Position } from "./ast.ts";

export type TokenKind = "identifier" | "number" | "string" | "punct" | "eof";

export interface Token {
  readonly kind: TokenKind;
  /** Identifier name (string content for `i"…"`), number text, unescaped string, or punctuation. */
  readonly text: string;
  /** True for an `i"…"` identifier: it is never a keyword. */
  readonly escaped: boolean;
  readonly start: number;
  readonly end: number;
  readonly line: number;
  readonly column: number;
}

const TWO_CHAR_PUNCT = new Set(["==", "!=", "<=", ">=", "&&", "||", "->"]);
const ONE_CHAR_PUNCT = new Set("()[]{},;:=<>+-*/^!?");

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c);
}

/** Describes a token for an error message: `'}'`, `identifier 'x'`, `end of input`. */
export function describeToken(token: Token): string {
  switch (token.kind) {
    case "eof":
      return "end of input";
    case "punct":
      return `'${token.text}'`;
    case "identifier":
      return `identifier '${clip(token.text)}'`;
    case "number":
      return `number '${token.text}'`;
    case "string":
      return `string '${clip(token.text)}'`;
  }
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * An on-demand lexer with a small lookahead buffer. `rawUntil` reads free text (tract's
 * `extension` lines), so callers must not have peeked past the last consumed token.
 */
export class Lexer {
  readonly #text: string;
  readonly #file: string;
  #offset = 0;
  #line = 1;
  #lineStart = 0;
  readonly #buffer: Token[] = [];
  #last: Token | null = null;

  constructor(text: string, file: string) {
    this.#text = text;
    this.#file = file;
  }

  get file(): string {
    return this.#file;
  }

  /** The `k`-th token ahead (0 = the next one). */
  peek(k = 0): Token {
    while (this.#buffer.length <= k) this.#buffer.push(this.#lex());
    return this.#buffer[k]!;
  }

  next(): Token {
    const token = this.#buffer.length > 0 ? this.#buffer.shift()! : this.#lex();
    this.#last = token;
    return token;
  }

  /** The most recently consumed token, or null at the start. */
  get last(): Token | null {
    return this.#last;
  }

  /** Replaces the next token, e.g. to split `>=` into `>` and `=`. */
  splitNext(first: string): void {
    const token = this.peek(0);
    const rest: Token = {
      ...token,
      text: token.text.slice(first.length),
      start: token.start + first.length,
      column: token.column + first.length,
    };
    this.#buffer.splice(0, 1, { ...token, text: first, end: token.start + first.length }, rest);
  }

  /**
   * Consumes the raw text up to (not including) `stop`, then the stop character.
   * Returns null when the input ends first.
   */
  rawUntil(stop: string): string | null {
    if (this.#buffer.length > 0) throw new Error("Lexer.rawUntil called with tokens buffered");
    const code = stop.charCodeAt(0);
    const text = this.#text;
    const begin = this.#offset;
    for (let i = begin; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === code) {
        this.#offset = i + 1;
        return text.slice(begin, i);
      }
      if (c === 10) {
        this.#line++;
        this.#lineStart = i + 1;
      }
    }
    this.#offset = text.length;
    return null;
  }

  /** Position of the current scan offset (after the last consumed token or raw text). */
  here(): Position {
    return { line: this.#line, column: this.#offset - this.#lineStart + 1 };
  }

  /** A SyntaxError located at `at`, prefixed with `file:line:column`. */
  error(at: Position, message: string): SyntaxError {
    return new SyntaxError(`${this.#file}:${at.line}:${at.column}: ${message}`);
  }

  #skipSpaceAndComments(): void {
    const text = this.#text;
    let i = this.#offset;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 10) {
        this.#line++;
        this.#lineStart = i + 1;
        i++;
      } else if (c === 32 || c === 9 || c === 13) {
        i++;
      } else if (c === 35) {
        while (i < text.length) {
          const d = text.charCodeAt(i);
          if (d === 10 || d === 13) break;
          i++;
        }
      } else {
        break;
      }
    }
    this.#offset = i;
  }

  #lex(): Token {
    this.#skipSpaceAndComments();
    const text = this.#text;
    const start = this.#offset;
    const line = this.#line;
    const column = start - this.#lineStart + 1;
    const make = (kind: TokenKind, value: string, end: number, escaped = false): Token => {
      this.#offset = end;
      return { kind, text: value, escaped, start, end, line, column };
    };
    if (start >= text.length) return make("eof", "", start);
    const c = text.charCodeAt(start);
    if (isIdentStart(c)) {
      const q = text.charCodeAt(start + 1);
      if (c === 105 && (q === 34 || q === 39)) {
        const [value, end] = this.#string(start + 1, { line, column });
        return make("identifier", value, end, true);
      }
      let i = start + 1;
      while (i < text.length && isIdentPart(text.charCodeAt(i))) i++;
      return make("identifier", text.slice(start, i), i);
    }
    if (isDigit(c)) {
      const end = this.#number(start);
      return make("number", text.slice(start, end), end);
    }
    if (c === 34 || c === 39) {
      const [value, end] = this.#string(start, { line, column });
      return make("string", value, end);
    }
    const two = text.slice(start, start + 2);
    if (TWO_CHAR_PUNCT.has(two)) return make("punct", two, start + 2);
    const one = text[start]!;
    if (ONE_CHAR_PUNCT.has(one)) return make("punct", one, start + 1);
    const shown = String.fromCodePoint(text.codePointAt(start)!);
    throw this.error({ line, column }, `Unexpected character '${shown}'`);
  }

  /** Scans `DIGITS ("." DIGITS*)? ([eE] [+-]? DIGITS)?` and returns the end offset. */
  #number(start: number): number {
    const text = this.#text;
    let i = start;
    while (i < text.length && isDigit(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) === 46) {
      i++;
      while (i < text.length && isDigit(text.charCodeAt(i))) i++;
    }
    const e = text.charCodeAt(i);
    if (e === 101 || e === 69) {
      let j = i + 1;
      const sign = text.charCodeAt(j);
      if (sign === 43 || sign === 45) j++;
      if (isDigit(text.charCodeAt(j))) {
        while (j < text.length && isDigit(text.charCodeAt(j))) j++;
        i = j;
      }
    }
    this.#offset = i;
    return i;
  }

  /** Scans a quoted string at `start`; a backslash takes the next character literally. */
  #string(start: number, at: Position): [string, number] {
    const text = this.#text;
    const quote = text.charCodeAt(start);
    let value = "";
    let chunk = start + 1;
    let i = start + 1;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === quote) {
        value += text.slice(chunk, i);
        return [value, i + 1];
      }
      if (c === 92) {
        value += text.slice(chunk, i);
        if (i + 1 >= text.length) break;
        const next = text.codePointAt(i + 1)!;
        const width = next > 0xffff ? 2 : 1;
        if (next === 10) this.#newlineAt(i + 1);
        value += text.slice(i + 1, i + 1 + width);
        i += 1 + width;
        chunk = i;
        continue;
      }
      if (c === 10) this.#newlineAt(i);
      i++;
    }
    throw this.error(at, "Unterminated string literal, found end of input");
  }

  #newlineAt(i: number): void {
    this.#line++;
    this.#lineStart = i + 1;
  }
}
