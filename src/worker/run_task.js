/**
 * Loading and describing tasks, shared by the thread worker and the serial strategy.
 *
 * Plain JavaScript (typed with JSDoc) on purpose: Node strips the types of every `.ts` file a
 * worker loads, and its first use in a fresh thread costs ~28 ms of a ~36 ms worker start
 * (measured on Node 24.21). Everything a worker imports is therefore `.js`.
 *
 * @module
 */

/** @import { TaskSpec, WireError } from "../protocol.ts" */

/** @typedef {(input: unknown, ctx: { index: number, signal: AbortSignal, seed: number }) => unknown} TaskFn */

import { mixSeed } from "./seed.js";

/**
 * Loads a task: imports its module and picks the export, or compiles inline source.
 *
 * @param {TaskSpec} spec
 * @returns {Promise<TaskFn>}
 */
export async function loadTask(spec) {
  if (spec.kind === "inline") return compileInline(spec.source);
  const mod = await importUrl(spec.url);
  const fn = mod[spec.name];
  if (typeof fn !== "function" || isClass(fn)) {
    const names = Object.keys(mod).filter((k) => typeof mod[k] === "function" && !isClass(mod[k]));
    throw new TypeError(
      `Expected module ${spec.url} to export a function \`${spec.name}\`, got ${
        fn === undefined ? "no such export" : isClass(fn) ? "a class" : typeof fn
      }; its exported functions are: ${names.length ? names.join(", ") : "(none)"}`,
    );
  }
  return /** @type {TaskFn} */ (fn);
}

/**
 * Imports a module by its absolute URL. Through `new Function`, not a literal `import(url)`:
 * `deno publish` cannot know a URL given at run time and warns about any such import
 * (`unanalyzable-dynamic-import`, which has no switch to silence it: denoland/deno#22594), and
 * bundlers try to follow it too. The import is the same, on every runtime.
 *
 * @type {(url: string) => Promise<Record<string, unknown>>}
 */
const importUrl = /** @type {any} */ (new Function("url", "return import(url);"));

/**
 * Whether a function is a class, which cannot be called as a task.
 *
 * @param {unknown} fn
 * @returns {boolean}
 */
function isClass(fn) {
  return typeof fn === "function" && /^class\b/.test(Function.prototype.toString.call(fn));
}

/**
 * The class name of an object, for messages: its constructor's name, or its built-in tag
 * (`Generator`, `Module`) when that has none.
 *
 * @param {object} value
 * @returns {string}
 */
export function className(value) {
  const name = /** @type {{ constructor?: { name?: unknown } }} */ (value).constructor?.name;
  if (typeof name === "string" && name !== "") return name;
  return Object.prototype.toString.call(value).slice(8, -1) || "Object";
}

/**
 * Compiles an inline function's source in the global scope, so that it behaves the same in
 * every isolate: a variable it captured from where it was written is simply not there.
 *
 * @param {string} source
 * @returns {TaskFn}
 */
export function compileInline(source) {
  /** @type {unknown} */
  let fn;
  try {
    fn = new Function(`return (${source}\n);`)();
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // Method shorthand (`{ f(x) { … } }.f`) prints as `f(x) { … }`: rebuild it as a method.
    try {
      const holder = new Function(`return ({ ${source}\n});`)();
      fn = Object.values(holder)[0];
    } catch {
      throw new SyntaxError(
        `Expected an inline task to be a function expression, got source that does not parse: ${
          source.slice(0, 80)
        }`,
        { cause: error },
      );
    }
  }
  if (typeof fn !== "function") {
    throw new TypeError(`Expected an inline task to compile to a function, got ${typeof fn}`);
  }
  return /** @type {TaskFn} */ (fn);
}

/**
 * The variable name an inline function read but does not define, judging by the
 * ReferenceError it threw (V8: "x is not defined"; JavaScriptCore: "Can't find variable: x").
 *
 * @param {unknown} error
 * @returns {string | undefined}
 */
export function capturedName(error) {
  if (!(error instanceof ReferenceError)) return undefined;
  const match = /^([\p{L}\p{Nl}$_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}$]*) is not defined$/u.exec(
    error.message,
  ) ?? /^Can't find variable: (\S+)$/.exec(error.message);
  return match?.[1];
}

/**
 * Finds the first part of `value` that structured clone refuses, as a path like
 * `input.items[2].callback`. Only called after a clone failed, so its cost does not matter.
 *
 * @param {unknown} value
 * @param {string} path
 * @param {Set<unknown>} [seen]
 * @returns {{ path: string, what: string } | undefined}
 */
export function findUncloneable(value, path, seen = new Set()) {
  if (typeof value === "function") return { path, what: "a function" };
  if (typeof value === "symbol") return { path, what: "a symbol" };
  if (typeof value !== "object" || value === null || seen.has(value)) return undefined;
  seen.add(value);
  try {
    structuredClone(value);
    return undefined;
  } catch {
    // Look inside for the culprit.
  }
  /** @type {[string, unknown][]} */
  let entries;
  if (value instanceof Map) {
    entries = [...value.entries()].flatMap(([k, v], i) => [[`<key ${i}>`, k], [String(k), v]]);
  } else if (value instanceof Set) {
    entries = [...value].map((v, i) => [String(i), v]);
  } else {
    entries = Object.entries(value);
  }
  for (const [key, inner] of entries) {
    const sub = Array.isArray(value) || value instanceof Set
      ? `${path}[${key}]`
      : /^[A-Za-z_$][\w$]*$/.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`;
    const found = findUncloneable(inner, sub, seen);
    if (found) return found;
  }
  return { path, what: `an object of class ${className(value)}` };
}

const KNOWN_KEYS = new Set(["name", "message", "stack", "cause"]);

/** Most nested errors kept (`cause` chains, `AggregateError.errors`), in depth. */
const MAX_DEPTH = 16;

/**
 * Turns a thrown value into something that survives structured clone with its class name,
 * message, stack, `cause` chain and own properties (structured clone alone drops own
 * properties and subclasses everywhere, and `cause` on Bun).
 *
 * @param {unknown} error
 * @param {number} [depth]
 * @returns {WireError}
 */
export function serializeError(error, depth = 0) {
  if (!(error instanceof Error)) {
    return { name: "Error", message: String(error), thrown: { value: cloneable(error) } };
  }
  /** @type {WireError} */
  const wire = { name: String(error.name), message: String(error.message), stack: error.stack };
  const className = error.constructor?.name;
  if (className && className !== wire.name) wire.className = className;
  if ("cause" in error && depth < MAX_DEPTH) wire.cause = nested(error.cause, depth);
  // What AggregateError and SuppressedError hold (own, non-enumerable properties).
  if (error instanceof AggregateError && Array.isArray(error.errors) && depth < MAX_DEPTH) {
    wire.errors = error.errors.map((inner) => nested(inner, depth));
  }
  const suppressed = /** @type {{ error?: unknown, suppressed?: unknown }} */ (error);
  const Suppressed = /** @type {{ SuppressedError?: Function }} */ (globalThis).SuppressedError;
  if (Suppressed !== undefined && error instanceof Suppressed && depth < MAX_DEPTH) {
    wire.suppressed = [nested(suppressed.error, depth), nested(suppressed.suppressed, depth)];
  }
  /** @type {Record<string, unknown>} */
  const props = {};
  let any = false;
  for (const key of Object.keys(error)) {
    if (KNOWN_KEYS.has(key)) continue;
    props[key] = cloneable(
      /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (error))[key],
    );
    any = true;
  }
  if (any) wire.props = props;
  const captured = capturedName(error);
  if (captured !== undefined) wire.capturedName = captured;
  return wire;
}

/**
 * A nested error (a cause, one of `errors`) in its wire form; a non-error as a value.
 *
 * @param {unknown} value
 * @param {number} depth
 * @returns {WireError | { value: unknown }}
 */
function nested(value, depth) {
  return value instanceof Error ? serializeError(value, depth + 1) : { value: cloneable(value) };
}

/**
 * @param {unknown} value
 * @returns {unknown}
 */
function cloneable(value) {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) {
    return typeof value === "symbol" ? String(value) : value;
  }
  try {
    structuredClone(value);
    return value;
  } catch {
    return String(value);
  }
}

const abortedGetter = /** @type {() => boolean} */ (
  /** @type {PropertyDescriptor} */ (Object.getOwnPropertyDescriptor(
    AbortSignal.prototype,
    "aborted",
  ))
    .get
);
const cancelled = () => new DOMException("The task was cancelled", "AbortError");

/**
 * One running chunk, on a worker thread or in a worker process. Its signal is made on first
 * use only: most tasks never read `ctx.signal`, and an AbortController per chunk is a
 * measurable part of a round trip.
 */
export class Chunk {
  /**
   * @param {number} id
   * @param {() => boolean} isCancelled Whether the pool cancelled this chunk; on threads it
   *   reads shared memory, so it answers even while the task never yields.
   * @param {bigint} seed The call's base seed, from which each task's `ctx.seed` is mixed.
   */
  constructor(id, isCancelled, seed) {
    this.id = id;
    this.isCancelled = isCancelled;
    this.seed = seed;
    /** @type {AbortController | undefined} */
    this.controller = undefined;
  }

  /**
   * A signal whose `aborted` also asks `isCancelled`, so it flips for a chunk the pool
   * cancelled even while a synchronous task never lets the cancel message in.
   *
   * @returns {AbortSignal}
   */
  get signal() {
    if (this.controller !== undefined) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    const signal = controller.signal;
    const isCancelled = this.isCancelled;
    // Deno's abort() reads `aborted` itself: without the guard that would recurse.
    let aborting = false;
    const aborted = () => {
      if (!aborting && !abortedGetter.call(signal) && isCancelled()) {
        aborting = true;
        try {
          controller.abort(cancelled());
        } finally {
          aborting = false;
        }
      }
      return abortedGetter.call(signal);
    };
    Object.defineProperty(signal, "aborted", { get: aborted });
    Object.defineProperty(signal, "throwIfAborted", {
      value: () => {
        if (aborted()) throw signal.reason;
      },
    });
    aborted();
    return signal;
  }

  /** Aborts the signal, if a task asked for it. */
  abort() {
    this.controller?.abort(cancelled());
  }
}

/** What a task receives as `ctx`; made per item, so it stays a plain, fast object. */
class Context {
  /** @type {Chunk} */
  #chunk;

  /**
   * @param {number} index
   * @param {Chunk} chunk
   */
  constructor(index, chunk) {
    this.index = index;
    this.#chunk = chunk;
  }

  /** @returns {AbortSignal} */
  get signal() {
    return this.#chunk.signal;
  }

  /** @returns {number} Mixed on first use only: few tasks read it. */
  get seed() {
    return mixSeed(this.#chunk.seed, BigInt(this.index));
  }
}

/**
 * @typedef {object} ChunkHooks How a worker reports on a chunk it runs.
 * @property {(index: number) => void} at An item is about to run.
 * @property {(values: unknown[]) => void} done Every item ran.
 * @property {(index: number, error: unknown) => void} fail Item `index` threw or rejected.
 * @property {() => void} stopped The chunk was cancelled between two items.
 * @property {() => void} [waiting] A task returned a promise: nothing runs until it settles.
 * @property {() => void} [resumed] That promise settled: the chunk goes on.
 */

/**
 * Runs the items of one chunk in order. Synchronous tasks run in a plain loop; the loop only
 * goes through a promise when a task returns one.
 *
 * @param {TaskFn} fn
 * @param {Chunk} chunk
 * @param {number} base Index of the first item.
 * @param {unknown[]} items
 * @param {ChunkHooks} hooks
 */
export function runItems(fn, chunk, base, items, hooks) {
  const values = new Array(items.length);
  let k = 0;
  const fail = (/** @type {unknown} */ error) => hooks.fail(base + k, error);
  const step = () => {
    for (; k < items.length; k++) {
      if (chunk.isCancelled()) return hooks.stopped();
      hooks.at(base + k);
      let value;
      try {
        value = fn(items[k], new Context(base + k, chunk));
      } catch (error) {
        return fail(error);
      }
      if (
        value instanceof Promise ||
        (typeof value === "object" && value !== null &&
          typeof (/** @type {{ then?: unknown }} */ (value)).then === "function")
      ) {
        hooks.waiting?.();
        Promise.resolve(value).then((v) => {
          hooks.resumed?.();
          values[k++] = v;
          step();
        }, (error) => {
          hooks.resumed?.();
          fail(error);
        });
        return;
      }
      values[k] = value;
    }
    hooks.done(values);
  };
  step();
}

/**
 * Where in `values` structured clone failed, for a result that could not be sent.
 *
 * @param {unknown[]} values
 * @returns {{ offset: number, path: string, what: string }}
 */
export function findBadResult(values) {
  const offset = Math.max(values.findIndex((v) => findUncloneable(v, "result") !== undefined), 0);
  const found = findUncloneable(values[offset], "result");
  return { offset, path: found?.path ?? "result", what: found?.what ?? "a value" };
}

/**
 * This isolate's JavaScript heap in use, in bytes, for `idleMemoryLimitMb`. On Bun the heap's
 * total is used: JavaScriptCore updates its "used" figure only when it collects, so a heap
 * that grows without a collection would read as not growing at all.
 *
 * @returns {number}
 */
export function heapInUse() {
  const scope = /** @type {any} */ (globalThis);
  if (typeof scope.Deno?.memoryUsage === "function") return scope.Deno.memoryUsage().heapUsed;
  const usage = scope.process.memoryUsage();
  return scope.Bun !== undefined ? usage.heapTotal : usage.heapUsed;
}
