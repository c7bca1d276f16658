/**
 * Threads and child processes on Node. Threads are `node:worker_threads` (Node has no global Worker). The only runtime whose
 * worker hands over the real uncaught `Error` and an exit code.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import { spawn } from "node:child_process";
import type { ChildProcess, Serializable, StdioOptions } from "node:child_process";
import type { Readable } from "node:stream";
import process from "node:process";
import type {
  ChildExit,
  ChildHandle,
  SpawnOptions,
  ThreadFactory,
  ThreadHandle,
  ThreadOptions,
} from "./types.ts";
import { afterPipes, spawnError } from "./_spawn.ts";
import type { Drain } from "./_spawn.ts";
import { ExitOnce } from "./_exit.ts";
import { trackThread } from "./_live.ts";
import { CAPABILITIES } from "./_capabilities.ts";

/** Thread factory for Node. */
export const nodeThreads: ThreadFactory = {
  canStopBusyThread: CAPABILITIES.node.stopBusyThread,
  create(url: URL, name: string, options: ThreadOptions = {}): ThreadHandle {
    const memory = options.maxMemoryMb;
    const worker = new Worker(url, {
      name,
      ...(memory === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: memory } }),
    });
    const untrack = trackThread();
    const exit = new ExitOnce();
    let error: unknown;
    worker.on("error", (e) => {
      error = e;
    });
    worker.on("exit", (code) => {
      untrack();
      exit.fire({
        code,
        error,
        message: error instanceof Error
          ? `${error.name}: ${error.message}`
          : `the worker exited with code ${code}`,
      });
    });
    worker.on(
      "messageerror",
      (e) => exit.fire({ error: e, message: `a message could not be read: ${e}` }),
    );
    return {
      postMessage: (message, transfer) =>
        worker.postMessage(message, transfer as unknown as ReadonlyArray<never>),
      onMessage: (listener) => {
        worker.on("message", listener);
      },
      onExit: (listener) => exit.listen(listener),
      terminate: async () => {
        exit.silence();
        await worker.terminate();
        untrack();
      },
      ref: () => worker.ref(),
      unref: () => worker.unref(),
    };
  },
};

/**
 * Starts a child process with `node:child_process`; `onMessage` opens an IPC channel with
 * `serialization: "advanced"` (structured clone, not JSON).
 */
export function nodeSpawn(options: SpawnOptions): Promise<ChildHandle> {
  const [file, ...args] = options.cmd;
  const stdio: StdioOptions = [
    options.stdin ?? "ignore",
    options.stdout ?? "inherit",
    options.stderr ?? "inherit",
    ...(options.onMessage === undefined ? [] : ["ipc" as const]),
  ];
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env === undefined ? undefined : { ...process.env, ...options.env },
      stdio,
      serialization: "advanced",
      windowsHide: true,
    });
  } catch (error) {
    return Promise.reject(spawnError(file, error));
  }
  return new Promise((resolve, reject) => {
    child.once("error", (error) => reject(spawnError(file, error)));
    child.once("spawn", () => {
      // After a successful start, 'error' only reports a failed kill or send: the exit status
      // tells the rest.
      child.on("error", () => {});
      // A child that exits without reading all its stdin makes the write fail with EPIPE; the
      // exit status tells what happened, so the error must not become an uncaught one.
      child.stdin?.on("error", () => {});
      const pid = child.pid!;
      const exited = new Promise<ChildExit>((done) => {
        child.once("exit", (code, signal) => done({ code, signal }));
      });
      const drains: Drain[] = [];
      if (options.stdout === "pipe") drains.push(streamDrain(child.stdout!, options.onStdout));
      if (options.stderr === "pipe") drains.push(streamDrain(child.stderr!, options.onStderr));
      const onMessage = options.onMessage;
      if (onMessage !== undefined) child.on("message", (message) => onMessage(message));
      resolve({
        pid,
        exited,
        closed: afterPipes(pid, exited, drains),
        kill(signal = "SIGTERM") {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
        send(message) {
          child.send(message as Serializable);
        },
        write(bytes) {
          if (child.stdin === null) {
            throw new TypeError('stdin was not opened with stdin: "pipe"');
          }
          child.stdin.write(bytes);
        },
        end() {
          child.stdin?.end();
        },
        ref() {
          child.ref();
          child.channel?.ref();
          for (const stream of [child.stdin, child.stdout, child.stderr]) {
            (stream as { ref?(): void } | null)?.ref?.();
          }
        },
        unref() {
          child.unref();
          child.channel?.unref();
          for (const stream of [child.stdin, child.stdout, child.stderr]) {
            (stream as { unref?(): void } | null)?.unref?.();
          }
          return true;
        },
      });
    });
  });
}

/** A Node stream as a `Drain`. */
function streamDrain(stream: Readable, onChunk: ((chunk: Uint8Array) => void) | undefined): Drain {
  const done = new Promise<void>((resolve) => {
    stream.on("data", (chunk: Uint8Array) => onChunk?.(chunk));
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
  // Node's pipes are unref'd as handles (see `unref` above): no need to stop reading.
  return { done, cut: () => stream.destroy(), pause: () => {}, resume: () => {} };
}
