/**
 * Messages over a byte stream, for Deno worker processes (Deno.Command offers no IPC channel,
 * only stdin and stdout). A frame is a marker, a 4-byte little-endian length, then the message.
 * Values cross as they would through structured clone: a message goes in V8's serialization
 * format (`node:v8`), or, when it is made only of plain data, as JSON (see
 * {@linkcode encodeFrame}: on Deno `node:v8` costs several times as much for a small message).
 * Bytes outside frames — a task's own `console.log` on the worker's stdout — are handed on as
 * they are, so the parent can pass them through.
 *
 * The worker's stdout is shared with the tasks it runs, so the marker must be something no task
 * prints by accident: a fixed prefix followed by a token of {@linkcode TOKEN_BYTES} random
 * bytes, drawn by the parent for each process and sent as the first bytes of the child's stdin
 * (never in argv or the environment, which tasks and `ps` can see). A task that prints the
 * prefix, a length, or any binary garbage is only printing output; a frame that does carry the
 * token but cannot be decoded is corruption, and is reported instead of wedging the stream.
 *
 * Plain JavaScript, like every file a worker loads (see run_task.js).
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";
import { parsePlain, plainJson } from "./plain_json.js";

/** Starts every marker; the per-process token follows. */
const PREFIX = [0x00, 0xfa, 0x66, 0x61, 0x6e, 0x6f, 0x75, 0x74]; // "\0\xfafanout"

/**
 * Length of the per-process token: 128 bits, so that output matching a marker by chance is
 * out of the question.
 */
export const TOKEN_BYTES = 16;

/**
 * Largest message body a frame carries (1 GiB). Far above any message worth sending through a
 * pipe; a header announcing more is corruption, and is reported at once instead of being
 * waited for. `encodeFrame` refuses to build a larger frame, so the two ends agree.
 */
export const MAX_BODY_BYTES = 2 ** 30;

const LENGTH_BYTES = 4;

/**
 * The first byte of a body says how it is encoded. V8's format always begins with its version
 * tag (0xff), and any body that begins with neither of the bytes below is read as V8 data, as
 * every body was before JSON bodies existed.
 *
 * - `PLAIN`: UTF-8 JSON, read with `JSON.parse` as it is;
 * - `PLAIN_TAGGED`: UTF-8 JSON in which some strings stand for values JSON has no word for
 *   (`undefined`, `NaN`, `±Infinity`, `-0`, BigInts): each is a string that begins with a NUL
 *   character (see plain_json.js); a real string that begins with one is never sent as JSON.
 */
const PLAIN = 0x4a; // "J"
const PLAIN_TAGGED = 0x6a; // "j"

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Where JSON frames are assembled (grown on demand); each frame is copied out of it. */
let scratch = new Uint8Array(4096);

/**
 * The marker of a channel: the fixed prefix followed by the channel's token.
 *
 * @param {Uint8Array} token {@linkcode TOKEN_BYTES} random bytes.
 * @returns {Uint8Array}
 */
export function frameMarker(token) {
  if (token.length !== TOKEN_BYTES) {
    throw new RangeError(`Expected a token of ${TOKEN_BYTES} bytes, got ${token.length} bytes`);
  }
  const marker = new Uint8Array(PREFIX.length + TOKEN_BYTES);
  marker.set(PREFIX, 0);
  marker.set(token, PREFIX.length);
  return marker;
}

/**
 * Encodes one message as a frame of the channel with this marker. Throws synchronously when
 * the message cannot be serialized, or is larger than {@linkcode MAX_BODY_BYTES} serialized.
 *
 * A message made only of plain data — objects whose prototype is `Object.prototype` or `null`,
 * arrays without holes or extra properties, strings, numbers, booleans, `null`, `undefined` and
 * BigInts, with no object reached twice, within {@linkcode PLAIN_MAX_VALUES} values and
 * {@linkcode PLAIN_MAX_CHARS} string characters — goes as JSON; structured clone would give the
 * receiver the same value. Anything else goes in V8's format.
 *
 * @param {unknown} message
 * @param {Uint8Array} marker From {@linkcode frameMarker}.
 * @returns {Uint8Array}
 */
export function encodeFrame(message, marker) {
  const header = marker.length + LENGTH_BYTES;
  const plain = plainJson(message);
  if (plain !== undefined) {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    const most = header + 1 + plain.text.length * 3;
    if (scratch.length < most) scratch = new Uint8Array(Math.max(most, scratch.length * 2));
    scratch.set(marker, 0);
    scratch[header] = plain.tagged ? PLAIN_TAGGED : PLAIN;
    const { written } = encoder.encodeInto(plain.text, scratch.subarray(header + 1));
    const frame = scratch.slice(0, header + 1 + written);
    new DataView(frame.buffer).setUint32(marker.length, 1 + written, true);
    return frame;
  }
  const body = serialize(message);
  if (body.length > MAX_BODY_BYTES) {
    throw new RangeError(
      `Expected a message of at most ${MAX_BODY_BYTES} bytes once serialized, got ` +
        `${body.length} bytes`,
    );
  }
  const frame = new Uint8Array(header + body.length);
  frame.set(marker, 0);
  new DataView(frame.buffer).setUint32(marker.length, body.length, true);
  frame.set(body, header);
  return frame;
}

/**
 * Decodes a frame's body (see {@linkcode PLAIN}).
 *
 * @param {Uint8Array} body
 * @returns {unknown}
 */
function decodeBody(body) {
  const kind = body[0];
  if (kind !== PLAIN && kind !== PLAIN_TAGGED) {
    try {
      return deserialize(body);
    } catch (error) {
      throw new TypeError(
        `Expected a frame body in V8's serialization format, got ${body.length} bytes that do ` +
          `not deserialize (${error instanceof Error ? error.message : String(error)})`,
        { cause: error },
      );
    }
  }
  try {
    return parsePlain(decoder.decode(body.subarray(1)), kind === PLAIN_TAGGED);
  } catch (error) {
    throw new TypeError(
      `Expected a frame body of JSON, got ${body.length} bytes that do not parse ` +
        `(${error instanceof Error ? error.message : String(error)})`,
      { cause: error },
    );
  }
}

/**
 * What a {@linkcode FrameReader} hands on.
 *
 * @typedef {object} FrameSink
 * @property {(message: unknown) => void} message Receives each message.
 * @property {(bytes: Uint8Array) => void} other Receives bytes that are not part of a frame.
 * @property {(error: Error) => void} corrupt Called once, for a frame that carries the marker
 *   but cannot be decoded; nothing is handed on after it (the stream has lost its framing).
 */

/** Cuts a byte stream into messages and the bytes between them. */
export class FrameReader {
  /** @type {Uint8Array} */
  #marker;
  /** @type {number} */
  #header;
  /** @type {FrameSink} */
  #sink;
  /** @type {Uint8Array[]} */
  #chunks = [];
  #length = 0;
  /** Bytes needed before the frame at the start of the buffer is complete. */
  #need = 0;
  /** Set once a corrupt frame was seen: the rest of the stream is dropped. */
  #failed = false;

  /**
   * @param {Uint8Array} marker The channel's marker, from {@linkcode frameMarker}.
   * @param {FrameSink} sink Where messages, other bytes and corruption go.
   */
  constructor(marker, sink) {
    this.#marker = marker;
    this.#header = marker.length + LENGTH_BYTES;
    this.#sink = sink;
  }

  /**
   * Takes the next bytes of the stream.
   *
   * @param {Uint8Array} chunk
   */
  push(chunk) {
    if (this.#failed) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    // A large frame arrives in many chunks: join them once, when it is complete.
    if (this.#length < this.#need) return;
    let buffer = this.#flatten();
    const marker = this.#marker;
    for (;;) {
      const at = indexOf(buffer, marker);
      if (at < 0) {
        // Keep a tail that may be the start of a marker; pass the rest on.
        const keep = partialMarker(buffer, marker);
        if (buffer.length > keep) this.#sink.other(buffer.subarray(0, buffer.length - keep));
        return this.#keep(buffer.subarray(buffer.length - keep), 0);
      }
      if (at > 0) this.#sink.other(buffer.subarray(0, at));
      if (buffer.length - at < this.#header) return this.#keep(buffer.subarray(at), this.#header);
      const size = readLength(buffer, at + marker.length);
      if (size > MAX_BODY_BYTES) {
        return this.#fail(
          new RangeError(
            `Expected a frame of at most ${MAX_BODY_BYTES} bytes, got a header announcing ` +
              `${size} bytes`,
          ),
        );
      }
      const end = at + this.#header + size;
      if (buffer.length < end) return this.#keep(buffer.subarray(at), end - at);
      const body = buffer.subarray(at + this.#header, end);
      buffer = buffer.subarray(end);
      this.#keep(buffer, 0);
      let message;
      try {
        message = decodeBody(body);
      } catch (error) {
        return this.#fail(/** @type {Error} */ (error));
      }
      this.#sink.message(message);
      if (buffer.length === 0) return;
    }
  }

  /**
   * The stream ended: bytes held back because they might have begun a marker are output
   * after all. A frame cut short (its writer died) is dropped; its writer's exit says why.
   */
  end() {
    if (this.#failed || this.#length === 0) return;
    const rest = this.#flatten();
    this.#keep(new Uint8Array(0), 0);
    if (indexOf(rest, this.#marker) !== 0) this.#sink.other(rest);
  }

  /** @param {Error} error */
  #fail(error) {
    this.#failed = true;
    this.#keep(new Uint8Array(0), 0);
    this.#sink.corrupt(error);
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
 * The little-endian 32-bit length at `offset` in `buffer`.
 *
 * @param {Uint8Array} buffer
 * @param {number} offset
 * @returns {number}
 */
function readLength(buffer, offset) {
  return (buffer[offset] | (buffer[offset + 1] << 8) | (buffer[offset + 2] << 16)) +
    buffer[offset + 3] * 0x1000000;
}

/**
 * Where the first whole `marker` starts in `buffer`, or -1.
 *
 * @param {Uint8Array} buffer
 * @param {Uint8Array} marker
 * @returns {number}
 */
function indexOf(buffer, marker) {
  for (let at = buffer.indexOf(marker[0]); at >= 0; at = buffer.indexOf(marker[0], at + 1)) {
    if (at + marker.length > buffer.length) return -1;
    let k = 1;
    while (k < marker.length && buffer[at + k] === marker[k]) k++;
    if (k === marker.length) return at;
  }
  return -1;
}

/**
 * Length of the longest end of `buffer` that is the start of `marker`.
 *
 * @param {Uint8Array} buffer
 * @param {Uint8Array} marker
 * @returns {number}
 */
function partialMarker(buffer, marker) {
  for (let keep = Math.min(marker.length - 1, buffer.length); keep > 0; keep--) {
    let k = 0;
    while (k < keep && buffer[buffer.length - keep + k] === marker[k]) k++;
    if (k === keep) return keep;
  }
  return 0;
}
