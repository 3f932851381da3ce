/**
 * Test helpers: a chat template in the way Mistral's v3 templates write tools, calls and
 * results (Mistral 7B v0.3, Mixtral 8x22B), including their refusal of call ids that are not 9
 * characters long, and its variant for Mistral's later `[TOOL_CALLS]name[ARGS]{...}` calls.
 */

const CHECK_ID = (field: string) =>
  `{%- if ${field} is not string or ${field} | length != 9 -%}` +
  "{{ raise_exception('Tool call ids must be 9 letters and digits') }}{%- endif -%}";

/** Tools before the last user turn, `[TOOL_CALLS] [...]` calls, `[TOOL_RESULTS]` results. */
export const MISTRAL_TEMPLATE: string = "{%- set ns = namespace(last = -1) -%}" +
  "{%- for m in messages %}{% if m.role == 'user' %}{% set ns.last = loop.index0 %}{% endif %}" +
  "{% endfor -%}" +
  "{{- bos_token -}}" +
  "{%- for message in messages -%}" +
  "{%- if message.role == 'user' -%}" +
  "{%- if tools and loop.index0 == ns.last -%}" +
  "{{- '[AVAILABLE_TOOLS] ' + (tools | tojson) + '[/AVAILABLE_TOOLS]' -}}" +
  "{%- endif -%}" +
  "{{- '[INST] ' + message.content + '[/INST]' -}}" +
  "{%- elif message.role == 'assistant' and message.tool_calls -%}" +
  "{{- '[TOOL_CALLS] [' -}}" +
  "{%- for call in message.tool_calls -%}" +
  CHECK_ID("call.id") +
  "{{- '{\"name\": ' + (call.function.name | tojson) + ', \"arguments\": ' + " +
  "(call.function.arguments | tojson) + ', \"id\": ' + (call.id | tojson) + '}' -}}" +
  "{%- if not loop.last %}{{ ', ' }}{% endif -%}" +
  "{%- endfor -%}" +
  "{{- ']' + eos_token -}}" +
  "{%- elif message.role == 'assistant' -%}" +
  "{{- ' ' + message.content + eos_token -}}" +
  "{%- elif message.role == 'tool' -%}" +
  CHECK_ID("message.tool_call_id") +
  "{{- '[TOOL_RESULTS] {\"content\": ' + (message.content | tojson) + ', \"call_id\": ' + " +
  "(message.tool_call_id | tojson) + '}[/TOOL_RESULTS]' -}}" +
  "{%- endif -%}" +
  "{%- endfor -%}";

/** The same, writing each earlier call as `[TOOL_CALLS]name[ARGS]{...}`. */
export const MISTRAL_ARGS_TEMPLATE: string = MISTRAL_TEMPLATE
  .replace("{{- '[TOOL_CALLS] [' -}}", "")
  .replace(
    "{{- '{\"name\": ' + (call.function.name | tojson) + ', \"arguments\": ' + " +
      "(call.function.arguments | tojson) + ', \"id\": ' + (call.id | tojson) + '}' -}}",
    "{{- '[TOOL_CALLS]' + call.function.name + '[ARGS]' + (call.function.arguments | tojson) -}}",
  )
  .replace("{%- if not loop.last %}{{ ', ' }}{% endif -%}", "")
  .replace("{{- ']' + eos_token -}}", "{{- eos_token -}}");
