/**
 * The bare baseline's framing for Deno (length-prefixed `node:v8` messages, no marker), shared
 * by the parent side in _bare_spawn.ts and the child in _bare_process.mjs.
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";

/**
 * A message as a frame: 4-byte little-endian length, then its V8 serialization.
 *
 * @param {unknown} message
 * @returns {Uint8Array}
 */
export function frame(message) {
  const body = serialize(message);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
}

/**
 * A function that takes chunks of a byte stream and hands each complete message to `onMessage`.
 *
 * @param {(message: unknown) => void} onMessage
 * @returns {(chunk: Uint8Array) => void}
 */
export function unframer(onMessage) {
  let buffer = new Uint8Array(0);
  return (chunk) => {
    if (buffer.length === 0) buffer = chunk;
    else {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
    }
    while (buffer.length >= 4) {
      const size = new DataView(buffer.buffer, buffer.byteOffset, 4).getUint32(0, true);
      if (buffer.length < 4 + size) break;
      const body = buffer.subarray(4, 4 + size);
      buffer = buffer.subarray(4 + size);
      onMessage(deserialize(body));
    }
  };
}
