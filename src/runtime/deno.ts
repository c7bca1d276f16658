/**
 * Threads on Deno: the global Web Worker. (Deno's `node:worker_threads` delivers typed arrays
 * in time proportional to their length, even shared ones, so it is avoided.)
 *
 * Quirks folded in here and in `_web.ts` (research/runtime-probe.md §8):
 * - an uncaught error in a worker kills the main process unless the `error` event is
 *   `preventDefault()`ed, and its ErrorEvent has `error: null`;
 * - `process.exit`, `Deno.exit` and `self.close()` in a worker raise no event at all: the
 *   worker entry reports them itself before exiting;
 * - `terminate()` raises no event and does not stop a worker busy in synchronous code.
 *
 * @module
 */

import type { ChildExit, ChildHandle, SpawnOptions, ThreadFactory, ThreadHandle } from "./types.ts";
import { startWebThread, webHandle } from "./_web.ts";
import { afterPipes, drain, spawnError } from "./_spawn.ts";
import type { Drain } from "./_spawn.ts";

/** Thread factory for Deno. */
export const denoThreads: ThreadFactory = {
  canStopBusyThread: false,
  create(url: URL, name: string): ThreadHandle {
    const thread = startWebThread(url, name);
    return webHandle(thread, () => {
      thread.worker.terminate();
      thread.untrack();
      return Promise.resolve();
    });
  },
};

interface DenoChild {
  readonly pid: number;
  readonly status: Promise<{ code: number; signal: string | null }>;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  kill(signal?: string): void;
}

interface DenoCommand {
  new (command: string, options: {
    args: string[];
    cwd?: string;
    env?: Record<string, string>;
    stdin: "piped" | "null";
    stdout: "piped" | "inherit" | "null";
    stderr: "piped" | "inherit" | "null";
  }): { spawn(): DenoChild };
}

const io = { pipe: "piped", inherit: "inherit", ignore: "null" } as const;

/** Starts a child process with `Deno.Command` (needs `--allow-run`). */
export function denoSpawn(options: SpawnOptions): Promise<ChildHandle> {
  const Command = (globalThis as unknown as { Deno: { Command: DenoCommand } }).Deno.Command;
  const [file, ...args] = options.cmd;
  let child: DenoChild;
  try {
    child = new Command(file, {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: options.stdin === "pipe" ? "piped" : "null",
      stdout: io[options.stdout ?? "inherit"],
      stderr: io[options.stderr ?? "inherit"],
    }).spawn();
  } catch (error) {
    return Promise.reject(spawnError(file, error));
  }
  const drains: Drain[] = [];
  if (options.stdout === "pipe") drains.push(drain(child.stdout, options.onStdout));
  if (options.stderr === "pipe") drains.push(drain(child.stderr, options.onStderr));
  const exited = child.status.then(
    (status): ChildExit =>
      status.signal !== null
        ? { code: null, signal: status.signal }
        : { code: status.code, signal: null },
    (): ChildExit => ({ code: null, signal: null }),
  );
  const writer = options.stdin === "pipe" ? child.stdin.getWriter() : undefined;
  return Promise.resolve({
    pid: child.pid,
    exited,
    closed: afterPipes(child.pid, exited, drains),
    kill(signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // It has already exited.
      }
    },
    send() {
      throw new TypeError("Deno child processes have no IPC channel: use stdin and stdout");
    },
    write(bytes) {
      if (writer === undefined) throw new TypeError('stdin was not opened with stdin: "pipe"');
      writer.write(bytes).catch(() => {});
    },
    end() {
      writer?.close().catch(() => {});
    },
  });
}

interface DenoPermissions {
  querySync(descriptor: { name: string; path?: string }): { state: string };
}

/** Permissions a Deno child may be given, each as `--allow-<name>`. */
const PERMISSIONS = ["read", "write", "net", "env", "run", "ffi", "sys", "import"];

/**
 * The `--allow-*` flags that give a Deno child exactly what this process was granted, never
 * more: a permission granted in full is passed on in full; for `read`, a partial grant is
 * passed on for the `paths` (the worker's own files) that it covers. Other partial grants
 * (e.g. `--allow-net=example.com`) cannot be listed through the permissions API, so the child
 * does not get them.
 */
export function denoPermissionFlags(paths: string[]): string[] {
  const permissions = (globalThis as unknown as { Deno: { permissions: DenoPermissions } }).Deno
    .permissions;
  const flags: string[] = [];
  for (const name of PERMISSIONS) {
    let state: string;
    try {
      state = permissions.querySync({ name }).state;
    } catch {
      continue; // This Deno does not know the permission.
    }
    if (state === "granted") flags.push(`--allow-${name}`);
    else if (name === "read") {
      const covered = paths.filter((path) => {
        try {
          return permissions.querySync({ name, path }).state === "granted";
        } catch {
          return false;
        }
      });
      if (covered.length > 0) flags.push(`--allow-read=${covered.join(",")}`);
    }
  }
  return flags;
}
