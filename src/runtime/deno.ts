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

import type {
  ChildExit,
  ChildHandle,
  SpawnOptions,
  ThreadFactory,
  ThreadHandle,
  ThreadOptions,
} from "./types.ts";
import { Slot } from "../worker/wire.js";
import { startWebThread, webHandle } from "./_web.ts";
import { afterPipes, drain, quietKill, spawnError } from "./_spawn.ts";
import type { Drain } from "./_spawn.ts";
import { CAPABILITIES } from "./_capabilities.ts";

/** How long `terminate()` waits for a thread busy in synchronous code to return. */
const TERMINATE_WAIT_MS = 1000;

/**
 * Thread factory for Deno. A terminated thread busy in synchronous code goes on until that
 * code returns (and keeps the program alive meanwhile). `terminate()` waits up to a second
 * for it; a thread still running then is counted by `liveThreadCount()` until its header's
 * `Slot.BUSY` says it has stopped.
 */
export const denoThreads: ThreadFactory = {
  canStopBusyThread: CAPABILITIES.deno.stopBusyThread,
  create(url: URL, name: string, options: ThreadOptions = {}): ThreadHandle {
    const thread = startWebThread(url, name);
    const state = options.state;
    return webHandle(thread, async () => {
      thread.worker.terminate();
      const waiting = state === undefined ? undefined : Atomics.waitAsync(state, Slot.BUSY, 1);
      if (waiting === undefined || !waiting.async) return thread.untrack();
      // Still running a task's synchronous code: it goes once that returns. Wait a moment for
      // that (most such stretches are short); past it, resolve, and keep counting the thread.
      waiting.value.then(thread.untrack);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        waiting.value,
        new Promise((resolve) => (timer = setTimeout(resolve, TERMINATE_WAIT_MS))),
      ]);
      clearTimeout(timer);
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
  ref(): void;
  unref(): void;
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

/**
 * The buffer a child's stdout and stderr are read into, reused for every read (`drain`): what
 * Deno reads at most at once. Its default reader allocates one this size for every read.
 */
const PIPE_READ_BYTES = 64 * 1024;

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
  if (options.stdout === "pipe") {
    drains.push(drain(child.stdout, options.onStdout, PIPE_READ_BYTES));
  }
  if (options.stderr === "pipe") {
    drains.push(drain(child.stderr, options.onStderr, PIPE_READ_BYTES));
  }
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
    kill: quietKill(child),
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
    ref() {
      child.ref();
    },
    unref() {
      child.unref();
      return true;
    },
  });
}

interface PermissionStatus {
  state: string;
  /** Granted with exceptions (a `--deny-*` or `--ignore-*` list). */
  partial?: boolean;
}

interface DenoPermissions {
  querySync(descriptor: { name: string; path?: string; host?: string }): PermissionStatus;
}

/** Permissions a Deno child may be given, each as `--allow-<name>`. */
const PERMISSIONS = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

/**
 * Deno's default import allow-list (`deno run --help`, Deno 2.9): a child given no
 * `--allow-import` flag gets these, whatever its parent had, so the child is always given an
 * explicit list instead.
 */
const DEFAULT_IMPORT_HOSTS = [
  "deno.land:443",
  "jsr.io:443",
  "esm.sh:443",
  "raw.esm.sh:443",
  "cdn.jsdelivr.net:443",
  "raw.githubusercontent.com:443",
  "gist.githubusercontent.com:443",
];

/** The places a worker process needs, for permissions the parent holds only in part. */
export interface DenoWorkerReach {
  /** Files and folders it reads (and may write): fanout's own files, the working directory… */
  paths: string[];
  /** Remote hosts (`host:port`) it may import from: where fanout and the main module live. */
  hosts: string[];
}

/** The permission flags of a Deno child, and what it gets less of than its parent. */
export interface DenoChildPermissions {
  /** Flags for `deno run`. */
  flags: string[];
  /**
   * One line per permission the parent holds with exceptions (a `--deny-*` or `--ignore-*`
   * list) and the child therefore gets only in part, or not at all, e.g.
   * `"read only for /app, /app/src"` or `"env not at all"`. Empty when nothing was narrowed.
   */
  narrowed: string[];
}

/**
 * The flags that give a Deno child no more permission than this process has, for every kind
 * of permission and every way of granting or denying it.
 *
 * Deno lets a program query its permissions but not list its flags, so only what a query
 * proves is passed on:
 * - a permission granted in full, with no exception, is passed on in full (`--allow-X`);
 * - otherwise, for `read` and `write`, each of `reach.paths` that a path query shows granted
 *   with nothing denied inside it (a path with a comma is skipped: Deno splits lists on
 *   commas);
 * - otherwise, for `import`, an explicit list of the hosts — Deno's default allow-list and
 *   `reach.hosts` — that a host query shows granted, or `--no-remote` when there is none
 *   (without a flag the child would get Deno's default list, which a parent with a narrower
 *   `--allow-import=…` or a `--deny-import` does not have);
 * - anything else held only in part (`--allow-net=example.com`, `--allow-env=HOME`, and every
 *   grant with a deny list) is not passed on.
 */
export function denoPermissionFlags(reach: DenoWorkerReach): DenoChildPermissions {
  const permissions = (globalThis as unknown as { Deno: { permissions: DenoPermissions } }).Deno
    .permissions;
  const query = (descriptor: { name: string; path?: string; host?: string }) => {
    try {
      return permissions.querySync(descriptor);
    } catch {
      return undefined; // This Deno does not know the permission, or refuses the descriptor.
    }
  };
  const whole = (status: PermissionStatus | undefined): boolean =>
    status?.state === "granted" && status.partial !== true;
  const flags: string[] = [];
  const narrowed: string[] = [];
  for (const name of PERMISSIONS) {
    const status = query({ name });
    if (status === undefined) continue;
    if (whole(status)) {
      flags.push(`--allow-${name}`);
      continue;
    }
    let given: string[] = [];
    if (name === "read" || name === "write") {
      given = unique(reach.paths).filter((path) =>
        !path.includes(",") && whole(query({ name, path }))
      );
      if (given.length > 0) flags.push(`--allow-${name}=${given.join(",")}`);
    } else if (name === "import") {
      given = unique([...DEFAULT_IMPORT_HOSTS, ...reach.hosts]).filter((host) =>
        whole(query({ name, host }))
      );
      flags.push(given.length > 0 ? `--allow-import=${given.join(",")}` : "--no-remote");
    }
    // Granted with exceptions: the parent has more than the child gets, and cannot say what.
    if (status.state === "granted") {
      const where = name === "import" ? "from" : "for";
      narrowed.push(
        given.length > 0 ? `${name} only ${where} ${given.join(", ")}` : `${name} not at all`,
      );
    }
  }
  return { flags, narrowed };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
