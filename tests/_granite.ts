/**
 * Test helper: a chat template in the way IBM Granite 3.x templates are laid out: role blocks
 * between `<|start_of_role|>`, `<|end_of_role|>` and `<|end_of_text|>`, the tools as a JSON list
 * in an `available_tools` block, earlier calls as `<|tool_call|>` and a JSON list of them, and
 * results in `tool_response` blocks.
 */
export const GRANITE_TEMPLATE: string = "{%- if tools -%}" +
  "{{- '<|start_of_role|>available_tools<|end_of_role|>' + (tools | tojson) + " +
  "'<|end_of_text|>\\n' -}}" +
  "{%- endif -%}" +
  "{%- for message in messages -%}" +
  "{%- if message.role == 'assistant' and message.tool_calls -%}" +
  "{{- '<|start_of_role|>assistant<|end_of_role|><|tool_call|>[' -}}" +
  "{%- for call in message.tool_calls -%}" +
  "{{- '{\"name\": ' + (call.function.name | tojson) + ', \"arguments\": ' + " +
  "(call.function.arguments | tojson) + '}' -}}" +
  "{%- if not loop.last %}{{ ', ' }}{% endif -%}" +
  "{%- endfor -%}" +
  "{{- ']<|end_of_text|>\\n' -}}" +
  "{%- elif message.role == 'tool' -%}" +
  "{{- '<|start_of_role|>tool_response<|end_of_role|>' + message.content + " +
  "'<|end_of_text|>\\n' -}}" +
  "{%- else -%}" +
  "{{- '<|start_of_role|>' + message.role + '<|end_of_role|>' + message.content + " +
  "'<|end_of_text|>\\n' -}}" +
  "{%- endif -%}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt %}{{ '<|start_of_role|>assistant<|end_of_role|>' }}{% endif -%}";
