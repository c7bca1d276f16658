#!/usr/bin/env node
/**
 * The `fanout` command: `fanout run` runs batches of commands from the shell the way GNU
 * parallel does (see `fanout run --help`); `fanout map` runs a module's exported function over
 * JSON lines; `fanout worker` serves a distributed queue (see `@fanout/fanout/distributed`). Installed as `fanout` by npm (`npx fanout`,
 * `bunx fanout`); on Deno, `deno run -A jsr:@fanout/fanout/cli`.
 *
 * @example Run from a program
 * ```ts ignore
 * import { main } from "@fanout/fanout/cli";
 *
 * Deno.exit(await main(["run", "-k", "--", "echo", ":::", "a", "b"]));
 * ```
 *
 * @module
 */

import process from "node:process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { processIo } from "./cli/_io.ts";
import type { Io } from "./cli/_io.ts";
import { UsageError } from "./cli/errors.ts";

export type { Io } from "./cli/_io.ts";

/** The version `fanout --version` prints. */
export const VERSION = "0.1.0";

const HELP = `Usage: fanout COMMAND [options]

Commands:
  run     run a command once per input, several at a time (GNU parallel's way)
  map     run a module's exported function over JSON lines, in order
  worker  serve a distributed queue (BullMQ on Redis) on this machine

fanout run --help, fanout map --help and fanout worker --help tell more. fanout --version prints the version.
`;

/** The exit status of a usage error, as GNU parallel's. */
const USAGE_EXIT = 255;

/**
 * Runs the `fanout` command with `argv` (without the program's own name).
 *
 * @param argv The arguments, e.g. `["run", "--", "echo", ":::", "a"]`.
 * @param io Where to write; the process's streams by default.
 * @returns The exit status: 0 when every job succeeded, 255 for a usage error.
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === "--version" || command === "-V") {
      io.stdout.write(`fanout ${VERSION}\n`);
      return 0;
    }
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      io.stdout.write(
        command === undefined
          ? HELP
          : rest[0] === "run"
          ? (await import("./cli/run.ts")).RUN_HELP
          : rest[0] === "map"
          ? (await import("./cli/map.ts")).MAP_HELP
          : rest[0] === "worker"
          ? (await import("./cli/worker.ts")).WORKER_HELP
          : HELP,
      );
      return command === undefined ? USAGE_EXIT : 0;
    }
    // Each subcommand is loaded when it runs: `fanout run` never pays for the executor.
    if (command === "run") return await (await import("./cli/run.ts")).run(rest, io);
    if (command === "map") return await (await import("./cli/map.ts")).map(rest, io);
    if (command === "worker") return await (await import("./cli/worker.ts")).worker(rest, io);
    throw new UsageError(
      command,
      `Expected a command (run, map or worker), got ${JSON.stringify(command)}; see fanout --help`,
    );
  } catch (error) {
    if (error instanceof UsageError || error instanceof RangeError) {
      io.stderr.write(`fanout: ${error.message}\n`);
      return USAGE_EXIT;
    }
    throw error;
  }
}

/** Whether this module is the program being run (Node 20 has no `import.meta.main`). */
function isProgram(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  try {
    return process.argv[1] !== undefined &&
      realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isProgram()) {
  const args = process.argv.slice(2);
  main(args).then(
    (status) => {
      process.exitCode = status;
    },
    (error) => {
      // A failure of fanout itself (a log it may not write, say): one line, not a stack.
      process.stderr.write(`fanout: ${error?.name ?? "Error"}: ${error?.message ?? error}\n`);
      process.exitCode = 1;
    },
  );
}
