/**
 * Threads on Bun: the global Web Worker. Bun reports an uncaught error as an `error` event
 * whose message is a formatted code frame, then a `close` event with the exit code; `close`
 * also follows `process.exit` and `terminate()`.
 *
 * @module
 */

import process from "node:process";
import type { ChildExit, ChildHandle, SpawnOptions, ThreadFactory, ThreadHandle } from "./types.ts";
import { startWebThread, webHandle } from "./_web.ts";
import { afterPipes, drain, quietKill, spawnError } from "./_spawn.ts";
import type { Drain } from "./_spawn.ts";
import { CAPABILITIES } from "./_capabilities.ts";

/** How long `terminate()` waits for Bun's `close` event before taking the thread as gone. */
const CLOSE_GRACE_MS = 2000;

/** Thread factory for Bun. */
export const bunThreads: ThreadFactory = {
  canStopBusyThread: CAPABILITIES.bun.stopBusyThread,
  create(url: URL, name: string): ThreadHandle {
    const thread = startWebThread(url, name, 1);
    let closed = false;
    let onClosed: (() => void) | undefined;
    thread.worker.addEventListener("close", (event) => {
      closed = true;
      thread.untrack();
      onClosed?.();
      const code = (event as Event & { code?: number }).code;
      thread.exit.fire({ code, message: `the worker exited with code ${code}` });
    });
    const handle = webHandle(thread, () => {
      if (closed) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          thread.untrack();
          resolve();
        }, CLOSE_GRACE_MS);
        onClosed = () => {
          clearTimeout(timer);
          resolve();
        };
        thread.worker.terminate();
      });
    });
    const worker = thread.worker as Worker & { ref(): void; unref(): void };
    return { ...handle, ref: () => worker.ref(), unref: () => worker.unref() };
  },
};

interface BunSubprocess {
  readonly pid: number;
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  readonly stdin: {
    write(chunk: Uint8Array): unknown;
    flush(): unknown;
    end(): unknown;
  } | undefined;
  readonly stdout: ReadableStream<Uint8Array> | undefined;
  readonly stderr: ReadableStream<Uint8Array> | undefined;
  kill(signal?: string): void;
  send(message: unknown): void;
  ref(): void;
  unref(): void;
}

interface BunSpawn {
  (options: {
    cmd: string[];
    cwd?: string;
    env?: Record<string, string | undefined>;
    stdin: "pipe" | "ignore";
    stdout: "pipe" | "inherit" | "ignore";
    stderr: "pipe" | "inherit" | "ignore";
    ipc?: (message: unknown) => void;
    serialization?: "advanced" | "json";
  }): BunSubprocess;
}

/** Starts a child process with `Bun.spawn`; `onMessage` opens Bun's IPC channel. */
export function bunSpawn(options: SpawnOptions): Promise<ChildHandle> {
  const spawn = (globalThis as unknown as { Bun: { spawn: BunSpawn } }).Bun.spawn;
  const onMessage = options.onMessage;
  let child: BunSubprocess;
  try {
    child = spawn({
      cmd: [...options.cmd],
      cwd: options.cwd,
      env: options.env === undefined ? undefined : { ...process.env, ...options.env },
      stdin: options.stdin ?? "ignore",
      stdout: options.stdout ?? "inherit",
      stderr: options.stderr ?? "inherit",
      ...(onMessage === undefined ? {} : {
        ipc: (message: unknown) => onMessage(message),
        serialization: "advanced" as const,
      }),
    });
  } catch (error) {
    return Promise.reject(spawnError(options.cmd[0], error));
  }
  const drains: Drain[] = [];
  if (options.stdout === "pipe") drains.push(drain(child.stdout!, options.onStdout));
  if (options.stderr === "pipe") drains.push(drain(child.stderr!, options.onStderr));
  const exited = child.exited.then(
    (): ChildExit =>
      child.signalCode !== null
        ? { code: null, signal: child.signalCode }
        : { code: child.exitCode, signal: null },
    (): ChildExit => ({ code: null, signal: null }),
  );
  return Promise.resolve({
    pid: child.pid,
    exited,
    closed: afterPipes(child.pid, exited, drains),
    kill: quietKill(child),
    send(message) {
      child.send(message);
    },
    write(bytes) {
      if (child.stdin === undefined) {
        throw new TypeError('stdin was not opened with stdin: "pipe"');
      }
      // A child that exits without reading all its stdin makes these fail with EPIPE (as a
      // rejected promise); the exit status tells what happened.
      ignore(child.stdin.write(bytes));
      ignore(child.stdin.flush());
    },
    end() {
      try {
        ignore(child.stdin?.end());
      } catch {
        // Already closed.
      }
    },
    ref() {
      child.ref();
      for (const d of drains) d.resume();
    },
    unref() {
      child.unref();
      // A pending read of its pipe would keep the program alive: stop reading while idle.
      for (const d of drains) d.pause();
      return true;
    },
  });
}

/** Drops the rejection of a promise that Bun's FileSink may return. */
function ignore(value: unknown): void {
  if (value instanceof Promise) value.catch(() => {});
}
