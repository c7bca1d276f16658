/**
 * Rebuilding errors that crossed a thread boundary, and the one wording of a task failure
 * shared by every strategy.
 *
 * @module
 */

import type { CloneFailure, WireError } from "./protocol.ts";
import { NotCloneableError, SharedReleasedError, TaskError } from "./errors.ts";
import { findUncloneable } from "./worker/run_task.js";

type ErrorClass = new (message?: string, options?: { cause?: unknown }) => Error;

const BUILT_IN: Record<string, ErrorClass> = {
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
 */
export function reviveError(wire: WireError): unknown {
  if (wire.thrown !== undefined) return wire.thrown.value;
  if (wire.name === "SharedReleasedError" && typeof wire.props?.id === "number") {
    // A task read a handle its worker had already dropped: the library's own class, as here.
    const error = new SharedReleasedError(wire.props.id, wire.message);
    if (wire.stack !== undefined) error.stack = wire.stack;
    return error;
  }
  const error = construct(wire);
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
      value: reviveNested(wire.cause),
      writable: true,
      configurable: true,
    });
  }
  if (wire.props !== undefined) Object.assign(error, wire.props);
  return error;
}

/** A nested error (a cause, one of `errors`), or the non-error value that was thrown. */
function reviveNested(wire: WireError | { value: unknown }): unknown {
  return "value" in wire && !("message" in wire) ? wire.value : reviveError(wire as WireError);
}

/**
 * The error object to fill in: the built-in class by name (`AggregateError` and
 * `SuppressedError` with what they hold, `DOMException` with its name), else `Error`.
 */
function construct(wire: WireError): Error {
  // `errors` and `suppressed` are only sent for instances (subclasses included).
  if (wire.errors !== undefined) {
    return new AggregateError(wire.errors.map(reviveNested), wire.message);
  }
  const Suppressed = (globalThis as {
    SuppressedError?: new (error: unknown, suppressed: unknown, message?: string) => Error;
  }).SuppressedError;
  if (wire.suppressed !== undefined && Suppressed !== undefined) {
    const [error, suppressed] = wire.suppressed;
    return new Suppressed(reviveNested(error), reviveNested(suppressed), wire.message);
  }
  if ((wire.className ?? wire.name) === "DOMException" && typeof DOMException === "function") {
    return new DOMException(wire.message, wire.name);
  }
  return new (BUILT_IN[wire.name] ?? Error)(wire.message);
}

/**
 * The error a call rejects with when task `index` threw `cause`. An inline function that read
 * a variable it does not define gets a message that says how to fix it.
 */
export function taskFailure(index: number, cause: unknown, capturedName?: string): TaskError {
  if (capturedName !== undefined) {
    return new TaskError(
      index,
      `Task ${index} failed: the inline function uses \`${capturedName}\`, which is not defined ` +
        `inside it. Inline functions are sent as source and must be self-contained: pass the ` +
        `value through the input, or use a module task: tasks(new URL("./work.ts", import.meta.url))`,
      { cause },
    );
  }
  const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return new TaskError(index, `Task ${index} failed: ${what}`, { cause });
}

/** The error of task `index` whose module could not be imported, or had no such export. */
export function loadFailure(index: number, error: unknown): TaskError {
  return new TaskError(
    index,
    `Task ${index} failed: its task could not be loaded: ${
      error instanceof Error ? error.message : String(error)
    }`,
    { cause: error },
  );
}

/** The error for an input or result of task `index` that could not be cloned. */
export function cloneError(
  side: "input" | "result",
  index: number,
  found: CloneFailure,
  cause: unknown,
): NotCloneableError {
  return new NotCloneableError(
    index,
    found.path,
    `Expected the ${side} of task ${index} to be cloneable, got ${found.what} at \`${found.path}\``,
    { cause },
  );
}

/** Names the input that made sending a chunk throw, or passes the error on. */
export function inputCloneError(base: number, items: unknown[], error: unknown): unknown {
  for (let k = 0; k < items.length; k++) {
    const found = findUncloneable(items[k], "input");
    if (found !== undefined) return cloneError("input", base + k, found, error);
  }
  return error;
}
