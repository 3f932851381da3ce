/**
 * A grammar that lets a thinking model reason before its constrained answer: the reasoning block
 * is free text, the answer after it follows the grammar.
 */
import type { ThinkingMarkers } from "../reasoning.ts";
import { ByteClass, type Grammar, GrammarBuilder, type Term } from "./grammar.ts";

/**
 * `answer` after a reasoning block: any text without the closing marker, the marker, then
 * white space. When `opened` (the prompt opened the block) the answer starts inside it;
 * otherwise the block is optional and starts with the opening marker.
 */
export function afterReasoning(
  answer: Grammar,
  markers: ThinkingMarkers,
  opened: boolean,
): Grammar {
  const b = new GrammarBuilder();
  const constrained = b.include(answer);
  const space = b.star("white space", ByteClass.chars(" \t\r\n"));
  const block = [textWithout(b, markers.close), b.literal(markers.close), space];
  const start = opened
    ? b.rule("reasoning, answer", [...block, constrained])
    : b.rule("[reasoning] answer", [b.literal(markers.open), ...block, constrained], [
      constrained,
    ]);
  return b.build(start);
}

/**
 * The rule of every byte string that does not contain `marker` (ASCII): its rules are the
 * states of a matcher of the marker (how much of it the text ends with), and a byte that would
 * complete it has no transition.
 */
function textWithout(b: GrammarBuilder, marker: string): number {
  const m = [...marker].map((c) => c.charCodeAt(0));
  // KMP failure function: the longest proper prefix of m[0..i] that is also its suffix.
  const fail = new Array<number>(m.length).fill(0);
  for (let i = 1, k = 0; i < m.length; i++) {
    while (k > 0 && m[i] !== m[k]) k = fail[k - 1]!;
    if (m[i] === m[k]) k++;
    fail[i] = k;
  }
  const next = (state: number, byte: number): number => {
    let k = state;
    while (k > 0 && byte !== m[k]) k = fail[k - 1]!;
    return byte === m[k] ? k + 1 : 0;
  };
  const rules = m.map((_, i) => b.declare(`text without ${marker} (${i} matched)`));
  rules.forEach((rule, state) => {
    b.add(rule, []);
    const into = new Map<number, Uint8Array>();
    for (let byte = 0; byte < 256; byte++) {
      const to = next(state, byte);
      if (to === m.length) continue;
      let accepts = into.get(to);
      if (!accepts) into.set(to, accepts = new Uint8Array(256));
      accepts[byte] = 1;
    }
    for (const [to, accepts] of into) {
      b.add(rule, [new ByteClass(accepts), rules[to]!] satisfies Term[]);
    }
  });
  return rules[0]!;
}
