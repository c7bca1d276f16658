/**
 * `fanout run`: GNU-parallel-style batches of commands from the shell, on `runCommands`' batch.
 *
 * ```
 * argv ─► splitRun(): options | command | ::: / :::: / :::+ sources ─► combine() (_inputs.ts)
 *      ─► one job per row, its command made when it starts (commandFor, _template.ts: {%})
 *      ─► runPlan() (run_commands.ts) ─► each job's output, whole, as it ends (-k: in order)
 *      ─► joblog, --json, the bar (progress.ts) ─► exit status (exitStatus, _halt.ts)
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { planBatch } from "../commands/_plan.ts";
import type { PlannedJob } from "../commands/_plan.ts";
import { isSuccess } from "../commands/_outcome.ts";
import { runPlan } from "../run_commands.ts";
import type { BatchResult, CommandJob, HaltMode, HaltRule, JobResult } from "../run_commands.ts";
import { progressReporter } from "../progress.ts";
import type { ProgressReporter, ProgressStyle } from "../progress.ts";
import { detect } from "../runtime/mod.ts";
import { commandFor, shellQuote, usesSlot } from "./_template.ts";
import { combine, lines } from "./_inputs.ts";
import type { Source } from "./_inputs.ts";
import { exitStatus, parseHalt } from "./_halt.ts";
import { UsageError } from "./errors.ts";
import type { Io } from "./_io.ts";

export type { Io } from "./_io.ts";
import { seconds, whole } from "./_flags.ts";

export const RUN_HELP =
  `Usage: fanout run [options] [--] COMMAND [ARGS...] [::: VALUES... | :::: FILE]...

Runs COMMAND once per input, several at a time, as GNU parallel does. Inputs come from
::: values, :::: files (one per line), or standard input lines. Several sources combine
into every combination; :::+ and ::::+ pair a source with the one before it.

Replacement strings: {} input, {.} without extension, {/} basename, {//} directory,
{/.} basename without extension, {#} job number, {%} slot, {N} (and {N.} ...) the N-th
source. Without any, the inputs are appended as arguments.

Options:
  -j, --jobs N          jobs at once (default: the CPU count)
  -k, --keep-order      print outputs in input order (default: as jobs finish)
      --timeout SECS    kill a job running longer (SIGTERM, then SIGKILL)
      --retries N       run a failing job up to N times in all
      --halt WHEN       never | now | soon | now,fail=N | soon,fail=N% | ...,success=N | ...,done=N
      --joblog FILE     write a GNU parallel job log
      --resume          skip the jobs the --joblog lists (and append to it)
      --resume-failed   skip the jobs the --joblog lists as succeeded; run the rest again
      --results DIR     keep each job's stdout and stderr in DIR/1/VALUE/.../stdout|stderr
      --json FILE|-     write the batch result as JSON
      --dry-run         print the commands instead of running them
      --shell           run each command through /bin/sh -c (inputs are quoted)
      --bar             a progress bar on stderr (--progress, --eta: counts, ETA first)
  -h, --help            this help

Exit status: 0 when every job succeeded, else the number of failed jobs (101 for more
than 100), the halting job's exit code after --halt ...,fail=N, 255 for a usage error.
`;

const OPTIONS = {
  jobs: { type: "string", short: "j" },
  "keep-order": { type: "boolean", short: "k" },
  timeout: { type: "string" },
  retries: { type: "string" },
  halt: { type: "string" },
  joblog: { type: "string" },
  resume: { type: "boolean" },
  "resume-failed": { type: "boolean" },
  results: { type: "string" },
  json: { type: "string" },
  "dry-run": { type: "boolean" },
  shell: { type: "boolean" },
  bar: { type: "boolean" },
  progress: { type: "boolean" },
  eta: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const SEPARATORS = new Set([":::", "::::", ":::+", "::::+"]);

/** The command line split into options, the command, and the input sources as written. */
interface Split {
  readonly options: string[];
  readonly command: string[];
  readonly sources: { readonly separator: string; readonly words: string[] }[];
}

/** Options before the command (up to `--` or the first word that is not an option). */
function split(argv: readonly string[]): Split {
  const options: string[] = [];
  let at = 0;
  while (at < argv.length) {
    const arg = argv[at];
    if (arg === "--") {
      at++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || SEPARATORS.has(arg)) break;
    options.push(arg);
    at++;
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    const takesValue = name !== undefined
      ? !name.includes("=") &&
        (OPTIONS as Record<string, { type: string }>)[name]?.type === "string"
      : arg.length === 2 && (arg === "-j");
    if (takesValue && at < argv.length) options.push(argv[at++]);
  }
  const command: string[] = [];
  while (at < argv.length && !SEPARATORS.has(argv[at])) command.push(argv[at++]);
  const sources: Split["sources"] = [];
  while (at < argv.length) {
    const separator = argv[at++];
    const words: string[] = [];
    while (at < argv.length && !SEPARATORS.has(argv[at])) words.push(argv[at++]);
    sources.push({ separator, words });
  }
  return { options, command, sources };
}

/** `fanout run`: returns the exit status. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const parts = split(argv);
  let values;
  try {
    values = parseArgs({ args: parts.options, options: OPTIONS, strict: true }).values;
  } catch (error) {
    throw new UsageError("run", (error as Error).message.split("\n")[0]);
  }
  if (values.help) {
    io.stdout.write(RUN_HELP);
    return 0;
  }
  if (parts.command.length === 0) {
    throw new UsageError("run", "Expected a COMMAND after the options (see fanout run --help)");
  }
  const jobs = values.jobs === undefined ? detect().cpus : whole("--jobs", values.jobs, 1);
  const timeoutMs = values.timeout === undefined
    ? Infinity
    : seconds("--timeout", values.timeout) * 1000;
  const retries = values.retries === undefined ? 0 : whole("--retries", values.retries, 1) - 1;
  const halt: HaltMode | HaltRule = values.halt === undefined ? "never" : parseHalt(values.halt);
  const shell = values.shell === true;
  const rows = combine(await readSources(parts.sources, io));
  const command = parts.command;
  const resume = values["resume-failed"] ? "failed" : values.resume ? "all" : undefined;
  if (resume !== undefined && values.joblog === undefined) {
    throw new UsageError(
      resume === "failed" ? "--resume-failed" : "--resume",
      `Expected --joblog FILE with ${resume === "failed" ? "--resume-failed" : "--resume"}`,
    );
  }
  const skip = resume === undefined ? new Set<number>() : finishedSeqs(values.joblog!, resume);
  /** The rows this run runs, by their index among all rows (their `{#}` less one). */
  const todo = rows.map((_, i) => i).filter((i) => !skip.has(i + 1));
  const slotted = usesSlot(command);

  if (values["dry-run"]) {
    rows.forEach((row, i) => {
      const argv = commandFor(command, { values: row, seq: i + 1, slot: (i % jobs) + 1 }, shell);
      io.stdout.write(display(argv, shell) + "\n");
    });
    return 0;
  }

  const style: ProgressStyle | undefined = values.bar
    ? "bar"
    : values.eta
    ? "eta"
    : values.progress
    ? "progress"
    : undefined;
  const bar: ProgressReporter | undefined = style === undefined
    ? undefined
    : progressReporter({ output: io.stderr as never, style });

  const jobList: CommandJob[] = todo.map((i) => ({
    cmd: commandFor(command, { values: rows[i], seq: i + 1, slot: 1 }, shell),
    shell,
  }));
  let plan;
  try {
    plan = planBatch(jobList, {
      maxWorkers: jobs,
      timeoutMs,
      retries,
      halt,
      maxOutputBytes: 1024 * 1024 * 1024,
      onProgress: bar === undefined ? undefined : (progress) => bar.update(progress),
    });
  } catch (error) {
    if (error instanceof RangeError && /maxWorkers/.test(error.message)) {
      throw new UsageError("--jobs", error.message.replace("`maxWorkers`", "--jobs"));
    }
    throw error;
  }
  if (slotted) {
    const base = plan;
    plan = {
      ...base,
      prepare: (job: PlannedJob, index: number, slot: number): PlannedJob => {
        const row = todo[index];
        const argv = commandFor(command, { values: rows[row], seq: row + 1, slot }, shell);
        return {
          ...job,
          cmd: argv,
          argv: shell ? ["/bin/sh", "-c", argv[0], "sh"] : argv,
        };
      },
    };
  }

  if (values.joblog !== undefined && !(resume !== undefined && existsSync(values.joblog))) {
    writeFileSync(
      values.joblog,
      "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n",
    );
  }
  const keep = values["keep-order"] === true;
  const held = new Map<number, [Uint8Array, Uint8Array]>();
  let nextOut = 0;
  const emit = (stdout: Uint8Array, stderr: Uint8Array): void => {
    bar?.clear();
    if (stdout.length > 0) io.stdout.write(stdout);
    if (stderr.length > 0) io.stderr.write(stderr);
  };
  const batch: BatchResult = await runPlan(plan, (result, output) => {
    const row = todo[result.index];
    if (result.attempts > 0 && result.error !== undefined) {
      // A command that could not start has no output of its own to say so (a shell would).
      bar?.clear();
      io.stderr.write(`fanout: ${result.error.message}\n`);
    }
    if (result.attempts > 0 && values.joblog !== undefined) {
      appendFileSync(values.joblog, joblogLine(result, row + 1, output.stdout.length, shell));
    }
    if (result.attempts > 0 && values.results !== undefined) {
      const dir = join(
        values.results,
        ...rows[row].flatMap((value, source) => [String(source + 1), resultsName(value)]),
      );
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "stdout"), output.stdout);
      writeFileSync(join(dir, "stderr"), output.stderr);
      writeFileSync(join(dir, "seq"), `${row + 1}\n`);
    }
    if (!keep) emit(output.stdout, output.stderr);
    else {
      held.set(result.index, [output.stdout, output.stderr]);
      while (held.has(nextOut)) {
        const [stdout, stderr] = held.get(nextOut)!;
        held.delete(nextOut++);
        emit(stdout, stderr);
      }
    }
  });
  bar?.finish({
    done: batch.results.filter((r) => r.attempts > 0).length,
    total: batch.results.length,
    failed: batch.results.filter((r) => r.attempts > 0 && !isSuccess(r)).length,
    elapsedMs: batch.durationMs,
    etaMs: 0,
  });
  if (batch.haltedBy !== undefined) {
    const job = batch.results[batch.haltedBy];
    io.stderr.write(
      `fanout: halted after job ${job.index + 1} ${isSuccess(job) ? "succeeded" : "failed"}: ${
        display(job.cmd, shell)
      }\n`,
    );
  }
  if (values.json !== undefined) {
    const text = JSON.stringify(batch, jsonValue, 2) + "\n";
    if (values.json === "-") io.stdout.write(text);
    else writeFileSync(values.json, text);
  }
  return exitStatus(batch, halt);
}

async function readSources(sources: Split["sources"], io: Io): Promise<Source[]> {
  if (sources.length === 0) return [{ values: lines(await io.readStdin()), linked: false }];
  const stdin =
    sources.some(({ separator, words }) => separator.startsWith("::::") && words.includes("-"))
      ? await io.readStdin()
      : "";
  return sources.map(({ separator, words }) => {
    const linked = separator.endsWith("+");
    if (separator.startsWith("::::")) {
      const values: string[] = [];
      for (const file of words) {
        try {
          values.push(...lines(file === "-" ? stdin : readFileSync(file, "utf8")));
        } catch (error) {
          throw new UsageError(
            separator,
            `Expected ${separator} ${file} to be a readable file, got ${(error as Error).message}`,
          );
        }
      }
      return { values, linked };
    }
    return { values: words, linked };
  });
}

/** A command as GNU parallel shows it: the script itself with `--shell`, else quoted words. */
function display(argv: readonly string[], shell: boolean): string {
  return shell ? argv[0] : argv.map(shellQuote).join(" ");
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** A value as a folder name of `--results`, as GNU parallel writes it (`/` as `\_`). */
function resultsName(value: string): string {
  const name = value.replaceAll("\\", "\\\\").replaceAll("/", "\\_");
  return name === "" || name === "." || name === ".." ? `\\${name}` : name;
}

/**
 * The job numbers a joblog lists as finished (`"all"`), or as succeeded (`"failed"`, for
 * `--resume-failed`: exit value 0 and no signal). A missing joblog lists none.
 */
function finishedSeqs(file: string, which: "all" | "failed"): Set<number> {
  if (!existsSync(file)) return new Set();
  const seqs = new Set<number>();
  for (const line of lines(readFileSync(file, "utf8")).slice(1)) {
    const cols = line.split("\t");
    const seq = Number(cols[0]);
    if (!Number.isInteger(seq) || seq < 1) continue;
    if (which === "all" || (cols[6] === "0" && cols[7] === "0")) seqs.add(seq);
    // A later line for the same job (a re-run) decides.
    else seqs.delete(seq);
  }
  return seqs;
}

/** One joblog line in GNU parallel's columns; a job that could not start exits 127 as in sh. */
function joblogLine(result: JobResult, seq: number, received: number, shell: boolean): string {
  const start = ((result.startedAt ?? 0) / 1000).toFixed(3);
  const runtime = (result.durationMs / 1000).toFixed(3).padStart(10);
  const exitval = result.timedOut ? -1 : result.error !== undefined ? 127 : result.exitCode ?? 0;
  const signal = result.signal === null ? 0 : SIGNALS[result.signal] ?? 0;
  return `${seq}\t:\t${start}\t${runtime}\t0\t${received}\t${exitval}\t${signal}\t${
    display(result.cmd, shell)
  }\n`;
}

function jsonValue(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (value === Infinity) return null;
  return value;
}
