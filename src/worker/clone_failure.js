/**
 * What a worker reports when results could not be sent: which result structured clone
 * refused and where in it (`findUncloneable`, which the parent also uses for inputs and shared
 * values), as a chunk's "fail" message or, in a batch of submits, as the failure of each item
 * whose result cannot be cloned.
 *
 * Plain JavaScript, like every file a worker loads (see run_task.js).
 *
 * @module
 */

/** @import { CloneFailure, EachFailure, WireError } from "../protocol.ts" */

import { serializeError } from "./error_wire.js";

/**
 * The reply for a batch whose results could not all be sent: each result that cannot be
 * cloned fails its own item with the clone's error.
 *
 * @param {unknown[]} values
 * @param {{ values: unknown[], failures: EachFailure[] } | undefined} reply What was sent.
 * @param {unknown} error What sending it threw.
 * @returns {{ values: unknown[], failures: EachFailure[] }}
 */
export function eachCloneReply(values, reply, error) {
  const failures = reply?.failures ?? [];
  for (let at = 0; at < values.length; at++) {
    const found = findUncloneable(values[at], "result");
    if (found === undefined) continue;
    values[at] = undefined;
    failures.push({ at, error: serializeError(error), clone: found });
  }
  return { values, failures };
}

/**
 * The "fail" message for results that could not be sent: which item's result, where in it
 * structured clone failed, and the error it threw.
 *
 * @param {number} id The chunk's id.
 * @param {number} base The index of the chunk's first item.
 * @param {unknown[]} values The results.
 * @param {unknown} error What sending them threw.
 * @returns {{ type: "fail", id: number, index: number, error: WireError, clone: CloneFailure }}
 */
export function resultCloneFailure(id, base, values, error) {
  const offset = Math.max(values.findIndex((v) => findUncloneable(v, "result") !== undefined), 0);
  const found = findUncloneable(values[offset], "result");
  return {
    type: "fail",
    id,
    index: base + offset,
    error: serializeError(error),
    clone: { path: found?.path ?? "result", what: found?.what ?? "a value" },
  };
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
