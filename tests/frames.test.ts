/**
 * The protocol channel cannot be forged by what a task prints. On Deno a worker process's
 * messages travel as frames on its stdout, the same stream its tasks print to; each process's
 * frames carry a random token of its own, so a task that prints the old frame marker, a huge
 * length or any binary has only printed output, which reaches the parent's stdout unchanged.
 * A frame that does carry the token but cannot be decoded fails the channel with a clear
 * error instead of wedging it.
 *
 * Unit tests of `FrameReader` run everywhere; the programs run on every runtime with threads
 * and processes (on Bun and Node the same bytes go to a stdout that carries no messages); the
 * corrupt-frame tests drive `startWorkerProcess` with a stand-in worker, on Deno only.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  encodeFrame,
  frameMarker,
  FrameReader,
  MAX_BODY_BYTES,
  TOKEN_BYTES,
} from "../src/worker/frames.js";
import { startWorkerProcess } from "../src/runtime/worker_process.ts";
import type { ToProcess } from "../src/protocol.ts";
import { runProgram, runtime, test, within } from "./_helpers.ts";
import { BEGIN, END, noise } from "./fixtures/noisy.ts";
import type { Noise } from "./fixtures/noisy.ts";

const NOISY_PARENT = fileURLToPath(new URL("./fixtures/noisy_parent.ts", import.meta.url));
const CORRUPT_ENTRY = new URL("./fixtures/corrupt_entry.js", import.meta.url);

/** The marker frames began with before each process had a token of its own. */
const OLD_MARKER = [0x00, 0xfa, 0x66, 0x61, 0x6e, 0x6f, 0x75, 0x74];

function token(fill: number): Uint8Array {
  return new Uint8Array(TOKEN_BYTES).fill(fill);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** What a reader handed on. */
interface Read {
  messages: unknown[];
  other: Uint8Array;
  errors: Error[];
}

/** Feeds `stream` to a reader of `marker` in chunks of `chunkSize` bytes, then ends it. */
function read(marker: Uint8Array, stream: Uint8Array, chunkSize = stream.length): Read {
  const messages: unknown[] = [];
  const other: Uint8Array[] = [];
  const errors: Error[] = [];
  const reader = new FrameReader(marker, {
    message: (m) => messages.push(m),
    // Copied: a reader may hand on views of a buffer it later reuses.
    other: (bytes) => other.push(bytes.slice()),
    corrupt: (error) => errors.push(error),
  });
  for (let at = 0; at < stream.length; at += chunkSize) {
    reader.push(stream.subarray(at, Math.min(at + chunkSize, stream.length)));
  }
  reader.end();
  return { messages, other: concat(...other), errors };
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("FrameReader", () => {
  const marker = frameMarker(token(7));

  for (const chunkSize of [1, 5, 4096]) {
    test(`messages and the output between them come out whole and in order (chunks of ${chunkSize} bytes)`, () => {
      const values = [{ type: "ready" }, { big: 10n, list: [1, 2, 3] }, new Map([[1, "one"]])];
      const stream = concat(
        text("before "),
        encodeFrame(values[0], marker),
        text("between "),
        encodeFrame(values[1], marker),
        encodeFrame(values[2], marker),
        text("after\0"),
      );
      const { messages, other, errors } = read(marker, stream, chunkSize);
      assert.deepEqual(messages, values);
      assert.equal(new TextDecoder().decode(other), "before between after\0");
      assert.deepEqual(errors, []);
    });
  }

  const forged: [string, Uint8Array][] = [
    [
      "the old marker, a length and 3 bytes that are not V8 data",
      new Uint8Array([...OLD_MARKER, 3, 0, 0, 0, 1, 2, 3]),
    ],
    [
      "the old marker and a length of almost 4 GiB",
      new Uint8Array([...OLD_MARKER, 0xff, 0xff, 0xff, 0xff]),
    ],
    ["64 KiB of random bytes with the old marker spliced in", noise("random")],
    ["another channel's frame", encodeFrame({ type: "ready" }, frameMarker(token(8)))],
    [
      "the marker's prefix and all but the last byte of the token",
      marker.subarray(0, marker.length - 1),
    ],
  ];
  for (const [what, bytes] of forged) {
    test(`${what} is passed on as output, and the next frame still arrives`, () => {
      const stream = concat(bytes, encodeFrame({ type: "done", id: 1 }, marker));
      for (const chunkSize of [1, 7, stream.length]) {
        const { messages, other, errors } = read(marker, stream, chunkSize);
        assert.deepEqual(errors, [], `chunks of ${chunkSize}`);
        assert.deepEqual(messages, [{ type: "done", id: 1 }], `chunks of ${chunkSize}`);
        assert.deepEqual(other, bytes, `chunks of ${chunkSize}`);
      }
    });
  }

  test("output that ends in what may be the start of a marker is handed on when the stream ends", () => {
    const { other, errors } = read(marker, concat(text("tail"), marker.subarray(0, 5)), 1);
    assert.deepEqual(errors, []);
    assert.deepEqual(other, concat(text("tail"), marker.subarray(0, 5)));
  });

  test("a frame cut short by the end of the stream is dropped, not handed on as output", () => {
    const frame = encodeFrame({ type: "done", values: [1, 2, 3] }, marker);
    const cut = frame.subarray(0, marker.length + 4 + 2);
    const { messages, other, errors } = read(marker, concat(text("x"), cut));
    assert.deepEqual([messages, errors], [[], []]);
    assert.deepEqual(other, text("x"));
  });

  test("a frame with the token whose body is not V8 data is reported once, and nothing after it is handed on", () => {
    const stream = concat(
      encodeFrame({ type: "ready" }, marker),
      marker,
      new Uint8Array([3, 0, 0, 0, 1, 2, 3]),
      encodeFrame({ type: "done" }, marker),
      text("later output"),
    );
    const { messages, other, errors } = read(marker, stream);
    assert.deepEqual(messages, [{ type: "ready" }]);
    assert.equal(other.length, 0);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof TypeError, String(errors[0]));
    assert.match(
      errors[0].message,
      /^Expected a frame body in V8's serialization format, got 3 bytes that do not deserialize/,
    );
  });

  test(`a frame with the token announcing more than ${MAX_BODY_BYTES} bytes is reported at once, not waited for`, () => {
    const header = concat(marker, new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    const { messages, errors } = read(marker, header);
    assert.deepEqual(messages, []);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof RangeError, String(errors[0]));
    assert.equal(
      errors[0].message,
      `Expected a frame of at most ${MAX_BODY_BYTES} bytes, got a header announcing ` +
        `4294967295 bytes`,
    );
  });

  test("frameMarker() refuses a token of the wrong length, naming both lengths", () => {
    assert.throws(() => frameMarker(new Uint8Array(4)), {
      name: "RangeError",
      message: `Expected a token of ${TOKEN_BYTES} bytes, got 4 bytes`,
    });
  });
});

// ---- a task prints noise to its stdout ----------------------------------------------------

/** How a program ended, with its stdout as bytes. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let at = 0; at + needle.length <= haystack.length; at++) {
    for (let k = 0; k < needle.length; k++) if (haystack[at + k] !== needle[k]) continue outer;
    return at;
  }
  return -1;
}

describe("a task that prints frame-like bytes to stdout", () => {
  const kinds: [Noise, string][] = [
    ["old-marker", "the old frame marker, a length and bytes that are not V8 data"],
    ["huge-length", "the old frame marker and a length of almost 2 GiB"],
    ["random", "64 KiB of random binary"],
  ];
  for (const strategy of ["threads", "processes"] as const) {
    for (const [kind, what] of kinds) {
      test(`${strategy}: a task that prints ${what} completes, its bytes reach stdout unchanged, and later calls and close() work`, async () => {
        const result = await runProgram(NOISY_PARENT, [strategy, kind]);
        const out = result.stdout;
        const shown = `\n--- stdout (${result.stdoutBytes.length} bytes, tail)\n${
          out.slice(-300)
        }\n--- stderr\n${result.stderr}`;
        assert.equal(result.hung, false, `the program hung${shown}`);
        assert.equal(result.code, 0, `the program exited with ${result.code}${shown}`);
        const line = out.split("\n").find((l) => l.startsWith("fanout-noisy-result "));
        assert.ok(line !== undefined, `no result line${shown}`);
        assert.deepEqual(JSON.parse(line.slice("fanout-noisy-result ".length)), {
          first: kind,
          later: [1, 4, 9],
        });
        assert.match(out, /^fanout-noisy-disposed$/m);
        const printed = concat(text(BEGIN), noise(kind), text(END));
        assert.ok(
          indexOfBytes(result.stdoutBytes, printed) >= 0,
          `the task's ${printed.length} bytes do not appear unchanged in stdout${shown}`,
        );
      });
    }
  }
});

// ---- a corrupt frame from a worker process (Deno) -----------------------------------------

describe("a corrupt frame from a Deno worker process", () => {
  const cases = [
    {
      mode: "bad-body",
      message:
        /^its protocol stream was corrupt: Expected a frame body in V8's serialization format, got 3 bytes/,
    },
    {
      mode: "huge-length",
      message: new RegExp(
        `^its protocol stream was corrupt: Expected a frame of at most ` +
          `${MAX_BODY_BYTES} bytes, got a header announcing 4294967295 bytes$`,
      ),
    },
  ];
  for (const { mode, message } of cases) {
    const name =
      `fails the channel with onProtocolError saying what was expected and what arrived (${mode}), and nothing after it is delivered`;
    if (runtime !== "deno") {
      it(`${name} (skipped: only Deno sends frames over stdout)`, {
        skip: "only Deno sends frames over stdout",
      }, () => {});
      continue;
    }
    test(name, async () => {
      const received: unknown[] = [];
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      let broke!: (error: Error) => void;
      const broken = new Promise<Error>((resolve) => (broke = resolve));
      const errors: Error[] = [];
      const proc = await startWorkerProcess({
        entry: CORRUPT_ENTRY,
        onMessage(m) {
          received.push(m);
          if (m.type === "ready") ready();
        },
        onProtocolError(error) {
          errors.push(error);
          broke(error);
        },
      });
      try {
        await within(isReady, 20_000, "the stand-in worker's ready message");
        proc.send({ mode: "echo" } as unknown as ToProcess);
        proc.send({ mode } as unknown as ToProcess);
        const error = await within(broken, 20_000, "onProtocolError");
        assert.match(error.message, message);
        assert.ok(error.cause instanceof Error, "the reader's error is the cause");
        assert.deepEqual(received, [{ type: "ready" }, {
          type: "echo",
          message: { mode: "echo" },
        }]);
      } finally {
        proc.kill("SIGKILL");
        await proc.exited;
      }
      assert.equal(errors.length, 1, "onProtocolError is called once");
      assert.equal(received.length, 2, "nothing is delivered after the corrupt frame");
    });
  }
});
