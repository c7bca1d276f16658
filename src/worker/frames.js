/**
 * Messages over a byte stream, for Deno worker processes (Deno.Command offers no IPC channel,
 * only stdin and stdout). A frame is an 8-byte marker, a 4-byte little-endian length, then the
 * message in V8's serialization format (`node:v8`), so values cross as they would through
 * structured clone. Bytes outside frames — a task's own `console.log` on the worker's stdout —
 * are handed on as they are, so the parent can pass them through.
 *
 * Plain JavaScript, like every file a worker loads (see run_task.js).
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";

/** Starts every frame; chosen so that text output cannot contain it. */
const MARKER = new Uint8Array([0x00, 0xfa, 0x66, 0x61, 0x6e, 0x6f, 0x75, 0x74]);
const HEADER = MARKER.length + 4;

/**
 * Encodes one message as a frame. Throws synchronously when the message cannot be serialized.
 *
 * @param {unknown} message
 * @returns {Uint8Array}
 */
export function encodeFrame(message) {
  const body = serialize(message);
  const frame = new Uint8Array(HEADER + body.length);
  frame.set(MARKER, 0);
  new DataView(frame.buffer).setUint32(MARKER.length, body.length, true);
  frame.set(body, HEADER);
  return frame;
}

/** Cuts a byte stream into messages and the bytes between them. */
export class FrameReader {
  /** @type {Uint8Array[]} */
  #chunks = [];
  #length = 0;
  /** Bytes needed before the frame at the start of the buffer is complete. */
  #need = 0;

  /**
   * @param {(message: unknown) => void} onMessage Receives each message.
   * @param {(bytes: Uint8Array) => void} onOther Receives bytes that are not part of a frame.
   */
  constructor(onMessage, onOther) {
    this.onMessage = onMessage;
    this.onOther = onOther;
  }

  /** @param {Uint8Array} chunk */
  push(chunk) {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    // A large frame arrives in many chunks: join them once, when it is complete.
    if (this.#length < this.#need) return;
    let buffer = this.#flatten();
    for (;;) {
      const at = indexOfMarker(buffer);
      if (at < 0) {
        // Keep a tail that may be the start of a marker; pass the rest on.
        const keep = partialMarker(buffer);
        if (buffer.length > keep) this.onOther(buffer.subarray(0, buffer.length - keep));
        return this.#keep(buffer.subarray(buffer.length - keep), 0);
      }
      if (at > 0) this.onOther(buffer.subarray(0, at));
      if (buffer.length - at < HEADER) return this.#keep(buffer.subarray(at), HEADER);
      const size = new DataView(buffer.buffer, buffer.byteOffset + at + MARKER.length, 4)
        .getUint32(0, true);
      if (buffer.length - at - HEADER < size) {
        return this.#keep(buffer.subarray(at), HEADER + size);
      }
      const body = buffer.subarray(at + HEADER, at + HEADER + size);
      buffer = buffer.subarray(at + HEADER + size);
      this.#keep(buffer, 0);
      this.onMessage(deserialize(body));
      if (buffer.length === 0) return;
    }
  }

  /** @returns {Uint8Array} */
  #flatten() {
    if (this.#chunks.length === 1) return this.#chunks[0];
    const all = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    return all;
  }

  /**
   * @param {Uint8Array} rest
   * @param {number} need
   */
  #keep(rest, need) {
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#length = rest.length;
    this.#need = need;
  }
}

/**
 * Where the first whole marker starts, or -1.
 *
 * @param {Uint8Array} buffer
 * @returns {number}
 */
function indexOfMarker(buffer) {
  for (let at = buffer.indexOf(MARKER[0]); at >= 0; at = buffer.indexOf(MARKER[0], at + 1)) {
    if (at + MARKER.length > buffer.length) return -1;
    let k = 1;
    while (k < MARKER.length && buffer[at + k] === MARKER[k]) k++;
    if (k === MARKER.length) return at;
  }
  return -1;
}

/**
 * Length of the longest end of `buffer` that is the start of a marker.
 *
 * @param {Uint8Array} buffer
 * @returns {number}
 */
function partialMarker(buffer) {
  for (let keep = Math.min(MARKER.length - 1, buffer.length); keep > 0; keep--) {
    let k = 0;
    while (k < keep && buffer[buffer.length - keep + k] === MARKER[k]) k++;
    if (k === keep) return keep;
  }
  return 0;
}
