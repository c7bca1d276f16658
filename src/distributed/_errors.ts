/**
 * Errors coming back from a `fanout worker`: rebuilt as fanout's own classes where the worker
 * raised one (a task's `TaskError` with its index, a timeout, a crash of the worker's own
 * pool), and by the usual rules of `worker/error_wire.js` otherwise.
 *
 * @module
 */

import type { WireError } from "../protocol.ts";
import { reviveError as reviveWire } from "../worker/error_wire.js";
import {
  LoadTimeoutError,
  NotCloneableError,
  SharedReleasedError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  WorkerStartError,
} from "../errors.ts";
import { PayloadTooLargeError } from "./errors.ts";

/** Rebuilds an error a worker sent, with fanout's classes as themselves. */
export function reviveError(wire: WireError): unknown {
  return reviveWire(wire, own);
}

function own(wire: WireError): Error | undefined {
  const props = wire.props ?? {};
  const { index } = props as { index?: unknown };
  let error: Error | undefined;
  switch (wire.name) {
    case "TaskError":
      if (typeof index !== "number") return undefined;
      error = new TaskError(index, wire.message, causeOf(wire));
      break;
    case "TaskTimeoutError":
      if (typeof index !== "number") return undefined;
      error = new TaskTimeoutError(index, Number(props.timeoutMs), wire.message);
      break;
    case "LoadTimeoutError":
      if (typeof index !== "number") return undefined;
      error = new LoadTimeoutError(index, String(props.module), Number(props.timeoutMs));
      error.message = wire.message;
      break;
    case "NotCloneableError":
      if (typeof index !== "number") return undefined;
      error = new NotCloneableError(index, String(props.path), wire.message, causeOf(wire));
      break;
    case "SharedReleasedError":
      error = new SharedReleasedError(Number(props.id), wire.message);
      break;
    case "PayloadTooLargeError":
      error = new RangeError(wire.message);
      Object.setPrototypeOf(error, PayloadTooLargeError.prototype);
      break;
    case "WorkerCrashedError":
    case "WorkerStartError": {
      const Class = wire.name === "WorkerCrashedError" ? WorkerCrashedError : WorkerStartError;
      error = new Class(wire.message, {
        index: typeof index === "number" ? index : undefined,
        exitCode: typeof props.exitCode === "number" ? props.exitCode : undefined,
        signal: typeof props.signal === "string" ? props.signal : undefined,
        cause: causeOf(wire)?.cause,
      });
      break;
    }
    default:
      return undefined;
  }
  if (wire.stack !== undefined) error.stack = wire.stack;
  for (const [key, value] of Object.entries(props)) {
    if (!(key in error)) (error as unknown as Record<string, unknown>)[key] = value;
  }
  return error;
}

function causeOf(wire: WireError): { cause: unknown } | undefined {
  if (wire.cause === undefined) return undefined;
  const cause = wire.cause;
  return { cause: "message" in cause ? reviveError(cause as WireError) : cause.value };
}
