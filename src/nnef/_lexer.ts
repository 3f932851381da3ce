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

const ONE_CHAR_PUNCT = new Uint8Array(128);
for (const c of "()[]{},;:=<>+-*/^!?") ONE_CHAR_PUNCT[c.charCodeAt(0)] = 1;

/** Length of the punctuation token starting with `c` then `d`: 2, 1, or 0 when none. */
function punctLength(c: number, d: number): number {
  switch (c) {
    case 61: // =
    case 33: // !
    case 60: // <
    case 62: // >
      return d === 61 ? 2 : 1;
    case 38: // &
      return d === 38 ? 2 : 0;
    case 124: // |
      return d === 124 ? 2 : 0;
    case 45: // -
      return d === 62 ? 2 : 1;
    default:
      return c < 128 ? ONE_CHAR_PUNCT[c]! : 0;
  }
}

function token(
  kind: TokenKind,
  text: string,
  escaped: boolean,
  start: number,
  end: number,
  line: number,
  column: number,
): Token {
  return { kind, text, escaped, start, end, line, column };
}

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

/** True for the punctuation token `text`. */
export function isPunct(token: Token, text: string): boolean {
  return token.kind === "punct" && token.text === text;
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
  #head = 0;

  constructor(text: string, file: string) {
    this.#text = text;
    this.#file = file;
    if (text.charCodeAt(0) === 0xfeff) this.#offset = 1;
  }

  get file(): string {
    return this.#file;
  }

  /** The `k`-th token ahead (0 = the next one). */
  peek(k = 0): Token {
    const buffer = this.#buffer;
    while (buffer.length - this.#head <= k) buffer.push(this.#lex());
    return buffer[this.#head + k]!;
  }

  next(): Token {
    const buffer = this.#buffer;
    let token: Token;
    if (this.#head < buffer.length) {
      token = buffer[this.#head++]!;
      if (this.#head === buffer.length) {
        buffer.length = 0;
        this.#head = 0;
      }
    } else {
      token = this.#lex();
    }
    return token;
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
    this.#buffer.splice(
      this.#head,
      1,
      { ...token, text: first, end: token.start + first.length },
      rest,
    );
  }

  /**
   * Consumes the raw text up to (not including) `stop`, then the stop character. `closed`
   * is false when the input ends first (then `text` runs to the end).
   */
  rawUntil(stop: string): { text: string; closed: boolean } {
    if (this.#head < this.#buffer.length) {
      throw new Error("Lexer.rawUntil called with tokens buffered");
    }
    const code = stop.charCodeAt(0);
    const text = this.#text;
    const begin = this.#offset;
    for (let i = begin; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === code) {
        this.#offset = i + 1;
        return { text: text.slice(begin, i), closed: true };
      }
      if (c === 10) {
        this.#line++;
        this.#lineStart = i + 1;
      }
    }
    this.#offset = text.length;
    return { text: text.slice(begin), closed: false };
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
    if (start >= text.length) return token("eof", "", false, start, start, line, column);
    const c = text.charCodeAt(start);
    let kind: TokenKind;
    let value: string;
    let end: number;
    let escaped = false;
    if (isIdentStart(c)) {
      const q = text.charCodeAt(start + 1);
      if (c === 105 && (q === 34 || q === 39)) {
        [value, end] = this.#string(start + 1, { line, column });
        escaped = true;
      } else {
        end = start + 1;
        while (end < text.length && isIdentPart(text.charCodeAt(end))) end++;
        value = text.slice(start, end);
      }
      kind = "identifier";
    } else if (isDigit(c)) {
      end = this.#number(start);
      value = text.slice(start, end);
      kind = "number";
    } else if (c === 34 || c === 39) {
      [value, end] = this.#string(start, { line, column });
      kind = "string";
    } else {
      end = start + punctLength(c, text.charCodeAt(start + 1));
      if (end === start) {
        const shown = String.fromCodePoint(text.codePointAt(start)!);
        throw this.error({ line, column }, `Unexpected character '${shown}'`);
      }
      value = text.slice(start, end);
      kind = "punct";
    }
    this.#offset = end;
    return token(kind, value, escaped, start, end, line, column);
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

/** Binding strength of the binary operators (higher binds tighter); the parser and the formatter share it. */
export const BINARY_PRECEDENCE: ReadonlyMap<string, number> = new Map([
  ["in", 10],
  ["&&", 20],
  ["||", 20],
  ["==", 30],
  ["!=", 30],
  ["<", 30],
  [">", 30],
  ["<=", 30],
  [">=", 30],
  ["+", 40],
  ["-", 40],
  ["*", 50],
  ["/", 50],
  ["^", 60],
]);
