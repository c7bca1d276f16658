/**
 * `fanout map MODULE[#EXPORT]`: runs a module's exported function over JSON lines, one result
 * line per input line, in input order, on a {@linkcode ParallelExecutor}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import process from "node:process";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ParallelExecutor } from "../executor.ts";
import type { ExecutorOptions } from "../executor.ts";
import { tasks } from "../task.ts";
import type { TaskRef } from "../task.ts";
import { progressReporter } from "../progress.ts";
import type { Io } from "./_io.ts";
import { UsageError } from "./errors.ts";
import { seconds, whole } from "./_flags.ts";
import { lines } from "./_inputs.ts";

export const MAP_HELP = `Usage: fanout map [options] MODULE[#EXPORT]

Runs MODULE's exported function (EXPORT, default: "default") over JSON lines: one value
per input line in, one JSON result line out, in input order.

Options:
      --in FILE         read the lines from FILE (default: standard input)
      --out FILE        write the results to FILE (default: standard output)
      --strategy NAME   auto, serial, async, threads, processes or distributed
                        (default: auto)
      --redis URL       distributed: where Redis is (default: $FANOUT_REDIS, else
                        redis://127.0.0.1:6379)
      --queue NAME      distributed: the queue fanout worker serves (default: fanout)
      --root DIR        distributed: the folder the module is named relative to, as
                        the workers' --root (default: the current folder)
  -j, --jobs N          most workers (default: the CPU count)
      --chunk N         items per message to a worker (default: auto)
      --concurrency N   items in flight per worker, for tasks that wait (default: 1)
      --seed N          base seed of ctx.seed
      --timeout SECS    longest one item may run
      --explain         print the strategy auto would choose, and why, then exit
      --bar             a progress bar on stderr
  -h, --help            this help

Exit status: 0 on success, 1 when a task failed, 255 for a usage error or a bad line.
`;

const OPTIONS = {
  in: { type: "string" },
  out: { type: "string" },
  strategy: { type: "string" },
  redis: { type: "string" },
  queue: { type: "string" },
  root: { type: "string" },
  jobs: { type: "string", short: "j" },
  chunk: { type: "string" },
  concurrency: { type: "string" },
  seed: { type: "string" },
  timeout: { type: "string" },
  explain: { type: "boolean" },
  bar: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** `fanout map`: returns the exit status. */
export async function map(argv: readonly string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError("map", (error as Error).message.split("\n")[0]);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(MAP_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      "map",
      `Expected one MODULE[#EXPORT] (see fanout map --help), got ${positionals.length}`,
    );
  }
  const [path, name = "default"] = positionals[0].split("#");
  const url = /^[a-z][a-z0-9+.-]*:/i.test(path) && !/^[a-z]:[\\/]/i.test(path)
    ? path
    : pathToFileURL(resolve(path)).href;
  const options: ExecutorOptions = {};
  const remote = values.redis !== undefined || values.queue !== undefined ||
    values.root !== undefined;
  if (values.strategy === "distributed") {
    const { distributed } = await import("../distributed/strategy.ts");
    try {
      options.strategy = distributed({
        connection: values.redis ?? (process.env.FANOUT_REDIS || undefined),
        queue: values.queue,
        root: values.root,
      });
    } catch (error) {
      throw new UsageError("--strategy", (error as Error).message);
    }
  } else if (remote) {
    throw new UsageError(
      "--redis",
      "Expected --redis, --queue and --root only with --strategy distributed",
    );
  } else if (values.strategy !== undefined) {
    options.strategy = values.strategy as ExecutorOptions["strategy"];
  }
  if (values.jobs !== undefined) options.maxWorkers = whole("--jobs", values.jobs);
  if (values.chunk !== undefined) options.chunkSize = whole("--chunk", values.chunk);
  if (values.concurrency !== undefined) {
    options.concurrency = whole("--concurrency", values.concurrency);
  }
  if (values.seed !== undefined) options.seed = whole("--seed", values.seed, 0);
  if (values.timeout !== undefined) {
    options.timeoutMs = seconds("--timeout", values.timeout) * 1000;
  }

  const text = values.in === undefined ? await io.readStdin() : readInput(values.in);
  const items = lines(text).map((line, i) => {
    try {
      return JSON.parse(line) as unknown;
    } catch (error) {
      throw new UsageError(
        "--in",
        `Expected line ${i + 1} to be JSON, got ${JSON.stringify(line.slice(0, 40))}: ${
          (error as Error).message
        }`,
      );
    }
  });
  const task = (tasks(url) as Record<string, TaskRef<unknown, unknown>>)[name];
  let ex: ParallelExecutor;
  try {
    ex = new ParallelExecutor(options);
  } catch (error) {
    throw new UsageError("map", (error as Error).message);
  }
  try {
    if (values.strategy === "distributed") {
      // Connected first: the explanation names the workers, and chunks are cut for their slots.
      try {
        await ex.warmup();
      } catch (error) {
        io.stderr.write(
          `fanout: ${(error as Error)?.name}: ${(error as Error)?.message ?? error}\n`,
        );
        return 1;
      }
    }
    if (values.explain) {
      const plan = await ex.explain(task, items);
      io.stdout.write(`${plan.reason}\n`);
      return 0;
    }
    const bar = values.bar ? progressReporter({ output: io.stderr as never }) : undefined;
    let results: unknown[];
    try {
      results = await ex.map(task, items, {
        onProgress: bar === undefined ? undefined : (progress) => bar.update(progress),
      });
    } catch (error) {
      bar?.finish();
      const index = (error as { index?: unknown }).index;
      const where = typeof index === "number" ? ` (line ${index + 1})` : "";
      io.stderr.write(`fanout: the task failed${where}: ${(error as Error)?.message ?? error}\n`);
      return 1;
    }
    bar?.finish();
    const out = results.map((result) => JSON.stringify(result) ?? "null").join("\n") +
      (results.length > 0 ? "\n" : "");
    if (values.out === undefined) io.stdout.write(out);
    else writeFileSync(values.out, out);
    return 0;
  } finally {
    await ex.close();
  }
}

function readInput(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(
      "--in",
      `Expected --in ${file} to be a readable file, got ${(error as Error).message}`,
    );
  }
}
