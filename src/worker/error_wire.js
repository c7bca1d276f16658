/**
 * An error's wire form (`WireError` in src/protocol.ts), both ways: {@linkcode serializeError}
 * on the side that caught it (a worker thread or process), {@linkcode reviveError} on the side
 * that rethrows it. Kept in one file so that what one writes and the other reads can be seen
 * together.
 *
 * Structured clone alone would lose most of an error: own properties and subclasses everywhere,
 * `cause` on Bun. So an error goes as its name, class name, message, stack, `cause` chain, what
 * an `AggregateError` or `SuppressedError` holds, and its own cloneable properties; a thrown
 * non-error goes as the value itself.
 *
 * Plain JavaScript, like every file a worker loads (see run_task.js).
 *
 * @module
 */

/** @import { WireError } from "../protocol.ts" */

import { capturedName } from "./load_task.js";

const KNOWN_KEYS = new Set(["name", "message", "stack", "cause"]);

/** Most nested errors kept (`cause` chains, `AggregateError.errors`), in depth. */
const MAX_DEPTH = 16;

/**
 * Turns a thrown value into its wire form, which survives structured clone.
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
 * The value itself if structured clone takes it, else its string form.
 *
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

/** @typedef {new (message?: string, options?: { cause?: unknown }) => Error} ErrorClass */
/** @typedef {new (error: unknown, suppressed: unknown, message?: string) => Error} SuppressedClass */

/** @type {Record<string, ErrorClass>} */
const BUILT_IN = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Rebuilds an error from its wire form: built-in classes come back as themselves; other
 * classes come back as `Error` carrying the original `name` (or, for a subclass that never
 * set `name`, its class name), with message, stack, `cause` and own properties.
 *
 * @param {WireError} wire
 * @param {(wire: WireError) => Error | undefined} [own] Rebuilds the errors of a class this
 *   side knows better (the library's own), at every depth; `undefined` leaves it to the rules
 *   above.
 * @returns {unknown}
 */
export function reviveError(wire, own) {
  if (wire.thrown !== undefined) return wire.thrown.value;
  const known = own?.(wire);
  if (known !== undefined) return known;
  const error = construct(wire, own);
  const name = wire.name === "Error" && wire.className !== undefined ? wire.className : wire.name;
  if (error.name !== name) {
    Object.defineProperty(error, "name", { value: name, writable: true, configurable: true });
  }
  if (wire.stack !== undefined) {
    Object.defineProperty(error, "stack", {
      value: wire.stack,
      writable: true,
      configurable: true,
    });
  }
  if (wire.cause !== undefined) {
    Object.defineProperty(error, "cause", {
      value: reviveNested(wire.cause, own),
      writable: true,
      configurable: true,
    });
  }
  if (wire.props !== undefined) Object.assign(error, wire.props);
  return error;
}

/**
 * A nested error (a cause, one of `errors`), or the non-error value that was thrown.
 *
 * @param {WireError | { value: unknown }} wire
 * @param {((wire: WireError) => Error | undefined) | undefined} own
 * @returns {unknown}
 */
function reviveNested(wire, own) {
  return "value" in wire && !("message" in wire)
    ? wire.value
    : reviveError(/** @type {WireError} */ (wire), own);
}

/**
 * The error object to fill in: the built-in class by name (`AggregateError` and
 * `SuppressedError` with what they hold, `DOMException` with its name), else `Error`.
 *
 * @param {WireError} wire
 * @param {((wire: WireError) => Error | undefined) | undefined} own
 * @returns {Error}
 */
function construct(wire, own) {
  // `errors` and `suppressed` are only sent for instances (subclasses included).
  if (wire.errors !== undefined) {
    return new AggregateError(wire.errors.map((inner) => reviveNested(inner, own)), wire.message);
  }
  const Suppressed = /** @type {{ SuppressedError?: SuppressedClass }} */ (globalThis)
    .SuppressedError;
  if (wire.suppressed !== undefined && Suppressed !== undefined) {
    const [error, suppressed] = wire.suppressed;
    return new Suppressed(reviveNested(error, own), reviveNested(suppressed, own), wire.message);
  }
  if ((wire.className ?? wire.name) === "DOMException" && typeof DOMException === "function") {
    return new DOMException(wire.message, wire.name);
  }
  return new (BUILT_IN[wire.name] ?? Error)(wire.message);
}
