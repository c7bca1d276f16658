/**
 * A real Redis (Debian's `redis-server`) and real `fanout worker` processes for the distributed
 * tests and bench: Redis on 127.0.0.1 at a free port, with no persistence, and workers started
 * through the CLI on any of the three runtimes. Everything started here is stopped by its
 * `stop()`; nothing listens anywhere but loopback.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { RuntimeName } from "../src/runtime/types.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CLI = path.join(ROOT, "src", "cli.ts");
/** Longest Redis or a worker may take to say it is ready. */
const READY_MS = 20_000;

/** Why Redis cannot be had here, or `undefined` when it can. */
export function redisMissing(): string | undefined {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (found.error !== undefined || found.status !== 0) {
    return "redis-server is not installed (apt-get install redis-server)";
  }
  try {
    import.meta.resolve("bullmq");
  } catch {
    return "bullmq is not installed (npm install)";
  }
  return undefined;
}

/** A Redis server of the test's own. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops it (SIGTERM, then SIGKILL) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** Starts `redis-server` on 127.0.0.1 at a free port, without persistence. */
export async function startRedis(port?: number): Promise<RedisServer> {
  for (let attempt = 0;; attempt++) {
    const at = port ?? await freePort();
    const child = spawn("redis-server", [
      "--bind",
      "127.0.0.1",
      "--port",
      String(at),
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
      "--daemonize",
      "no",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      await ready(child, /Ready to accept connections/, "redis-server");
    } catch (error) {
      await stopChild(child);
      // Another program took the port between the probe and the start: try another.
      if (port === undefined && attempt < 3) continue;
      throw error;
    }
    return {
      port: at,
      url: `redis://127.0.0.1:${at}`,
      stop: once(() => stopChild(child)),
    };
  }
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A `fanout worker` process. */
export interface WorkerProcess {
  readonly pid: number;
  readonly runtime: RuntimeName;
  /** Everything it wrote to stderr so far. */
  readonly log: () => string;
  /** Sends a signal (SIGKILL for the fault tests). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves with how it exited. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** SIGTERM (a graceful stop), SIGKILL after `graceMs`; resolves once it exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@linkcode startWorker}. */
export interface WorkerStart {
  redis: string;
  queue: string;
  root: string;
  runtime?: RuntimeName;
  slots?: number;
  strategy?: "threads" | "processes";
  lockMs?: number;
}

/** The program of a runtime installed in node_modules (never PATH's). */
export function runtimeBinary(runtime: RuntimeName): string {
  const binary = path.join(ROOT, "node_modules", ".bin", runtime);
  if (!existsSync(binary)) throw new Error(`${runtime} is not in node_modules/.bin`);
  return binary;
}

/** Starts `fanout worker` and waits until it serves. */
export async function startWorker(options: WorkerStart): Promise<WorkerProcess> {
  const runtime = options.runtime ?? currentRuntime();
  const args = [
    ...(runtime === "deno" ? ["run", "-A"] : []),
    CLI,
    "worker",
    "--redis",
    options.redis,
    "--queue",
    options.queue,
    "--root",
    options.root,
    "-j",
    String(options.slots ?? 1),
    "--strategy",
    options.strategy ?? "threads",
    ...(options.lockMs === undefined ? [] : ["--lock-ms", String(options.lockMs)]),
  ];
  const child = spawn(runtimeBinary(runtime), args, {
    stdio: ["ignore", "ignore", "pipe"],
    cwd: options.root,
  });
  let log = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (log += text));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal }))
  );
  try {
    await ready(child, /fanout worker: serving/, `fanout worker on ${runtime}`, () => log);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return {
    pid: child.pid!,
    runtime,
    log: () => log,
    // By pid: Deno's ChildProcess.kill() sends nothing after its first call.
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
    },
    exited,
    stop: once((graceMs = 10_000) => stopChild(child, graceMs)),
  };
}

function currentRuntime(): RuntimeName {
  if ("Deno" in globalThis) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}

/** Waits for `pattern` on the child's stdout or stderr; rejects if it exits or takes too long. */
function ready(
  child: ChildProcess,
  pattern: RegExp,
  what: string,
  log?: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const look = (text: Uint8Array | string): void => {
      seen += String(text);
      if (pattern.test(seen) || (log !== undefined && pattern.test(log()))) done();
    };
    const timer = setTimeout(
      () =>
        fail(new Error(`${what} was not ready within ${READY_MS} ms:\n${seen}${log?.() ?? ""}`)),
      READY_MS,
    );
    const onExit = (code: number | null): void =>
      fail(new Error(`${what} exited (${code}) before it was ready:\n${seen}${log?.() ?? ""}`));
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off("data", look);
      child.stderr?.off("data", look);
      child.off("exit", onExit);
    };
    const done = (): void => {
      cleanup();
      resolve();
    };
    const fail = (error: Error): void => {
      cleanup();
      reject(error);
    };
    child.stdout?.on("data", look);
    child.stderr?.on("data", look);
    child.on("exit", onExit);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function once<A extends unknown[]>(
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  let done: Promise<void> | undefined;
  return (...args) => done ??= fn(...args);
}

/** A queue name no other test (or a second `npm test` beside this one) uses. */
export function queueName(what: string): string {
  return `t-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A Redis of its own, the workers serving one queue on it, and a temporary folder. */
export interface Cluster extends AsyncDisposable {
  readonly redis: RedisServer;
  readonly queue: string;
  /** A temporary folder (for the tasks' marker files), removed with the cluster. */
  readonly dir: string;
  readonly workers: WorkerProcess[];
  /** Starts one more worker serving the queue, stopped with the cluster. */
  addWorker(options?: Partial<WorkerStart>): Promise<WorkerProcess>;
}

/**
 * Starts Redis and `workers` workers (none by default) serving a queue named after `what`;
 * `await using` stops them all and removes the folder, whatever the test did.
 */
export async function cluster(
  what: string,
  options: Omit<Partial<WorkerStart>, "redis" | "queue"> & { root: string; workers?: number },
): Promise<Cluster> {
  const { workers: count = 0, ...start } = options;
  const redis = await startRedis();
  const queue = queueName(what);
  const dir = mkdtempSync(path.join(tmpdir(), "fanout-dist-"));
  const workers: WorkerProcess[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const addWorker = async (more: Partial<WorkerStart> = {}): Promise<WorkerProcess> => {
    const worker = await startWorker({ ...start, ...more, redis: redis.url, queue });
    workers.push(worker);
    return worker;
  };
  try {
    await Promise.all(Array.from({ length: count }, () => addWorker()));
  } catch (error) {
    await dispose();
    throw error;
  }
  return { redis, queue, dir, workers, addWorker, [Symbol.asyncDispose]: dispose };
}
