/** The concrete {@link OpArgs}: arguments already resolved by parameter name. */
import type { Dim } from "../tensor/dim.ts";
import type { OpArgs } from "./op.ts";

/** An attribute value once wires are replaced by their (possibly symbolic) contents. */
export type AttrValue = Dim | string | boolean | null | readonly AttrValue[];

/** A resolved argument: a tensor (fact or tensor), a list of them, or an attribute. */
export type ArgValue<T> = T | readonly T[] | AttrValue;

function isTensorLike(v: unknown): boolean {
  return typeof v === "object" && v !== null && "dtype" in v && "shape" in v;
}

/** Accessors over resolved arguments; `op` names the invocation in error messages. */
export class Args<T extends object> implements OpArgs<T> {
  readonly #values: ReadonlyMap<string, ArgValue<T>>;
  readonly #op: string;
  readonly #known: ReadonlyMap<string, readonly boolean[]> | undefined;

  /** `known`: per attribute, which items were numbers known at load time (default: all). */
  constructor(
    op: string,
    values: ReadonlyMap<string, ArgValue<T>> | Record<string, ArgValue<T>>,
    known?: ReadonlyMap<string, readonly boolean[]>,
  ) {
    this.#op = op;
    this.#known = known;
    this.#values = values instanceof Map
      ? values
      : new Map(Object.entries(values as Record<string, ArgValue<T>>));
  }

  #get(name: string): ArgValue<T> | undefined {
    return this.#values.get(name);
  }

  #fail(name: string, what: string): never {
    throw new TypeError(`Argument '${name}' of ${this.#op} must be ${what}`);
  }

  has(name: string): boolean {
    const v = this.#get(name);
    return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
  }

  tensor(name: string): T {
    const v = this.#get(name);
    if (!isTensorLike(v)) this.#fail(name, "a tensor");
    return v as T;
  }

  optionalTensor(name: string): T | null {
    const v = this.#get(name);
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return null;
    if (!isTensorLike(v)) this.#fail(name, "a tensor");
    return v as T;
  }

  tensors(name: string): T[] {
    const v = this.#get(name);
    if (!Array.isArray(v) || !v.every(isTensorLike)) this.#fail(name, "a list of tensors");
    return [...v] as T[];
  }

  dim(name: string): Dim {
    const v = this.#get(name);
    if (Array.isArray(v) && v.length === 1) return this.#asDim(name, v[0]);
    return this.#asDim(name, v);
  }

  #asDim(name: string, v: unknown): Dim {
    // An integer parameter given a scalar such as 1.5 (tract cannot make a TDim of it either).
    if (typeof v === "number") return Number.isInteger(v) ? v : this.#fail(name, "an integer");
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "object" && v !== null && "terms" in v) return v as Dim;
    this.#fail(name, "an integer");
  }

  dims(name: string): Dim[] {
    const v = this.#get(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return [this.#asDim(name, v)];
    // tract flattens items that are themselves lists (`shape = [1, wire_of_two, 3]`).
    return v.flatMap((x) => (Array.isArray(x) ? x : [x])).map((x) => this.#asDim(name, x));
  }

  knownAtLoad(name: string, index: number): boolean {
    return this.#known?.get(name)?.[index] ?? true;
  }

  int(name: string): number {
    const d = this.dim(name);
    if (typeof d !== "number") this.#fail(name, "an integer known at load time");
    return d;
  }

  ints(name: string): number[] {
    return this.dims(name).map((d) => {
      if (typeof d !== "number") this.#fail(name, "integers known at load time");
      return d;
    });
  }

  float(name: string): number {
    const v = this.#get(name);
    const x = Array.isArray(v) && v.length === 1 ? v[0] : v;
    if (typeof x !== "number") this.#fail(name, "a number");
    return x;
  }

  str(name: string): string {
    const v = this.#get(name);
    if (typeof v !== "string") this.#fail(name, "a string");
    return v;
  }

  bool(name: string): boolean {
    const v = this.#get(name);
    if (typeof v === "boolean") return v;
    if (typeof v === "number") return v !== 0;
    this.#fail(name, "a logical");
  }
}
