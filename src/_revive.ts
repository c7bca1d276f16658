/**
 * The errors fanout itself raises for a failed task (`TaskError`, `NotCloneableError`), in one
 * wording shared by every strategy, and `reviveError`: the wire reviver of
 * `worker/error_wire.js` (where both directions of the wire live), taught fanout's own classes.
 *
 * @module
 */

import type { CloneFailure, WireError } from "./protocol.ts";
import { NotCloneableError, SharedReleasedError, TaskError } from "./errors.ts";
import { findUncloneable } from "./worker/clone_failure.js";
import { reviveError as reviveWire } from "./worker/error_wire.js";

/**
 * Rebuilds an error from its wire form (see `worker/error_wire.js`), with the library's own
 * classes as themselves.
 */
export function reviveError(wire: WireError): unknown {
  return reviveWire(wire, ownError);
}

/** A task read a handle its worker had already dropped: the library's own class, as here. */
function ownError(wire: WireError): Error | undefined {
  if (wire.name !== "SharedReleasedError" || typeof wire.props?.id !== "number") return undefined;
  const error = new SharedReleasedError(wire.props.id, wire.message);
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
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
