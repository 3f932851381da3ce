// @ts-check
/**
 * Reads a server-sent event stream as the playground needs it: the `data` of each event, as
 * soon as its blank line arrives; comments (`: ping`) and other fields are skipped.
 *
 * @module
 */

/**
 * The `data` of each event of `body`, lines of one event joined by "\n".
 *
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<string>}
 */
export async function* eventData(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = /\r\n\r\n|\n\n|\r\r/.exec(buffer)) !== null) {
        const event = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        const data = [];
        for (const line of event.split(/\r\n|\n|\r/)) {
          if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
        }
        if (data.length > 0) yield data.join("\n");
      }
    }
  } finally {
    reader.releaseLock();
  }
}
