/**
 * Values through Redis: what a chunk's items and results become on the way between a submitter
 * and a `fanout worker`, which may run another runtime (a Bun submitter, Node and Deno
 * workers). `node:v8`'s format would not do: Bun's `node:v8` writes WebKit's format, which V8
 * cannot read. So values go as JSON text, with what JSON has no word for written as a tagged
 * object:
 *
 * ```
 * {"\u0000": TAG, "v": PAYLOAD}
 * ```
 *
 * A plain object of the task's own that happens to have a `"\u0000"` key is itself written
 * tagged (`o`, its entries), so data a task produces can never be read as a tag.
 *
 * What comes back is what structured clone gives back (as on threads and processes): plain
 * objects and arrays, primitives (`undefined`, `NaN`, `±Infinity`, `-0` and BigInts
 * included), `Date`, `RegExp`, `Map`, `Set`, `ArrayBuffer`, typed arrays and `DataView`s, and
 * errors (class name, message, stack, `cause`, own properties); an instance of another class
 * arrives as a plain object of its own enumerable properties. A function or a symbol fails
 * with a `TypeError` that names where it was. Unlike structured clone, an object reached twice
 * arrives as two copies, and a cycle is refused.
 *
 * Shared handles (`ex.share()`) go as their id; the caller says what to write for one and what
 * to read it back as.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { MARK } from "../worker/shared_refs.js";
import { serializeError } from "../worker/error_wire.js";
import { reviveError } from "./_errors.ts";
import type { WireError } from "../protocol.ts";
import { NotCloneableError } from "../errors.ts";
import { TYPED_ARRAY_CLASSES } from "../shared_array.ts";

/** The key of a tagged object. */
const TAG = "\u0000";

const TYPED_ARRAYS = TYPED_ARRAY_CLASSES;

const OBJECT_PROTOTYPE = Object.prototype;

/** What the encoder does with a shared handle: the reference it writes in its place. */
export type OnShared = (handle: { readonly [MARK]: number }) => string;
/** What the decoder puts in place of a shared handle's reference. */
export type OnSharedRef = (ref: string) => unknown;

/** A value that cannot travel: where it is, and what it is. */
export class UnencodableError extends TypeError {
  /** Where in the value it was, as a path from the top (`[3].data`). */
  readonly path: string;

  constructor(path: string, what: string) {
    super(`Expected a value structured clone can copy, got ${what} at \`${path || "(top)"}\``);
    this.name = "UnencodableError";
    this.path = path;
  }
}

/**
 * `value` as JSON text.
 *
 * @throws {UnencodableError} For a function, a symbol, a cycle, or an object of a kind that
 *   cannot be copied (a `WeakMap`, a stream, ...).
 */
export function encode(value: unknown, onShared?: OnShared): string {
  return JSON.stringify(new Walk(onShared).tree(value, "", false));
}

/** The value `encode` wrote. */
export function decode(text: string, onSharedRef?: OnSharedRef): unknown {
  return revive(JSON.parse(text), onSharedRef);
}

function tagged(tag: string, payload?: unknown): Record<string, unknown> {
  return payload === undefined ? { [TAG]: tag } : { [TAG]: tag, v: payload };
}

/**
 * Sets `record[key]` as an own property, whatever the key: `__proto__` included, which an
 * assignment would take as the object's prototype.
 */
function put(record: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(record, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else record[key] = value;
}

/** One encoding: the objects on the way down (a cycle is refused), and what to do with handles. */
class Walk {
  readonly #stack = new Set<object>();
  readonly #onShared: OnShared | undefined;

  constructor(onShared: OnShared | undefined) {
    this.#onShared = onShared;
  }

  /**
   * The JSON-ready tree of `value`; `path` names it in errors. `lenient` (inside an error's own
   * properties) writes what cannot travel as its string form instead, as the thread wire does.
   */
  tree(value: unknown, path: string, lenient: boolean): unknown {
    if (!lenient) return this.#strict(value, path, false);
    try {
      return this.#strict(value, path, true);
    } catch (error) {
      if (!(error instanceof UnencodableError)) throw error;
      return String(value);
    }
  }

  #strict(value: unknown, path: string, lenient: boolean): unknown {
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        if (Number.isFinite(value) && !Object.is(value, -0)) return value;
        return tagged("n", Object.is(value, -0) ? "-0" : String(value));
      case "undefined":
        return tagged("u");
      case "bigint":
        return tagged("b", value.toString());
      case "function":
        throw new UnencodableError(path, `a function${value.name ? ` (${value.name})` : ""}`);
      case "symbol":
        throw new UnencodableError(path, `a symbol (${String(value)})`);
    }
    if (value === null) return null;
    const object = value as object;
    if (this.#stack.has(object)) {
      throw new UnencodableError(path, "a cycle (an object inside itself)");
    }
    this.#stack.add(object);
    try {
      return this.#object(object, path, lenient);
    } finally {
      this.#stack.delete(object);
    }
  }

  #object(object: object, path: string, lenient: boolean): unknown {
    if (Array.isArray(object)) {
      const out = new Array(object.length);
      for (let k = 0; k < object.length; k++) {
        out[k] = this.tree(object[k], `${path}[${k}]`, lenient);
      }
      return out;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== OBJECT_PROTOTYPE && proto !== null) {
      const special = this.#special(object, path, lenient);
      if (special !== undefined) return special;
    }
    const keys = Object.keys(object);
    const record = object as Record<string, unknown>;
    if (keys.includes(TAG)) {
      // The task's own key that looks like a tag: written as entries, read back as the object.
      return tagged(
        "o",
        keys.map((key) => [key, this.tree(record[key], `${path}.${key}`, lenient)]),
      );
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) put(out, key, this.tree(record[key], `${path}.${key}`, lenient));
    return out;
  }

  /** The tagged form of an object that is not plain, or `undefined` to copy its own properties. */
  #special(object: object, path: string, lenient: boolean): unknown {
    if (MARK in object && Object.keys(object).length === 1) {
      const id = (object as { [MARK]: unknown })[MARK];
      if (typeof id === "number" && this.#onShared !== undefined) {
        return tagged("h", this.#onShared(object as { [MARK]: number }));
      }
    }
    if (object instanceof Date) return tagged("d", String(object.getTime()));
    if (object instanceof RegExp) return tagged("r", [object.source, object.flags]);
    if (object instanceof Map) {
      let k = 0;
      const entries = [];
      for (const [key, item] of object) {
        entries.push([
          this.tree(key, `${path}<key ${k}>`, lenient),
          this.tree(item, `${path}<value ${k}>`, lenient),
        ]);
        k++;
      }
      return tagged("m", entries);
    }
    if (object instanceof Set) {
      let k = 0;
      const members = [];
      for (const member of object) {
        members.push(this.tree(member, `${path}<member ${k++}>`, lenient));
      }
      return tagged("s", members);
    }
    if (object instanceof ArrayBuffer) return tagged("a", bytes(object, 0, object.byteLength));
    if (ArrayBuffer.isView(object)) {
      const name = object instanceof DataView ? "DataView" : typedArrayName(object);
      if (name === undefined) throw new UnencodableError(path, `a ${object.constructor.name}`);
      return tagged("t", [name, bytes(object.buffer, object.byteOffset, object.byteLength)]);
    }
    if (typeof SharedArrayBuffer === "function" && object instanceof SharedArrayBuffer) {
      // Shared memory does not cross machines: the bytes go, as a plain buffer's would.
      return tagged("a", bytes(object, 0, object.byteLength));
    }
    if (object instanceof Error) {
      // Its own properties are the task's: what cannot travel goes as text, not as a failure.
      return tagged("e", this.tree(serializeError(object), path, true));
    }
    if (
      object instanceof WeakMap || object instanceof WeakSet || object instanceof Promise ||
      (typeof WeakRef === "function" && object instanceof WeakRef)
    ) {
      throw new UnencodableError(path, `a ${object.constructor.name}`);
    }
    if (
      object instanceof Number || object instanceof String || object instanceof Boolean ||
      object instanceof BigInt
    ) {
      return tagged("p", this.tree(object.valueOf(), path, lenient));
    }
    return undefined;
  }
}

/**
 * The built-in typed array class a view is an instance of, by name: a subclass (Node's
 * `Buffer` is a `Uint8Array`) travels as its built-in class, as structured clone sends it.
 */
function typedArrayName(view: ArrayBufferView): string | undefined {
  for (
    let proto = Object.getPrototypeOf(view);
    proto !== null;
    proto = Object.getPrototypeOf(proto)
  ) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    if (name !== undefined && TYPED_ARRAYS[name]?.prototype === proto) return name;
  }
  return undefined;
}

function bytes(buffer: ArrayBufferLike, offset: number, length: number): string {
  return Buffer.from(buffer, offset, length).toString("base64");
}

/** Builds back the value of a JSON-parsed tree, in place where it can. */
function revive(node: unknown, onSharedRef?: OnSharedRef): unknown {
  if (node === null || typeof node !== "object") return node;
  if (Array.isArray(node)) {
    for (let k = 0; k < node.length; k++) node[k] = revive(node[k], onSharedRef);
    return node;
  }
  const record = node as Record<string, unknown>;
  const tag = record[TAG];
  if (tag === undefined) {
    // JSON.parse made each key an own property (`__proto__` too); set them back the same way.
    for (const key of Object.keys(record)) put(record, key, revive(record[key], onSharedRef));
    return record;
  }
  const v = record.v;
  switch (tag) {
    case "u":
      return undefined;
    case "n":
      return v === "-0" ? -0 : Number(v);
    case "b":
      return BigInt(v as string);
    case "d":
      return new Date(Number(v));
    case "r": {
      const [source, flags] = v as [string, string];
      return new RegExp(source, flags);
    }
    case "m":
      return new Map(
        (v as [unknown, unknown][]).map(([key, item]) => [
          revive(key, onSharedRef),
          revive(item, onSharedRef),
        ]),
      );
    case "s":
      return new Set((v as unknown[]).map((member) => revive(member, onSharedRef)));
    case "a":
      return arrayBuffer(v as string);
    case "t": {
      const [name, data] = v as [string, string];
      const buffer = arrayBuffer(data);
      if (name === "DataView") return new DataView(buffer);
      const Typed = TYPED_ARRAYS[name];
      if (Typed === undefined) throw new TypeError(`Unknown typed array in a message: ${name}`);
      return new Typed(buffer);
    }
    case "e":
      return reviveError(revive(v, onSharedRef) as WireError);
    case "p":
      return Object(revive(v, onSharedRef));
    case "o": {
      const out: Record<string, unknown> = {};
      for (const [key, item] of v as [string, unknown][]) put(out, key, revive(item, onSharedRef));
      return out;
    }
    case "h":
      if (onSharedRef === undefined) throw new TypeError("A shared handle where none may be");
      return onSharedRef(v as string);
  }
  throw new TypeError(`Unknown tag in a message: ${JSON.stringify(tag)}`);
}

function arrayBuffer(base64: string): ArrayBuffer {
  const data = Buffer.from(base64, "base64");
  const buffer = new ArrayBuffer(data.byteLength);
  new Uint8Array(buffer).set(data);
  return buffer;
}

/**
 * What `encode` refused in the items or results of a chunk starting at task `base`, as the
 * `NotCloneableError` of the task it was in; any other error as it is.
 */
export function cloneFailure(error: unknown, base: number, side: "input" | "result"): unknown {
  if (!(error instanceof UnencodableError)) return error;
  const match = /^\[(\d+)\](.*)$/.exec(error.path);
  if (match === null) return error;
  const index = base + Number(match[1]);
  const what = error.message.replace(/^Expected a value structured clone can copy, got /, "");
  return new NotCloneableError(
    index,
    `${side}${match[2]}`,
    `Expected the ${side} of task ${index} to be cloneable, got ${what}`,
    { cause: error },
  );
}
