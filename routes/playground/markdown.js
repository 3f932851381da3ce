// @ts-check
/**
 * The markdown the playground renders, parsed into plain data: fenced code, headings, lists,
 * quotes and paragraphs, with code spans, bold, italics and http(s) links inside. The page
 * builds elements from it with `textContent` only, so the model's text never becomes HTML.
 * Unfinished constructs (an open code fence mid-stream) render as what they will become.
 *
 * @module
 */

/**
 * @typedef {{ type: "text", text: string }
 *   | { type: "code", text: string }
 *   | { type: "strong", children: Inline[] }
 *   | { type: "em", children: Inline[] }
 *   | { type: "link", href: string, children: Inline[] }
 *   | { type: "break" }} Inline
 */

/**
 * @typedef {{ type: "paragraph", children: Inline[] }
 *   | { type: "heading", level: number, children: Inline[] }
 *   | { type: "code", lang: string, text: string }
 *   | { type: "list", ordered: boolean, start: number, items: Inline[][] }
 *   | { type: "quote", children: Inline[] }} Block
 */

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^ {0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^ {0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;

/**
 * Splits `text` into blocks.
 *
 * @param {string} text
 * @returns {Block[]}
 */
export function parseMarkdown(text) {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  /** @type {Block[]} */
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = /** @type {string} */ (lines[i]);
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = /** @type {string} */ (fence[1]);
      const body = [];
      i++;
      while (i < lines.length && !lines[i]?.trimStart().startsWith(marker)) body.push(lines[i++]);
      i++;
      blocks.push({ type: "code", lang: fence[2] ?? "", text: body.join("\n") });
      continue;
    }
    if (line.trim() === "") {
      i++;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = /** @type {string} */ (heading[1]).length;
      blocks.push({ type: "heading", level, children: parseInline(heading[2] ?? "") });
      i++;
      continue;
    }
    const numbered = NUMBERED.exec(line);
    if (BULLET.test(line) || numbered) {
      const pattern = numbered ? NUMBERED : BULLET;
      /** @type {string[]} */
      const items = [];
      while (i < lines.length) {
        const item = pattern.exec(/** @type {string} */ (lines[i]));
        if (item) items.push(/** @type {string} */ (item[item.length - 1]));
        else if (items.length > 0 && /^\s{2,}\S/.test(lines[i] ?? "")) {
          items[items.length - 1] += `\n${lines[i]?.trim()}`;
        } else break;
        i++;
      }
      blocks.push({
        type: "list",
        ordered: numbered !== null,
        start: numbered ? Number(numbered[1]) : 1,
        items: items.map(parseInline),
      });
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      for (let q; i < lines.length && (q = QUOTE.exec(lines[i] ?? "")); i++) quoted.push(q[1]);
      blocks.push({ type: "quote", children: parseInline(quoted.join("\n")) });
      continue;
    }
    const paragraph = [];
    while (i < lines.length && (lines[i] ?? "").trim() !== "" && !startsBlock(lines[i] ?? "")) {
      paragraph.push(lines[i++]);
    }
    blocks.push({ type: "paragraph", children: parseInline(paragraph.join("\n")) });
  }
  return blocks;
}

/** @param {string} line */
function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || BULLET.test(line) || NUMBERED.test(line) ||
    QUOTE.test(line);
}

/**
 * Splits one block's text into inline spans; a line break becomes a `break`.
 *
 * @param {string} text
 * @returns {Inline[]}
 */
export function parseInline(text) {
  /** @type {Inline[]} */
  const out = [];
  let plain = "";
  const flush = () => {
    if (plain !== "") out.push({ type: "text", text: plain });
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const c = text[i];
    if (c === "\n") {
      flush();
      out.push({ type: "break" });
      i++;
      continue;
    }
    if (c === "`") {
      const ticks = /** @type {string} */ (/^`+/.exec(rest)?.[0]);
      const end = text.indexOf(ticks, i + ticks.length);
      if (end > i) {
        flush();
        out.push({ type: "code", text: text.slice(i + ticks.length, end).trim() });
        i = end + ticks.length;
        continue;
      }
    }
    const strong = /^(\*\*|__)(?=\S)([\s\S]*?\S)\1/.exec(rest);
    if (strong) {
      flush();
      out.push({ type: "strong", children: parseInline(/** @type {string} */ (strong[2])) });
      i += strong[0].length;
      continue;
    }
    const em = /^([*_])(?=[^\s*_])([\s\S]*?[^\s*_])\1(?![*_\w])/.exec(rest);
    if (em && (c === "*" || !/\w/.test(text[i - 1] ?? ""))) {
      flush();
      out.push({ type: "em", children: parseInline(/** @type {string} */ (em[2])) });
      i += em[0].length;
      continue;
    }
    const link = /^\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/.exec(rest);
    if (link) {
      flush();
      out.push({
        type: "link",
        href: /** @type {string} */ (link[2]),
        children: parseInline(/** @type {string} */ (link[1])),
      });
      i += link[0].length;
      continue;
    }
    plain += c;
    i++;
  }
  flush();
  return out;
}
