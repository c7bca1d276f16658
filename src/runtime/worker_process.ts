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
 * instead of silently stopping the stream. The child's permissions are built by
 * `denoPermissionFlags` (never more than this process has); where they had to be narrowed, one
 * `FANOUT_PERMISSION_NARROWED` warning says so. `describeExit` says, in words, how one ended.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import type { FromProcess, ToProcess } from "../protocol.ts";
import type { ChildExit } from "./types.ts";
import { detect, spawnChild } from "./mod.ts";
import { denoPermissionFlags } from "./deno.ts";
import type { DenoWorkerReach } from "./deno.ts";
import { encodeFrame, frameMarker, FrameReader, TOKEN_BYTES } from "../worker/frames.js";
import { reviveError } from "../_revive.ts";

/** Where `deno compile` puts a program's modules (its virtual file system). */
const COMPILED = /\/deno-compile-[^/]+\//;

/** How much of a worker's stderr is kept, to explain how it died (e.g. out of memory). */
const STDERR_TAIL = 8192;

/** Signals V8 dies with when it runs out of heap (abort on Linux and macOS, trap on some builds). */
const OOM_SIGNALS = new Set(["SIGABRT", "SIGTRAP", "SIGILL", "SIGSEGV"]);
const OOM_TEXT = /out of memory|heap limit|allocation failed/i;

/** What a worker process says about its own end, just before it: the item that ran, and why. */
export type LastWords = Extract<FromProcess, { type: "fatal" | "exit" }>;

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
  /** Lets the process keep the program alive (while it works). */
  ref(): void;
  /** Lets the program end while the process is idle, where the runtime can. */
  unref(): void;
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
  if (name === "deno" && COMPILED.test(import.meta.url)) {
    // The executable is the program itself: `<it> run …` would start the program again.
    throw new Error(
      "Expected a Deno CLI to start worker processes with, but this program was built by " +
        '`deno compile`, which has none: use strategy: "threads" (see docs/bundling.md)',
    );
  }
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
    const permissions = denoPermissionFlags(workerReach(options.entry));
    warnIfNarrowed(permissions.narrowed);
    const child = await spawnChild({
      cmd: [
        execPath,
        "run",
        "--no-prompt",
        ...permissions.flags,
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
      ref: () => child.ref(),
      unref: () => void child.unref(),
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
    ref: () => child.ref(),
    unref: () => void child.unref(),
  };
}

/**
 * How a worker process ended, in words, from its exit status, the end of its stderr and what it
 * said last (`fatal` or `exit`). An out-of-memory death is told apart from a task that merely
 * printed the words.
 */
export function describeExit(
  exit: ChildExit,
  last: LastWords | undefined,
  stderr: string,
  maxMemoryMb: number | undefined,
): string {
  const oomSignal = exit.signal !== null && OOM_SIGNALS.has(exit.signal);
  if (maxMemoryMb !== undefined && (OOM_TEXT.test(stderr) || oomSignal)) {
    return `it ran out of memory (maxMemoryMb: ${maxMemoryMb})`;
  }
  // Without a cap, V8 still dies at its default heap limit: its last words on stderr say so,
  // and the exit must look like that death (not a task that merely printed the words).
  if (
    OOM_TEXT.test(stderr) && last === undefined &&
    (exit.signal !== null ? oomSignal : exit.code !== 0)
  ) {
    return `it ran out of memory (the runtime's default heap limit${
      exit.signal === null ? "" : `; killed by ${exit.signal}`
    }; maxMemoryMb caps a worker's heap lower, idleMemoryLimitMb replaces a worker that grew)`;
  }
  if (last?.type === "fatal") {
    const error = reviveError(last.error);
    return error instanceof Error
      ? `uncaught ${error.name}: ${error.message}`
      : `uncaught ${String(error)}`;
  }
  if (exit.signal !== null) return `it was killed by ${exit.signal}`;
  if (last?.type === "exit") return `the task called exit with code ${last.code}`;
  return `it exited with code ${exit.code}`;
}

/**
 * The places a Deno worker process needs when this process holds a permission only in part:
 * for reading (and writing), fanout's own files, the working directory and the main module's
 * folder, where tasks most likely live; for importing, the hosts fanout and the main module
 * were loaded from. A worker thread has no main module, so there it is left out.
 */
function workerReach(entry: URL): DenoWorkerReach {
  const main = mainModule();
  const places = [folder("../", entry.href), ...(main === undefined ? [] : [folder(".", main)])];
  const paths = [process.cwd()];
  const hosts: string[] = [];
  for (const url of places) {
    if (url === undefined) continue;
    if (url.protocol === "file:") paths.push(fileURLToPath(url).replace(/(.)[\\/]$/, "$1"));
    else if (url.protocol === "https:" || url.protocol === "http:") {
      hosts.push(`${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`);
    }
  }
  return { paths, hosts };
}

/** `relative` resolved against `base`; `undefined` for a base with no folders (`data:`, `blob:`). */
function folder(relative: string, base: string): URL | undefined {
  try {
    return new URL(relative, base);
  } catch {
    return undefined;
  }
}

/** Messages already warned about: each narrowing is reported once per process. */
const warnedNarrowed = new Set<string>();

/** Warns, once, that worker processes get less permission than this process. */
function warnIfNarrowed(narrowed: string[]): void {
  if (narrowed.length === 0) return;
  const message =
    `fanout: Deno worker processes get less permission than this program: ${
      narrowed.join("; ")
    }. This program holds these with exceptions (--deny-* or --ignore-* flags), which Deno ` +
    `gives a program no way to list, so only what could be checked is passed on`;
  if (warnedNarrowed.has(message)) return;
  warnedNarrowed.add(message);
  process.emitWarning(message, { code: "FANOUT_PERMISSION_NARROWED" });
}

/** The main module's URL; `undefined` in a worker thread, which has none. */
function mainModule(): string | undefined {
  try {
    return (globalThis as { Deno?: { mainModule?: string } }).Deno?.mainModule;
  } catch {
    return undefined;
  }
}
