/**
 * The boundary check every options object goes through, so that all of them follow one rule.
 *
 * @module
 */

import { describe } from "./task.ts";

/**
 * Checks an options object: a plain object (not an array), with known keys only. One rule for
 * every option: leaving it out (or `undefined`) means the default; `null` is a wrong value,
 * never "unset".
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
