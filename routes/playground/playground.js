/**
 * The playground: a chat over the server's public API (`/v1/models`, `/v1/chat/completions`,
 * streamed). The model's text is parsed by `markdown.js` and placed in text nodes only.
 * Not type-checked (the DOM's types would clash with Deno's in one program); the browser
 * tests run it.
 *
 * @module
 */
import { parseMarkdown } from "./markdown.js";
import { eventData } from "./sse.js";

/** Where the API key is kept for the tab's life. */
const KEY_STORAGE = "rill.apiKey";

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function byId(id, type) {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new TypeError(`The page has no ${type.name} #${id}`);
  return found;
}

const ui = {
  modelName: byId("model-name", HTMLElement),
  modelContext: byId("model-context", HTMLElement),
  status: byId("status", HTMLElement),
  auth: byId("auth", HTMLFormElement),
  apiKey: byId("api-key", HTMLInputElement),
  authError: byId("auth-error", HTMLElement),
  system: byId("system", HTMLTextAreaElement),
  temperature: byId("temperature", HTMLInputElement),
  topP: byId("top-p", HTMLInputElement),
  maxTokens: byId("max-tokens", HTMLInputElement),
  newChat: byId("new-chat", HTMLButtonElement),
  messages: byId("messages", HTMLOListElement),
  composer: byId("composer", HTMLFormElement),
  prompt: byId("prompt", HTMLTextAreaElement),
  send: byId("send", HTMLButtonElement),
  stop: byId("stop", HTMLButtonElement),
};

/**
 * @typedef {{ role: "system" | "user" | "assistant", content: string, reasoning_content?: string }} Message
 */

/** The conversation so far, as the API takes it (without the system prompt). */
/** @type {Message[]} */
let history = [];
/** The served model's id, once known. */
let model = "";
/** Aborts the answer being streamed. */
/** @type {AbortController | null} */
let answering = null;

/** @returns {Record<string, string>} */
function headers() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return {
    "Content-Type": "application/json",
    ...(key ? { Authorization: `Bearer ${key}` } : {}),
  };
}

/**
 * The message of an OpenAI-shaped error response.
 *
 * @param {Response} response
 * @returns {Promise<string>}
 */
async function errorMessage(response) {
  const text = await response.text();
  try {
    return JSON.parse(text).error.message;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

/**
 * Asks for an API key, with `problem` (why the last one failed) if any.
 *
 * @param {string} problem
 */
function askForKey(problem) {
  ui.auth.hidden = false;
  ui.authError.textContent = problem;
  ui.status.textContent = "API key required";
  setReady(false);
  ui.apiKey.focus();
}

/** @param {boolean} ready */
function setReady(ready) {
  ui.prompt.disabled = !ready;
  ui.send.disabled = !ready || answering !== null;
}

/** Reads the served model from `/v1/models`; retries while it loads. */
async function connect() {
  let response;
  try {
    response = await fetch("/v1/models", { headers: headers() });
  } catch (e) {
    ui.status.textContent = `Server unreachable (${e instanceof Error ? e.message : e}); retrying`;
    setTimeout(connect, 2000);
    return;
  }
  if (response.status === 401) {
    const hadKey = sessionStorage.getItem(KEY_STORAGE) !== null;
    askForKey(hadKey ? await errorMessage(response) : "");
    return;
  }
  if (response.status === 503) {
    ui.status.textContent = "Model loading…";
    await response.body?.cancel();
    setTimeout(connect, 1000);
    return;
  }
  if (!response.ok) {
    ui.status.textContent = await errorMessage(response);
    return;
  }
  const listed = (await response.json()).data?.[0];
  model = listed.id;
  ui.modelName.textContent = model;
  const context = listed.context_length ?? listed.max_model_len;
  ui.modelContext.textContent = context ? `· ${context}-token context` : "";
  if (context) ui.maxTokens.max = String(context);
  ui.auth.hidden = true;
  ui.status.textContent = "";
  setReady(true);
  ui.prompt.focus();
}

/**
 * Adds a message to the list.
 *
 * @param {"user" | "assistant"} role
 * @returns {{ item: HTMLLIElement, reasoning: HTMLDetailsElement, thoughts: HTMLElement, content: HTMLElement, stats: HTMLElement }}
 */
function addMessage(role) {
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.role = role;
  // A thinking model's reasoning, folded away above its answer; hidden until some arrives.
  const reasoning = document.createElement("details");
  reasoning.className = "reasoning";
  reasoning.hidden = true;
  const summary = document.createElement("summary");
  summary.textContent = "Thinking";
  const thoughts = document.createElement("div");
  thoughts.className = "thoughts";
  reasoning.append(summary, thoughts);
  const content = document.createElement("div");
  content.className = "content";
  const stats = document.createElement("p");
  stats.className = "stats";
  if (role === "assistant") item.append(reasoning);
  item.append(content);
  if (role === "assistant") item.append(stats);
  ui.messages.append(item);
  item.scrollIntoView({ block: "end" });
  return { item, reasoning, thoughts, content, stats };
}

/**
 * The elements of `text` read as markdown; the text only ever lands in text nodes.
 *
 * @param {string} text
 * @returns {Node[]}
 */
export function renderMarkdown(text) {
  return parseMarkdown(text).map((block) => {
    switch (block.type) {
      case "paragraph":
        return element("p", inline(block.children));
      case "heading":
        return element(`h${Math.min(block.level + 2, 6)}`, inline(block.children));
      case "quote":
        return element("blockquote", inline(block.children));
      case "code": {
        const code = element("code", [document.createTextNode(block.text)]);
        if (block.lang !== "") code.dataset.lang = block.lang;
        return element("pre", [code]);
      }
      case "list": {
        const list = block.ordered ? document.createElement("ol") : document.createElement("ul");
        if (list instanceof HTMLOListElement && block.start !== 1) list.start = block.start;
        list.append(...block.items.map((item) => element("li", inline(item))));
        return list;
      }
    }
  });
}

/**
 * @param {string} tag
 * @param {Node[]} children
 */
function element(tag, children) {
  const made = document.createElement(tag);
  made.append(...children);
  return made;
}

/**
 * @param {import("./markdown.js").Inline[]} spans
 * @returns {Node[]}
 */
function inline(spans) {
  return spans.map((span) => {
    switch (span.type) {
      case "text":
        return document.createTextNode(span.text);
      case "break":
        return document.createElement("br");
      case "code":
        return element("code", [document.createTextNode(span.text)]);
      case "strong":
        return element("strong", inline(span.children));
      case "em":
        return element("em", inline(span.children));
      case "link": {
        const protocol = URL.canParse(span.href) ? new URL(span.href).protocol : "";
        if (protocol !== "http:" && protocol !== "https:") {
          return element("span", inline(span.children));
        }
        const link = /** @type {HTMLAnchorElement} */ (element("a", inline(span.children)));
        link.href = span.href;
        link.rel = "noopener noreferrer nofollow";
        link.target = "_blank";
        return link;
      }
    }
  });
}

/**
 * @param {HTMLInputElement} input
 * @param {number} fallback
 */
function numberOf(input, fallback) {
  const value = input.valueAsNumber;
  return Number.isFinite(value) ? value : fallback;
}

/**
 * Sends `text` as the next user message and streams the answer into the list.
 *
 * @param {string} text
 */
async function ask(text) {
  const user = addMessage("user");
  user.content.textContent = text;
  history.push({ role: "user", content: text });
  const answer = addMessage("assistant");
  answer.item.dataset.state = "streaming";
  const controller = new AbortController();
  answering = controller;
  ui.stop.disabled = false;
  setReady(true);
  const system = ui.system.value.trim();
  const sent = performance.now();
  /** @type {number | undefined} */
  let first;
  let last = sent;
  let answerText = "";
  let reasoningText = "";
  let chunks = 0;
  /** @type {number | undefined} */
  let tokens;
  let finish = "";
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      signal: controller.signal,
      body: JSON.stringify({
        model,
        messages: system === "" ? history : [{ role: "system", content: system }, ...history],
        stream: true,
        stream_options: { include_usage: true },
        temperature: numberOf(ui.temperature, 0.7),
        top_p: numberOf(ui.topP, 0.95),
        max_tokens: Math.max(1, Math.floor(numberOf(ui.maxTokens, 256))),
      }),
    });
    if (!response.ok || response.body === null) {
      const message = await errorMessage(response);
      if (response.status === 401) askForKey(message);
      throw new Error(message);
    }
    for await (const data of eventData(response.body)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices?.[0];
      const thought = choice?.delta?.reasoning_content;
      const delta = choice?.delta?.content;
      if (thought || delta) {
        last = performance.now();
        first ??= last;
        chunks++;
      }
      if (thought) {
        reasoningText += thought;
        answer.reasoning.hidden = false;
        answer.thoughts.textContent = reasoningText;
      }
      if (delta) {
        answerText += delta;
        answer.content.replaceChildren(...renderMarkdown(answerText));
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
    answer.item.dataset.state = "done";
  } catch (e) {
    if (controller.signal.aborted) {
      answer.item.dataset.state = "stopped";
    } else {
      answer.item.dataset.state = "error";
      answer.content.replaceChildren(
        ...renderMarkdown(answerText),
        element("p", [document.createTextNode(e instanceof Error ? e.message : String(e))]),
      );
    }
  } finally {
    answering = null;
    ui.stop.disabled = true;
    if (answerText !== "" || reasoningText !== "") {
      history.push({
        role: "assistant",
        content: answerText,
        ...(reasoningText === "" ? {} : { reasoning_content: reasoningText }),
      });
    } else history.pop();
    answer.stats.textContent = describe({
      sent,
      first,
      last,
      tokens: tokens ?? chunks,
      finish,
      stopped: controller.signal.aborted,
    });
    setReady(!ui.prompt.disabled);
    answer.item.scrollIntoView({ block: "end" });
  }
}

/**
 * The figures shown under an answer: time to first token, decode speed, tokens.
 *
 * @param {{ sent: number, first: number | undefined, last: number, tokens: number, finish: string, stopped: boolean }} run
 */
function describe(run) {
  const parts = [];
  if (run.first !== undefined) {
    parts.push(`first token ${((run.first - run.sent) / 1000).toFixed(2)} s`);
    if (run.tokens > 1 && run.last > run.first) {
      parts.push(`${((run.tokens - 1) / ((run.last - run.first) / 1000)).toFixed(1)} tokens/s`);
    }
  }
  parts.push(`${run.tokens} token${run.tokens === 1 ? "" : "s"}`);
  if (run.stopped) parts.push("stopped");
  else if (run.finish === "length") parts.push("max tokens reached");
  return parts.join(" · ");
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.prompt.value.trim();
  if (text === "" || answering !== null) return;
  ui.prompt.value = "";
  void ask(text);
});

ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.stop.addEventListener("click", () => answering?.abort());

ui.newChat.addEventListener("click", () => {
  answering?.abort();
  history = [];
  ui.messages.replaceChildren();
  ui.prompt.focus();
});

ui.auth.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, ui.apiKey.value.trim());
  ui.apiKey.value = "";
  ui.authError.textContent = "";
  void connect();
});

void connect();
