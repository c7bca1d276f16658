/**
 * Output capture of a command: keeps the first `maxOutputBytes` of a stream and drops the
 * rest, so that a command writing without end never blocks on a full pipe nor fills memory.
 *
 * @module
 */

/** Keeps up to `max` bytes of a stream; the rest is counted as cut and dropped. */
export class Capture {
  readonly #max: number;
  readonly #chunks: Uint8Array[] = [];
  #size = 0;
  truncated = false;

  constructor(max: number) {
    this.#max = max;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const room = this.#max - this.#size;
    if (chunk.length > room) {
      this.truncated = true;
      if (room === 0) return;
      chunk = chunk.slice(0, room);
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }

  /** The kept bytes, as they came. */
  bytes(): Uint8Array {
    if (this.#chunks.length === 1) return this.#chunks[0];
    const bytes = new Uint8Array(this.#size);
    let at = 0;
    for (const chunk of this.#chunks) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    return bytes;
  }

  /** The kept bytes as UTF-8; a character cut in half at the limit is left out. */
  text(): string {
    let bytes = this.bytes();
    if (this.truncated) bytes = bytes.subarray(0, wholeUtf8Length(bytes));
    return decoder.decode(bytes);
  }
}

const decoder = new TextDecoder();

/** Length of `bytes` without a trailing, incomplete UTF-8 sequence. */
function wholeUtf8Length(bytes: Uint8Array): number {
  let lead = bytes.length - 1;
  while (lead >= 0 && bytes.length - lead < 4 && (bytes[lead] & 0xc0) === 0x80) lead--;
  if (lead < 0) return bytes.length;
  const b = bytes[lead];
  const size = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  return bytes.length - lead < size ? lead : bytes.length;
}
