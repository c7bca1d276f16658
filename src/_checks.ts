/**
 * Boundary checks: every public entry point (`ParallelExecutor`, `runParallel`,
 * `runCommands`, `CE_PARALLEL`) checks what it is given here, so that one rule holds for
 * every option and every message reads the same: what was expected, and what arrived.
 *
 * - Leaving an option out (or `undefined`) means its default; `null` is a wrong value, never
 *   "unset".
 * - A value of the wrong type is a `TypeError`; one of the right type out of range a
 *   `RangeError`.
 *
 * @module
 */

import { className } from "./worker/clone_failure.js";

/** The longest delay a timer takes (a signed 32-bit count of ms); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Short description of a value for error messages: `` `0` (number) ``. */
export function describe(value: unknown): string {
  if (value === null) return "`null`";
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `an object (${className(value)})`;
  if (typeof value === "string") return `${JSON.stringify(value)} (string)`;
  return `\`${String(value)}\` (${typeof value})`;
}

/**
 * Checks an options object: a plain object (not an array), with known keys only, none of
 * them `null`.
 *
 * @throws {TypeError} Naming the object, the key, or the `null` option.
 */
export function checkKeys(what: string, options: unknown, allowed: readonly string[]): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`${what}\` to be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(
        `Expected ${what} among ${allowed.map((k) => `\`${k}\``).join(", ")}, got \`${key}\``,
      );
    }
    if ((options as Record<string, unknown>)[key] === null) {
      throw new TypeError(
        `Expected \`${key}\` to be left out (or undefined) for its default, got \`null\``,
      );
    }
  }
}

/** An integer from `min` up to `max` (no upper bound when left out). */
export function checkInteger(name: string, value: unknown, min = 1, max = Infinity): number {
  const range = max === Infinity ? `from ${min} and up` : `from ${min} to ${max}`;
  if (typeof value !== "number") {
    throw new TypeError(`Expected \`${name}\` to be an integer ${range}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected \`${name}\` to be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

/** How {@linkcode checkMs} bounds a duration. */
export interface MsRange {
  /** Whether 0 is allowed (else the duration must be above 0). */
  zero?: boolean;
  /** Whether `Infinity` is allowed, for "no limit". */
  infinite?: boolean;
}

/** A duration in ms: above 0 (or from 0), up to the longest timer (or `Infinity`, if allowed). */
export function checkMs(name: string, value: unknown, range: MsRange = {}): number {
  const expected = `Expected \`${name}\` to be a number of milliseconds ${
    range.zero ? "from 0" : "above 0"
  }, up to ${MAX_TIMER_MS}${range.infinite ? ", or `Infinity`" : ""}`;
  if (typeof value !== "number") throw new TypeError(`${expected}, got ${describe(value)}`);
  if (range.infinite && value === Infinity) return value;
  if (!(range.zero ? value >= 0 : value > 0) || !(value <= MAX_TIMER_MS)) {
    throw new RangeError(`${expected}, got ${describe(value)}`);
  }
  return value;
}

/** A boolean. */
export function checkFlag(name: string, value: unknown): boolean {
  if (typeof value === "boolean") return value;
  throw new TypeError(`Expected \`${name}\` to be a boolean, got ${describe(value)}`);
}

/** A function, or nothing. */
export function checkFunction<F>(name: string, value: F | undefined): F | undefined {
  if (value === undefined || typeof value === "function") return value;
  throw new TypeError(`Expected \`${name}\` to be a function, got ${describe(value)}`);
}

/** An `AbortSignal`, or nothing. */
export function checkSignal(value: unknown, name = "signal"): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw new TypeError(`Expected \`${name}\` to be an AbortSignal, got ${describe(value)}`);
}
