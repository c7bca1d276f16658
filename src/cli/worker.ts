/**
 * `fanout worker`: serves a distributed queue on this machine until stopped (SIGTERM or
 * SIGINT finish the chunks it holds, then it exits 0; a second one stops it at once).
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import type { Io } from "./_io.ts";
import { UsageError } from "./errors.ts";
import { seconds, whole } from "./_flags.ts";
import { checkQueue, clientOptions } from "../distributed/_redis.ts";

export const WORKER_HELP = `Usage: fanout worker [options]

Serves a distributed queue: takes the chunks that programs using
distributed({ connection, queue, root }) put on Redis and runs them here, on a
pool of this machine's threads or processes, until SIGTERM or SIGINT (which
finish the chunks it holds, then exit; a second one stops it at once).

Options:
      --redis URL       redis://[user:password@]host:port[/db], rediss:// for TLS
                        (default: $FANOUT_REDIS, else redis://127.0.0.1:6379; the
                        variable keeps a password out of the process list)
      --queue NAME      the queue to serve (default: fanout)
  -j, --jobs N          chunks at once, each on a worker of the pool (default: the CPU count)
      --strategy NAME   threads or processes (default: threads)
      --root DIR        the folder task modules are named relative to; the same
                        files must be there as under the submitter's root
                        (default: the current folder)
      --lock-ms N       a chunk held by a worker that died goes to another this
                        long after (default: 30000)
      --max-job-bytes N most bytes a chunk's results may take (default: 33554432)
      --connect-timeout SECS
                        longest Redis may take to answer at the start (default: 10)
  -h, --help            this help

Exit status: 0 once stopped, 1 if Redis or BullMQ could not be had, 255 for a usage error.
`;

const OPTIONS = {
  redis: { type: "string" },
  queue: { type: "string" },
  jobs: { type: "string", short: "j" },
  strategy: { type: "string" },
  root: { type: "string" },
  "lock-ms": { type: "string" },
  "max-job-bytes": { type: "string" },
  "connect-timeout": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** `fanout worker`: resolves with the exit status once stopped. */
export async function worker(argv: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError("worker", (error as Error).message.split("\n")[0]);
  }
  const { values } = parsed;
  if (values.help) {
    io.stdout.write(WORKER_HELP);
    return 0;
  }
  const strategy = values.strategy ?? "threads";
  if (strategy !== "threads" && strategy !== "processes") {
    throw new UsageError(
      "--strategy",
      `Expected --strategy to be threads or processes, got ${JSON.stringify(strategy)}`,
    );
  }
  const slots = values.jobs === undefined ? undefined : whole("--jobs", values.jobs);
  const lockMs = values["lock-ms"] === undefined
    ? undefined
    : whole("--lock-ms", values["lock-ms"], 100);
  const maxJobBytes = values["max-job-bytes"] === undefined
    ? undefined
    : whole("--max-job-bytes", values["max-job-bytes"], 1024);
  const connectTimeoutMs = values["connect-timeout"] === undefined
    ? undefined
    : Math.ceil(seconds("--connect-timeout", values["connect-timeout"]) * 1000);
  const queue = values.queue ?? "fanout";
  try {
    checkQueue(queue);
  } catch (error) {
    throw new UsageError("--queue", (error as Error).message.replace("`queue`", "--queue"));
  }
  const redis = values.redis ?? (process.env.FANOUT_REDIS || "redis://127.0.0.1:6379");
  try {
    clientOptions(redis, "worker");
  } catch (error) {
    throw new UsageError("--redis", (error as Error).message.replace("`connection`", "--redis"));
  }
  // Listened for before serving starts, so a stop that comes while it connects is not missed.
  const stopping = new AbortController();
  const onSignal = (): void => stopping.abort(new Error("stopped before it served"));
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    const { serve } = await import("../distributed/worker.ts");
    let serving;
    try {
      serving = await serve({
        connection: redis,
        queue,
        slots,
        strategy,
        root: values.root,
        lockMs,
        maxJobBytes,
        connectTimeoutMs,
        signal: stopping.signal,
      });
    } catch (error) {
      if (stopping.signal.aborted) {
        io.stderr.write("fanout worker: stopped before it served\n");
        return 0;
      }
      if (error instanceof TypeError) {
        throw new UsageError("--root", error.message.replace("`root`", "--root"));
      }
      io.stderr.write(
        `fanout worker: ${(error as Error)?.name ?? "Error"}: ${
          (error as Error)?.message ?? error
        }\n`,
      );
      return 1;
    }
    const { host, pid, slots: n, runtime } = serving.info;
    io.stderr.write(
      `fanout worker: serving queue ${queue} on ${serving.connection}: ` +
        `${n} slot${n === 1 ? "" : "s"} (${strategy}) on ${host}, pid ${pid}, ${runtime}\n`,
    );
    await new Promise<void>((resolve) => {
      if (stopping.signal.aborted) resolve();
      else stopping.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    io.stderr.write(
      "fanout worker: stopping: finishing the chunks it holds (signal again to stop at once)\n",
    );
    // A second signal: stop now; the chunks held go to other workers after --lock-ms.
    const again = (): void => {
      io.stderr.write("fanout worker: stopping at once\n");
      serving.terminate().catch(() => {});
    };
    process.on("SIGTERM", again);
    process.on("SIGINT", again);
    try {
      await serving.close();
    } finally {
      process.off("SIGTERM", again);
      process.off("SIGINT", again);
    }
    io.stderr.write("fanout worker: stopped\n");
    return 0;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
