/**
 * How large an input is, roughly, without cloning it: auto keeps large payloads off processes
 * (which would copy them to each) and reads the size from here.
 *
 * @module
 */

/** Inputs from this size up never go to processes (copied to each); threads share them. */
export const LARGE_INPUT_BYTES = 10_000_000;

/** The size of the typed array or buffer behind a handle; 0 for other values or a released one. */
function sharedBytes(handle: { value?: unknown }): number {
  try {
    const value = handle.value;
    if (ArrayBuffer.isView(value)) return value.byteLength;
    if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return value.byteLength;
  } catch {
    // Released: it will fail the call anyway.
  }
  return 0;
}

/**
 * Roughly how many bytes structured clone would write for `value`: exact for buffers and
 * typed arrays, close for strings and numbers. A `share()` handle counts with the size of the
 * array it shares: it crosses as a few bytes, but the tasks read a payload that large. Stops counting past `LARGE_INPUT_BYTES`, so a huge input costs little to size.
 */
export function estimateBytes(value: unknown): number {
  let total = 0;
  const stack: unknown[] = [value];
  const seen = new Set<object>();
  while (stack.length > 0 && total < LARGE_INPUT_BYTES) {
    const v = stack.pop();
    if (typeof v === "string") total += 2 * v.length + 4;
    else if (typeof v !== "object" || v === null) total += 9;
    else if (seen.has(v)) total += 4;
    else {
      seen.add(v);
      if (ArrayBuffer.isView(v)) total += v.byteLength + 16;
      else if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) {
        total += v.byteLength + 8;
      } else if (typeof (v as Record<string, unknown>)["fanout.shared"] === "number") {
        // A share() handle crosses as a few bytes, but it names a payload every task reads:
        // a large shared array is a large payload, best on threads (one memory).
        total += 32 + sharedBytes(v as { value?: unknown });
      } else if (v instanceof Map) { for (const [k, x] of v) stack.push(k, x); }
      else if (v instanceof Set) { for (const x of v) stack.push(x); }
      else if (Array.isArray(v)) { for (const x of v) stack.push(x); }
      else {
        for (const key of Object.keys(v)) {
          total += key.length + 2;
          stack.push((v as Record<string, unknown>)[key]);
        }
      }
    }
  }
  return total;
}
