import assert from "node:assert/strict";
import { parseInline, parseMarkdown } from "./markdown.js";

Deno.test("parseMarkdown splits paragraphs, headings, fenced code, lists and quotes", () => {
  const text = [
    "# Title",
    "",
    "First line",
    "second line",
    "",
    "```ts",
    "const x = 1 < 2;",
    "",
    "```",
    "- one",
    "- **two**",
    "  continued",
    "",
    "3. three",
    "4. four",
    "> quoted",
    "> more",
  ].join("\n");
  assert.deepEqual(parseMarkdown(text), [
    { type: "heading", level: 1, children: [{ type: "text", text: "Title" }] },
    {
      type: "paragraph",
      children: [
        { type: "text", text: "First line" },
        { type: "break" },
        { type: "text", text: "second line" },
      ],
    },
    { type: "code", lang: "ts", text: "const x = 1 < 2;\n" },
    {
      type: "list",
      ordered: false,
      start: 1,
      items: [
        [{ type: "text", text: "one" }],
        [
          { type: "strong", children: [{ type: "text", text: "two" }] },
          { type: "break" },
          { type: "text", text: "continued" },
        ],
      ],
    },
    {
      type: "list",
      ordered: true,
      start: 3,
      items: [[{ type: "text", text: "three" }], [{ type: "text", text: "four" }]],
    },
    {
      type: "quote",
      children: [{ type: "text", text: "quoted" }, { type: "break" }, {
        type: "text",
        text: "more",
      }],
    },
  ]);
});

Deno.test("parseMarkdown renders an unterminated fence, as mid-stream, as code", () => {
  assert.deepEqual(parseMarkdown("Here:\n```py\nprint(1)"), [
    { type: "paragraph", children: [{ type: "text", text: "Here:" }] },
    { type: "code", lang: "py", text: "print(1)" },
  ]);
});

Deno.test("parseInline reads code spans, emphasis and http(s) links, and leaves markup-like text as text", () => {
  assert.deepEqual(parseInline("a `x*y` b *it* and __bold__ [site](https://example.com/a)"), [
    { type: "text", text: "a " },
    { type: "code", text: "x*y" },
    { type: "text", text: " b " },
    { type: "em", children: [{ type: "text", text: "it" }] },
    { type: "text", text: " and " },
    { type: "strong", children: [{ type: "text", text: "bold" }] },
    { type: "text", text: " " },
    {
      type: "link",
      href: "https://example.com/a",
      children: [{ type: "text", text: "site" }],
    },
  ]);
  assert.deepEqual(parseInline("snake_case_name and 2 * 3 * 4"), [
    { type: "text", text: "snake_case_name and 2 * 3 * 4" },
  ]);
  const hostile = '<img src=x onerror="alert(1)"> [x](javascript:alert(1)) <script>1</script>';
  assert.deepEqual(parseInline(hostile), [{ type: "text", text: hostile }]);
  assert.deepEqual(parseInline("`unclosed"), [{ type: "text", text: "`unclosed" }]);
});
