/**
 * Starts a pool's worker process: the parent's own runtime running the worker entry, with a
 * message channel — Node's and Bun's IPC with structured serialization, or, on Deno (whose
 * `Deno.Command` has no IPC), frames over stdin and stdout. Serialization formats are never
 * mixed: Bun's is not V8's, and a child always runs the parent's runtime.
 *
 * On Deno the child's stdout carries both the frames and whatever its tasks print. Each
 * process gets a random token, written as the first bytes of its stdin, that every frame's
 * marker includes (frames.js): output without it is passed through to this process's stdout,
 * and a frame with it that cannot be decoded fails the process through `onProtocolError`
 * instead of silently stopping the stream.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import type { FromProcess, ToProcess } from "../protocol.ts";
import type { ChildExit } from "./types.ts";
import { detect, spawnChild } from "./mod.ts";
import { denoPermissionFlags } from "./deno.ts";
import { encodeFrame, frameMarker, FrameReader, TOKEN_BYTES } from "../worker/frames.js";

/** How much of a worker's stderr is kept, to explain how it died (e.g. out of memory). */
const STDERR_TAIL = 8192;

/** A running worker process. */
export interface WorkerProcess {
  readonly pid: number;
  /** Settles once the process is gone and its exit status collected. */
  readonly exited: Promise<ChildExit>;
  /** Sends a message; throws synchronously when it cannot be serialized. */
  send(message: ToProcess): void;
  /** Sends a signal; nothing once it has exited. */
  kill(signal: "SIGTERM" | "SIGKILL"): void;
  /** The end of what it wrote to stderr (also passed through to this process's stderr). */
  stderrTail(): string;
}

/** How to start a worker process. */
export interface WorkerProcessOptions {
  /** The worker program. */
  entry: URL;
  /** V8 old-space cap in MB, where the runtime has one (Deno, Node). */
  maxMemoryMb?: number;
  /** Receives the worker's messages. */
  onMessage(message: FromProcess): void;
  /**
   * Called at most once when the channel to the worker broke (Deno: a frame carrying the
   * process's token could not be decoded, or handling a message threw): nothing more arrives
   * from it, so the caller should stop the process and fail what it was running. The error's
   * message says what broke about the process, e.g. `its protocol stream was corrupt: …`.
   */
  onProtocolError(error: Error): void;
}

/** Starts a worker process; rejects with `SpawnError` when the runtime cannot start one. */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<WorkerProcess> {
  const { name, execPath } = detect();
  const memory = options.maxMemoryMb;
  let tail = "";
  const decoder = new TextDecoder();
  const onStderr = (chunk: Uint8Array): void => {
    process.stderr.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL);
  };
  const env = { FANOUT_WORKER: "process" };
  if (name === "deno") {
    // Drawn per process, sent on stdin only: argv and the environment are visible to tasks.
    const token = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
    const marker = frameMarker(token);
    let broken = false;
    const fail = (error: Error): void => {
      if (broken) return;
      broken = true;
      options.onProtocolError(error);
    };
    const reader = new FrameReader(marker, {
      message: (message) => options.onMessage(message as FromProcess),
      other: (bytes) => process.stdout.write(bytes),
      corrupt: (error) =>
        fail(
          new Error(`its protocol stream was corrupt: ${error.message}`, {
            cause: error,
          }),
        ),
    });
    // For a partial --allow-read, the places tasks most likely live: fanout's own files, the
    // working directory and the main module's folder (each passed on only if granted).
    const main = mainModule();
    const readable = [
      fileURLToPathOrNothing(new URL("../", options.entry)),
      process.cwd(),
      // A worker thread has no main module, so no main module's folder either.
      main === undefined ? undefined : fileURLToPathOrNothing(new URL(".", main)),
    ].filter((path): path is string => path !== undefined);
    const child = await spawnChild({
      cmd: [
        execPath,
        "run",
        "--no-prompt",
        ...denoPermissionFlags(readable),
        ...(memory === undefined ? [] : [`--v8-flags=--max-old-space-size=${memory}`]),
        options.entry.href,
      ],
      env,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      onStdout: (chunk) => {
        if (broken) return;
        try {
          reader.push(chunk);
        } catch (error) {
          // Thrown by a message's handler: the reader lost its place, so the channel is done.
          fail(
            new Error(
              `handling one of its messages failed: ${
                error instanceof Error ? error.message : String(error)
              }`,
              { cause: error },
            ),
          );
        }
      },
      onStderr,
    });
    child.write(token);
    return {
      pid: child.pid,
      // Output held back because it might have begun a marker is printed once stdout ends.
      exited: child.closed.then((exit) => {
        if (!broken) reader.end();
        return exit;
      }),
      send: (message) => child.write(encodeFrame(message, marker)),
      kill: (signal) => child.kill(signal),
      stderrTail: () => tail,
    };
  }
  const flags = name === "node" && memory !== undefined ? [`--max-old-space-size=${memory}`] : [];
  const child = await spawnChild({
    cmd: [execPath, ...flags, fileURLToPath(options.entry)],
    env,
    stdout: "inherit",
    stderr: "pipe",
    onStderr,
    onMessage: (message) => options.onMessage(message as FromProcess),
  });
  return {
    pid: child.pid,
    exited: child.closed,
    send: (message) => child.send(message),
    kill: (signal) => child.kill(signal),
    stderrTail: () => tail,
  };
}

function fileURLToPathOrNothing(url: URL): string | undefined {
  return url.protocol === "file:" ? fileURLToPath(url) : undefined;
}

function mainModule(): string | undefined {
  try {
    return (globalThis as { Deno?: { mainModule?: string } }).Deno?.mainModule;
  } catch {
    return undefined;
  }
}
