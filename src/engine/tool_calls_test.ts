import assert from "node:assert/strict";
import { renderChatTemplate } from "./chat_template.ts";
import {
  mistralCallId,
  type ToolCallDelta,
  ToolCallParser,
  toolConversation,
  type ToolFamily,
  toolFamily,
} from "./tool_calls.ts";
import { MISTRAL_ARGS_TEMPLATE, MISTRAL_TEMPLATE } from "../../tests/_mistral.ts";
import { GRANITE_TEMPLATE } from "../../tests/_granite.ts";

const FIXTURES = new URL("../../../shared/fixtures/tokenizers/", import.meta.url).pathname;

/** Feeds `text` in pieces of `size` characters; returns the content and the merged calls. */
function run(family: ToolFamily, text: string, size: number) {
  const parser = new ToolCallParser(family);
  let content = "";
  const deltas: ToolCallDelta[] = [];
  for (let i = 0; i < text.length; i += size) {
    const piece = parser.push(text.slice(i, i + size));
    content += piece.content;
    deltas.push(...piece.calls);
  }
  content += parser.flush().content;
  const merged: { id: string; name: string; arguments: string }[] = [];
  for (const d of deltas) {
    if (d.id !== undefined) {
      assert.equal(d.index, merged.length);
      merged.push({ id: d.id, name: d.function.name!, arguments: d.function.arguments });
    } else {
      assert.equal(d.index, merged.length - 1);
      merged[d.index]!.arguments += d.function.arguments;
    }
  }
  assert.deepEqual(merged, parser.calls);
  const ids = merged.map((c) => c.id);
  return {
    content,
    calls: merged.map(({ name, arguments: a }) => ({ name, args: JSON.parse(a) })),
    ids,
  };
}

const WEATHER = { name: "get_weather", args: { city: "Paris", days: [1, 2], q: 'a"}b' } };
const TIME = { name: "get_time", args: {} };

Deno.test("ToolCallParser reads Hermes <tool_call> blocks in any split, with content before", () => {
  const text =
    `Let me look.<tool_call>\n{"name": "get_weather", "arguments": ${
      JSON.stringify(WEATHER.args)
    }}\n</tool_call>\n` +
    `<tool_call>\n{"name":"get_time","arguments":{}}\n</tool_call>`;
  for (const size of [1, 3, 7, 1000]) {
    const { content, calls } = run("hermes", text, size);
    assert.equal(content, "Let me look.");
    assert.deepEqual(calls, [WEATHER, TIME]);
  }
});

Deno.test("ToolCallParser reads SmolLM2's call list and Llama 3's bare object", () => {
  const smol = `<tool_call>[{"name": "get_weather", "arguments": ${
    JSON.stringify(WEATHER.args)
  }}, {"name": "get_time", "arguments": {}}]</tool_call>`;
  for (const size of [1, 5, 1000]) {
    const { content, calls } = run("smollm2", smol, size);
    assert.deepEqual({ content, calls }, { content: "", calls: [WEATHER, TIME] });
  }
  const llama = `{"name": "get_weather", "parameters": ${JSON.stringify(WEATHER.args)}}`;
  for (const size of [1, 4, 1000]) {
    const { content, calls } = run("llama3", llama, size);
    assert.deepEqual({ content, calls }, { content: "", calls: [WEATHER] });
  }
  const plain = run("llama3", "It is {sunny}.", 2);
  assert.deepEqual([plain.content, plain.calls], ["It is {sunny}.", []]);
});

Deno.test("ToolCallParser passes text without calls through, releasing a held-back tag start", () => {
  const { content, calls } = run("hermes", "Plain answer <tool", 4);
  assert.deepEqual({ content, calls }, { content: "Plain answer <tool", calls: [] });
});

Deno.test("ToolCallParser reads Mistral's call list and its name[ARGS] calls, with 9-character ids", () => {
  const list = `Checking.[TOOL_CALLS] [{"name": "get_weather", "arguments": ${
    JSON.stringify(WEATHER.args)
  }}, {"name": "get_time", "arguments": {}}]`;
  const named = `[TOOL_CALLS]get_weather[ARGS]${
    JSON.stringify(WEATHER.args)
  }[TOOL_CALLS] get_time [ARGS]{}`;
  for (const size of [1, 3, 8, 1000]) {
    for (const family of ["mistral", "mistral_args"] as const) {
      const fromList = run(family, list, size);
      assert.deepEqual([fromList.content, fromList.calls], ["Checking.", [WEATHER, TIME]]);
      const fromNamed = run(family, named, size);
      assert.deepEqual([fromNamed.content, fromNamed.calls], ["", [WEATHER, TIME]]);
      for (const id of [...fromList.ids, ...fromNamed.ids]) assert.match(id, /^[0-9a-f]{9}$/);
    }
  }
  // Other families' ids stay OpenAI's; `[ARGS]` opens nothing there.
  assert.match(run("hermes", '<tool_call>{"name": "f", "arguments": {}}', 5).ids[0]!, /^call_/);
  const hermes = run("hermes", "<tool_call>f[ARGS]{}</tool_call>", 4);
  assert.deepEqual(hermes.calls, []);
});

Deno.test("ToolCallParser reads Granite's call list after <|tool_call|> or <tool_call>, with OpenAI ids", () => {
  const calls = `[{"name": "get_weather", "arguments": ${
    JSON.stringify(WEATHER.args)
  }}, {"name": "get_time", "arguments": {}}]`;
  for (const open of ["<|tool_call|>", "<tool_call> "]) {
    for (const size of [1, 2, 5, 1000]) {
      const read = run("granite", `Checking.${open}${calls}`, size);
      assert.deepEqual([read.content, read.calls], ["Checking.", [WEATHER, TIME]]);
      for (const id of read.ids) assert.match(id, /^call_[0-9a-f]{24}$/);
    }
  }
  // A held-back start of either marker comes out as text when nothing follows.
  for (const tail of ["<|tool", "<tool_c"]) {
    assert.deepEqual(run("granite", `Plain ${tail}`, 3).content, `Plain ${tail}`);
  }
});

Deno.test("toolFamily tells the families from template text", () => {
  assert.equal(toolFamily(GRANITE_TEMPLATE), "granite");
  assert.equal(toolFamily(MISTRAL_TEMPLATE), "mistral");
  assert.equal(toolFamily(MISTRAL_ARGS_TEMPLATE), "mistral_args");
  assert.equal(
    toolFamily(Deno.readTextFileSync(`${FIXTURES}smollm2/chat_template.jinja`)),
    "smollm2",
  );
  assert.equal(toolFamily("{{ '<|start_header_id|>' + message['role'] }}"), "llama3");
  assert.equal(toolFamily("{% if tools %}<tool_call>{% endif %}"), "hermes");
  assert.equal(
    toolFamily(Deno.readTextFileSync(`${FIXTURES}tinyllama/chat_template.jinja`)),
    "hermes",
  );
});

const TOOLS = [{
  name: "get_weather",
  description: "Weather of a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}];
const HISTORY = [
  { role: "user", content: "Weather in Paris?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [{
      id: "call_1",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    }],
  },
  { role: "tool", tool_call_id: "call_1", content: "sunny" },
];

Deno.test("toolConversation writes tools, calls and results into SmolLM2's template", () => {
  const template = Deno.readTextFileSync(`${FIXTURES}smollm2/chat_template.jinja`);
  const { messages, variables } = toolConversation(template, HISTORY, TOOLS);
  const text = renderChatTemplate({}, messages, { template, variables });
  assert.match(
    text,
    /^<\|im_start\|>system\nYou can call the functions listed in <tools><\/tools>/,
  );
  assert.match(text, /<tools>\{"type":"function","function":\{"name":"get_weather"/);
  assert.match(
    text,
    /<\|im_start\|>assistant\n<tool_call>\[\{"name":"get_weather","arguments":\{"city":"Paris"\}\}\]<\/tool_call><\|im_end\|>/,
  );
  assert.match(
    text,
    /<\|im_start\|>user\n<tool_response>\nsunny\n<\/tool_response><\|im_end\|>\n<\|im_start\|>assistant\n$/,
  );
});

Deno.test("toolConversation hands tools to a template that takes them, arguments as objects", () => {
  const template = "{% for t in tools %}[{{ t.function.name }}]{% endfor %}" +
    "{% for m in messages %}{{ m.role }}:{% if m.tool_calls %}{{ m.tool_calls[0].function.arguments.city }}" +
    "{% else %}{{ m.content }}{% endif %};{% endfor %}";
  const { messages, variables } = toolConversation(template, HISTORY, TOOLS);
  const text = renderChatTemplate({}, messages, {
    template,
    variables,
    addGenerationPrompt: false,
  });
  assert.equal(text, "[get_weather]user:Weather in Paris?;assistant:Paris;tool:sunny;");
});

Deno.test("toolConversation gives Mistral's templates the 9-character ids they insist on", () => {
  const ids = ["call_1", "call_6f2c1a9e0b7d44e1a3c5d7f9", "abcdefghi", "x-y_z"];
  const mapped = ids.map(mistralCallId);
  assert.deepEqual(
    mapped,
    ["000call1", "1a3c5d7f9", "abcdefghi", "000000xyz"].map((id) => id.padStart(9, "0")),
  );
  for (const template of [MISTRAL_TEMPLATE, MISTRAL_ARGS_TEMPLATE]) {
    // As sent, OpenAI's ids make the template raise.
    assert.throws(
      () => renderChatTemplate({}, HISTORY, { template, variables: { tools: TOOLS } }),
      /9 letters and digits/,
    );
    const { messages, variables } = toolConversation(template, HISTORY, TOOLS);
    const text = renderChatTemplate({ eos_token: "</s>" }, messages, { template, variables });
    assert.match(text, /^\[AVAILABLE_TOOLS\] \[\{"type": "function"/);
    assert.match(text, /"call_id": "0000call1"\}\[\/TOOL_RESULTS\]$/);
    assert.ok(
      text.includes(
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "0000call1"}]</s>',
      ) ||
        text.includes('[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}</s>'),
      text,
    );
  }
});
