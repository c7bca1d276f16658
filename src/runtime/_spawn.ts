/**
 * Pieces every runtime's `spawn` shares: naming a failed start, reading a pipe into a
 * callback, and waiting (boundedly) for pipes to end after the child exited.
 *
 * @module
 */

import { SpawnError } from "../errors.ts";
import type { ChildExit } from "./types.ts";
import { trackProcess } from "./_live.ts";

/**
 * How long after a child's exit its pipes may stay open before they are cut: a grandchild
 * (e.g. a background job of a shell) can hold them open for as long as it lives.
 */
export const PIPE_GRACE_MS = 500;

/** The `SpawnError` for a runtime's failure to start `command`. */
export function spawnError(command: string, error: unknown): SpawnError {
  const raw = error as { code?: unknown; name?: unknown; message?: unknown };
  const code = typeof raw?.code === "string"
    ? raw.code
    : raw?.name === "NotFound"
    ? "ENOENT"
    : raw?.name === "PermissionDenied"
    ? "EACCES"
    : undefined;
  const why = code === "ENOENT"
    ? "no such file was found (on the PATH, for a bare name)"
    : code === "EACCES"
    ? "it is not executable, or access was denied"
    : raw?.name === "NotCapable"
    ? "the runtime did not grant run permission (Deno: --allow-run)"
    : String(raw?.message ?? error);
  return new SpawnError(command, `Expected \`${command}\` to be an executable, but ${why}`, {
    code,
    cause: error,
  });
}

/** A pipe being read into a callback. */
export interface Drain {
  /** Settles when the pipe ended (or failed, or was cut). */
  readonly done: Promise<void>;
  /** Stops reading. */
  cut(): void;
  /**
   * Stops reading for now, so that a pending read does not keep the program alive (Bun keeps
   * it alive for as long as a read of a child's pipe is pending); `resume()` goes on. What
   * arrives meanwhile waits in the pipe.
   */
  pause(): void;
  /** Reads again after `pause()`. */
  resume(): void;
}

/**
 * Reads `stream` to its end, handing each chunk to `onChunk`.
 *
 * With `bufferBytes`, a byte stream is read into one buffer of that size, reused for every read
 * (a BYOB reader), and each chunk handed on is a copy of what the read filled: Deno's default
 * reader allocates a fresh 64 KiB buffer for every read, however few bytes it brings, and on a
 * channel of small messages those allocations cost more than the reads. A stream that has no
 * BYOB reader is read as without it.
 */
export function drain(
  stream: ReadableStream<Uint8Array>,
  onChunk: ((chunk: Uint8Array) => void) | undefined,
  bufferBytes?: number,
): Drain {
  let reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader | undefined;
  let paused = false;
  let cut = false;
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  const read = async (): Promise<void> => {
    const byob = bufferBytes === undefined ? undefined : byobReader(stream);
    const current = (reader = byob ?? stream.getReader());
    try {
      if (byob !== undefined) {
        let buffer = new ArrayBuffer(bufferBytes!);
        for (;;) {
          const { done, value } = await byob.read(new Uint8Array(buffer));
          if (done || value === undefined) break;
          buffer = value.buffer as ArrayBuffer;
          onChunk?.(value.slice());
        }
      } else {
        const defaultReader = current as ReadableStreamDefaultReader<Uint8Array>;
        for (;;) {
          const { done, value } = await defaultReader.read();
          if (done) break;
          onChunk?.(value);
        }
      }
    } catch {
      // A pause releases the reader, which fails the pending read: not the end of the pipe,
      // even when a resume already started another read in the meantime.
      if (!cut && (paused || reader !== current)) return;
      // A cut or broken pipe ends the output; the exit status says what happened.
    }
    ended();
  };
  void read();
  return {
    done,
    cut: () => {
      cut = true;
      if (paused) {
        stream.cancel().catch(() => {});
        ended();
      } else reader?.cancel().catch(() => {});
    },
    pause: () => {
      if (paused || cut) return;
      paused = true;
      reader?.releaseLock();
    },
    resume: () => {
      if (!paused || cut) return;
      paused = false;
      void read();
    },
  };
}

/** A BYOB reader of `stream`, or `undefined` when it is not a byte stream. */
function byobReader(stream: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | undefined {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return undefined;
  }
}

/**
 * `closed`: the exit, once every pipe has ended, or `PIPE_GRACE_MS` after the exit, when the
 * pipes still open are cut. Also records the child for `liveProcessPids()`.
 */
export function afterPipes(pid: number, exited: Promise<ChildExit>, drains: Drain[]): Promise<
  ChildExit
> {
  trackProcess(pid, exited);
  if (drains.length === 0) return exited;
  return exited.then(async (exit) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const d of drains) d.cut();
        resolve();
      }, PIPE_GRACE_MS);
    });
    await Promise.race([Promise.all(drains.map((d) => d.done)), grace]);
    clearTimeout(timer);
    return exit;
  });
}

/**
 * A child's `kill`, as the `ChildHandle` contract wants it: SIGTERM by default, and nothing
 * (no throw) once the child has exited.
 */
export function quietKill(child: { kill(signal: "SIGTERM" | "SIGKILL"): unknown }): (
  signal?: "SIGTERM" | "SIGKILL",
) => void {
  return (signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch {
      // It has already exited.
    }
  };
}
