/**
 * Plain data as JSON, for frames (see frames.js): on Deno `node:v8` costs several times as much
 * as JSON for a small message. Plain data is what structured clone and a JSON round trip give
 * back alike: objects whose prototype is `Object.prototype` or `null`, arrays without holes or
 * extra properties, strings, numbers, booleans, `null`, `undefined` and BigInts, with no object
 * reached twice. The values JSON has no word for (`undefined`, `NaN`, `±Infinity`, `-0`,
 * BigInts) go as strings that begin with a NUL character ("tagged"); a real string that begins
 * with one makes its message go in V8's format instead, so task data is never read as a tag.
 *
 * @module
 */

import { types } from "node:util";

/**
 * Most values (array elements and object properties, counted together) and string characters a
 * message may hold to go as JSON. Past these `node:v8` is about as fast or faster (long strings,
 * long arrays of numbers), and the check below stays cheap when it gives up.
 */
const PLAIN_MAX_VALUES = 512;
const PLAIN_MAX_CHARS = 4096;

/** Returned by {@linkcode plainCopy} for a value that only V8's format carries faithfully. */
const NOT_PLAIN = Symbol("not plain");

const { isProxy } = types;
const { getPrototypeOf, keys: keysOf } = Object;
const { isArray } = Array;
const objectTag = Object.prototype.toString;
const OBJECT_PROTOTYPE = Object.prototype;
const ARRAY_PROTOTYPE = Array.prototype;

/** The tagged strings of a `PLAIN_TAGGED` body: NUL, then what the value is. */
const TAG_UNDEFINED = "\u0000u";
const TAG_NAN = "\u0000n";
const TAG_INFINITY = "\u0000+";
const TAG_MINUS_INFINITY = "\u0000-";
const TAG_MINUS_ZERO = "\u0000z";
/** Followed by the BigInt in decimal. */
const TAG_BIGINT = "\u0000b";

/**
 * What one call of {@linkcode plainCopy} has gone through so far.
 *
 * @typedef {object} PlainWalk
 * @property {number} values Array elements and object properties seen.
 * @property {number} chars String characters seen, in values and keys.
 * @property {boolean} tagged Whether the copy holds a tagged string (see {@linkcode tagged}).
 * @property {Set<object>} seen The objects seen: one reached twice (a cycle, or a shared
 *   reference, which structured clone keeps) cannot go as JSON.
 */

/**
 * `message` as JSON text, when it is plain data (see {@linkcode encodeFrame}); otherwise
 * `undefined`. The text is made from a copy taken in one pass, so that each property is read
 * once (a getter runs once, as under `node:v8`, unless the message turns out not to be plain)
 * and `JSON.stringify` meets only fresh objects and arrays.
 *
 * @param {unknown} message
 * @returns {{ text: string, tagged: boolean } | undefined}
 */
export function plainJson(message) {
  // A toJSON on the prototypes would run on the copy: leave such a program to V8's format.
  if ("toJSON" in ARRAY_PROTOTYPE) return undefined;
  /** @type {PlainWalk} */
  const walk = { values: 0, chars: 0, tagged: false, seen: new Set() };
  const copy = plainCopy(message, walk);
  if (copy === NOT_PLAIN) return undefined;
  return { text: JSON.stringify(copy), tagged: walk.tagged };
}

/**
 * A copy of `value` that `JSON.stringify` writes as it is, with the values JSON has no word for
 * as tagged strings; or {@linkcode NOT_PLAIN}.
 *
 * @param {unknown} value
 * @param {PlainWalk} walk
 * @returns {unknown}
 */
function plainCopy(value, walk) {
  switch (typeof value) {
    case "string":
      // A string that begins with NUL would read as a tagged one.
      if (value.length > 0 && value.charCodeAt(0) === 0) return NOT_PLAIN;
      return (walk.chars += value.length) > PLAIN_MAX_CHARS ? NOT_PLAIN : value;
    case "number":
      if (value - value === 0 && (value !== 0 || 1 / value > 0)) return value;
      walk.tagged = true;
      return value !== value
        ? TAG_NAN
        : value === 0
        ? TAG_MINUS_ZERO
        : value > 0
        ? TAG_INFINITY
        : TAG_MINUS_INFINITY;
    case "boolean":
      return value;
    case "undefined":
      walk.tagged = true;
      return TAG_UNDEFINED;
    case "bigint":
      walk.tagged = true;
      return TAG_BIGINT + value;
    case "object": {
      if (value === null) return null;
      // Checked before anything is read from it: a proxy's traps do not run.
      if (walk.seen.has(value) || isProxy(value)) return NOT_PLAIN;
      walk.seen.add(value);
      const proto = getPrototypeOf(value);
      if (isArray(value)) {
        const length = value.length;
        // Holes, and properties besides the elements, are kept by structured clone only.
        if (
          proto !== ARRAY_PROTOTYPE || (walk.values += length) > PLAIN_MAX_VALUES ||
          keysOf(value).length !== length
        ) {
          return NOT_PLAIN;
        }
        const out = new Array(length);
        for (let i = 0; i < length; i++) {
          const item = value[i];
          if (item === undefined && !(i in value)) return NOT_PLAIN;
          const copy = plainCopy(item, walk);
          if (copy === NOT_PLAIN) return NOT_PLAIN;
          out[i] = copy;
        }
        return out;
      }
      // `arguments` and module namespaces (which structured clone refuses) have such a tag.
      if (
        (proto !== OBJECT_PROTOTYPE && proto !== null) ||
        objectTag.call(value) !== "[object Object]"
      ) {
        return NOT_PLAIN;
      }
      const keys = keysOf(value);
      if ((walk.values += keys.length) > PLAIN_MAX_VALUES) return NOT_PLAIN;
      /** @type {Record<string, unknown>} */
      const out = {};
      for (const key of keys) {
        // JSON.parse makes "__proto__" an own property, but assigning it here would not.
        if (key === "__proto__" || (walk.chars += key.length) > PLAIN_MAX_CHARS) return NOT_PLAIN;
        const copy = plainCopy(/** @type {Record<string, unknown>} */ (value)[key], walk);
        if (copy === NOT_PLAIN) return NOT_PLAIN;
        out[key] = copy;
      }
      return out;
    }
    default:
      // Functions and symbols: structured clone refuses them, and V8's format says how.
      return NOT_PLAIN;
  }
}

/**
 * The value a tagged string stands for.
 *
 * @param {string} text Begins with NUL.
 * @returns {unknown}
 */
function tagged(text) {
  switch (text) {
    case TAG_UNDEFINED:
      return undefined;
    case TAG_NAN:
      return NaN;
    case TAG_INFINITY:
      return Infinity;
    case TAG_MINUS_INFINITY:
      return -Infinity;
    case TAG_MINUS_ZERO:
      return -0;
  }
  if (text.startsWith(TAG_BIGINT)) return BigInt(text.slice(TAG_BIGINT.length));
  throw new TypeError(`Expected a tagged value, got ${JSON.stringify(text)}`);
}

/**
 * `value` (parsed JSON) with its tagged strings replaced by the values they stand for, in place.
 *
 * @param {unknown} value
 * @returns {unknown}
 */
function untag(value) {
  if (typeof value === "string") {
    return value.length > 0 && value.charCodeAt(0) === 0 ? tagged(value) : value;
  }
  if (typeof value !== "object" || value === null) return value;
  if (isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (typeof item === "string" || typeof item === "object") value[i] = untag(item);
    }
    return value;
  }
  const record = /** @type {Record<string, unknown>} */ (value);
  for (const key of keysOf(record)) {
    const item = record[key];
    if (typeof item !== "string" && typeof item !== "object") continue;
    const revived = untag(item);
    if (revived === item) continue;
    // An own "__proto__" (which JSON.parse makes) is replaced, not assigned to the prototype.
    if (key === "__proto__") {
      Object.defineProperty(record, key, {
        value: revived,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    } else record[key] = revived;
  }
  return value;
}

/**
 * Parses a plain body's JSON text, replacing tagged strings by what they stand for when
 * `hasTags`.
 *
 * @param {string} text
 * @param {boolean} hasTags
 * @returns {unknown}
 */
export function parsePlain(text, hasTags) {
  const value = JSON.parse(text);
  return hasTags ? untag(value) : value;
}
