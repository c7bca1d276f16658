/**
 * The launcher: one small, long-lived Perl process that starts the jobs of a batch on its
 * parent's behalf, so that a job costs a fork of a 5 MB Perl instead of one of the runtime.
 * Node's `child_process.spawn` forks the whole runtime, about 1.2 ms a job here; through the
 * launcher, 200 jobs of `true` take a few ms more than `xargs -P` does.
 *
 * Perl because `perl-base` is essential on Debian and Perl comes with macOS: nothing to build,
 * and the script uses core modules only (not even POSIX, which costs ~15 ms to load).
 *
 * The wire, both ways: frames of a 4-byte big-endian length and a body, whose fields are
 * separated by NUL bytes (which no argument, variable or path can hold), the first field a
 * one-letter type.
 *
 * ```
 * parent ─► launcher (its stdin)
 *   S id max cwd nEnv nArgv hasInput env… argv… input   start a job (cwd: "" or "+<path>")
 *   K id signal                                          signal it, unless it was reaped
 *   U id                                                 stop reading its pipes
 * launcher ─► parent (its stdout)
 *   R pid             ready
 *   P id pid          started (its exec succeeded)
 *   F id errno        could not start (pipe, fork, stdin, chdir or exec failed)
 *   O id bytes        stdout; E id bytes: stderr (at most max + 1 bytes of each)
 *   X id code signal  reaped (one of code and signal is empty)
 *   C id              its pipes ended: nothing more will come for it
 * ```
 *
 * The end of its stdin (the parent closed it, or died) makes it send SIGTERM to every job
 * still running and exit.
 *
 * @module
 */

import { constants } from "node:os";
import process from "node:process";
import { SpawnError } from "../errors.ts";
import { spawnChild } from "./mod.ts";
import type { ChildExit, ChildHandle } from "./types.ts";
import { PIPE_GRACE_MS, spawnError } from "./_spawn.ts";
import { markLauncher, trackProcess } from "./_live.ts";
import { KILL_GRACE_MS, killGently } from "./_kill.ts";
import { LAUNCHER_SCRIPT } from "./_launcher_script.ts";

/**
 * What `perl -e` runs: reads the script from stdin (8 hex digits of length, then the script),
 * so that `ps` shows a short command line, then runs it.
 */
const BOOT = "my($l,$s)=('','');" +
  "while(length($l)<8){sysread(STDIN,$l,8-length($l),length($l))or exit 70}" +
  "$l=hex $l;while(length($s)<$l){sysread(STDIN,$s,$l-length($s),length($s))or exit 70}" +
  "eval(qq{#line 1 fanout-launcher\n$s});die $@ if $@";

/** How long the launcher may take to exit once its stdin closed before it is killed. */
const EXIT_WAIT_MS = 2000;

/** How much of the launcher's own stderr is kept for the message of a failed start. */
const STDERR_KEPT = 4096;

/** How to start one job through the launcher. */
export interface LaunchOptions {
  /** The executable, then its arguments; looked up on the PATH (the job's own, with `env`). */
  readonly cmd: readonly string[];
  /** Working directory, resolved against this process's current one. */
  readonly cwd?: string;
  /** Variables added to (or overriding) the environment. */
  readonly env?: Record<string, string>;
  /** Written to the job's stdin, which is then closed; without it stdin is `/dev/null`. */
  readonly input?: Uint8Array;
  /** Receives stdout as it comes. */
  onStdout(chunk: Uint8Array): void;
  /** Receives stderr as it comes. */
  onStderr(chunk: Uint8Array): void;
  /**
   * The most of each stream the receiver keeps: the launcher passes on one byte more (so
   * that the receiver can tell output was cut) and drops the rest.
   */
  readonly maxOutputBytes: number;
}

/** A message of the launcher, decoded. */
type LauncherMessage =
  | { readonly type: "ready" }
  | { readonly type: "started"; readonly id: number; readonly pid: number }
  | { readonly type: "failed"; readonly id: number; readonly errno: number }
  | {
    readonly type: "output";
    readonly id: number;
    readonly stream: "stdout" | "stderr";
    readonly bytes: Uint8Array;
  }
  | { readonly type: "exited"; readonly id: number; readonly exit: ChildExit }
  | { readonly type: "closed"; readonly id: number };

/** One job, from its request to its `C`. */
interface Job {
  readonly file: string;
  readonly options: LaunchOptions;
  /** Until `P` or `F`. */
  start: { resolve(handle: ChildHandle): void; reject(error: unknown): void } | undefined;
  readonly started: Promise<ChildHandle>;
  handle: ChildHandle | undefined;
  pid: number;
  exit: ChildExit | undefined;
  resolveExited(exit: ChildExit): void;
  resolveClosed(exit: ChildExit): void;
  closed: Promise<ChildExit> | undefined;
  /** Cuts the pipes a grandchild holds open, `PIPE_GRACE_MS` after the exit. */
  cutTimer: ReturnType<typeof setTimeout> | undefined;
}

/** A running launcher: starts jobs until `close()`. */
export class Launcher {
  #child!: ChildHandle;
  readonly #jobs = new Map<number, Job>();
  #nextId = 0;
  /** Set once the launcher process is gone (and its output read). */
  #gone = false;
  #closing: Promise<void> | undefined;
  readonly #frames = new FrameReader();
  #ready!: () => void;
  #stderr = "";

  /**
   * Starts a launcher and waits until it is ready.
   *
   * @throws {SpawnError} If Perl is not on the PATH, or the launcher exited before it was
   *   ready.
   */
  static async start(): Promise<Launcher> {
    const launcher = new Launcher();
    const ready = new Promise<void>((resolve) => (launcher.#ready = resolve));
    const child = await spawnChild({
      cmd: ["perl", "-e", BOOT],
      // The jobs inherit the launcher's environment: it must be this process's as it is now,
      // as for a job spawned directly. Without `env`, Bun.spawn passes the environment Bun
      // started with, blind to later changes of `process.env`.
      env: {},
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      onStdout: (chunk) => launcher.#receive(chunk),
      onStderr: (chunk) => {
        if (launcher.#stderr.length < STDERR_KEPT) {
          launcher.#stderr += new TextDecoder().decode(chunk).slice(0, STDERR_KEPT);
        }
      },
    });
    launcher.#child = child;
    markLauncher(child.pid);
    child.closed.then(() => launcher.#lost());
    child.write(bootBytes());
    const early = await Promise.race([ready.then(() => undefined), child.exited]);
    if (early !== undefined) {
      await child.closed;
      const how = early.signal !== null
        ? `was killed by ${early.signal}`
        : `exited with code ${early.code}`;
      throw new SpawnError(
        "perl",
        `Expected the launcher to start, but perl ${how}${
          launcher.#stderr ? `: ${launcher.#stderr.trim()}` : ""
        }`,
        { code: undefined },
      );
    }
    return launcher;
  }

  /** Whether the launcher process is gone (jobs must be started some other way). */
  get gone(): boolean {
    return this.#gone;
  }

  /**
   * Starts a job.
   *
   * @throws {SpawnError} As `spawnChild()` would for the same job (ENOENT, EACCES…, a missing
   *   `cwd` too), or when the launcher is closing or gone.
   */
  spawn(options: LaunchOptions): Promise<ChildHandle> {
    const file = options.cmd[0];
    if (this.#closing !== undefined || this.#gone) {
      return Promise.reject(
        new SpawnError(
          file,
          `Expected the launcher to be running to start \`${file}\`, but it ${
            this.#gone ? "is gone" : "was closed"
          }`,
        ),
      );
    }
    const id = ++this.#nextId;
    let start!: Job["start"];
    const started = new Promise<ChildHandle>((resolve, reject) => (start = { resolve, reject }));
    this.#jobs.set(id, {
      file,
      options,
      start,
      started,
      handle: undefined,
      pid: 0,
      exit: undefined,
      resolveExited: () => {},
      resolveClosed: () => {},
      closed: undefined,
      cutTimer: undefined,
    });
    this.#child.write(spawnFrame(id, options));
    return started;
  }

  /**
   * Stops what still runs (SIGTERM, then SIGKILL after `KILL_GRACE_MS`), waits for it, closes
   * the launcher's stdin and waits for it to exit. Idempotent; never rejects.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#jobs.values()].map((job) => job.started));
    const closing: Promise<ChildExit>[] = [];
    for (const job of this.#jobs.values()) {
      if (job.handle === undefined || job.closed === undefined) continue;
      if (job.exit === undefined) killGently(job.handle, KILL_GRACE_MS);
      closing.push(job.closed);
    }
    await Promise.all(closing);
    try {
      this.#child.end();
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), EXIT_WAIT_MS);
    await this.#child.closed;
    clearTimeout(timer);
  }

  #receive(chunk: Uint8Array): void {
    for (const body of this.#frames.push(chunk)) this.#handle(decode(body));
  }

  #handle(message: LauncherMessage): void {
    if (message.type === "ready") return this.#ready();
    const job = this.#jobs.get(message.id);
    if (job === undefined) return;
    switch (message.type) {
      case "started":
        return this.#started(message.id, job, message.pid);
      case "failed":
        this.#jobs.delete(message.id);
        job.start?.reject(spawnError(job.file, startFailure(job.options.cmd, message.errno)));
        job.start = undefined;
        return;
      case "output":
        if (message.stream === "stdout") job.options.onStdout(message.bytes);
        else job.options.onStderr(message.bytes);
        return;
      case "exited":
        job.exit = message.exit;
        job.resolveExited(message.exit);
        // A grandchild (a shell's background job) may hold the pipes open for as long as it
        // lives: as with spawnChild(), they are cut after a grace.
        job.cutTimer = setTimeout(() => this.#send(controlFrame("U", message.id)), PIPE_GRACE_MS);
        return;
      case "closed":
        clearTimeout(job.cutTimer);
        this.#jobs.delete(message.id);
        job.resolveClosed(job.exit ?? UNKNOWN_EXIT);
        return;
    }
  }

  #started(id: number, job: Job, pid: number): void {
    job.pid = pid;
    const exited = new Promise<ChildExit>((resolve) => (job.resolveExited = resolve));
    job.closed = new Promise<ChildExit>((resolve) => (job.resolveClosed = resolve));
    trackProcess(pid, exited);
    job.handle = {
      pid,
      exited,
      closed: job.closed,
      kill: (signal = "SIGTERM") => {
        // Through the launcher, which signals only a child it has not reaped: a reaped pid may
        // already belong to another process.
        if (job.exit === undefined) this.#send(controlFrame("K", id, signal));
      },
      send() {
        throw new TypeError("A command started by the launcher has no IPC channel");
      },
      write() {
        throw new TypeError("A command started by the launcher takes its stdin as `input`");
      },
      end() {},
      ref() {},
      // The launcher is shared by the batch's jobs: one of them cannot let go of it.
      unref: () => false,
    };
    job.start?.resolve(job.handle);
    job.start = undefined;
  }

  #send(frame: Uint8Array): void {
    if (this.#gone) return;
    try {
      this.#child.write(frame);
    } catch {
      // It is exiting: `#lost` settles what is left.
    }
  }

  /**
   * The launcher is gone (it was closed, killed, or crashed) and all it wrote was read: settles
   * every job it left, so that no promise hangs. A job still running lost its supervisor and is
   * killed; its exit is unknown.
   */
  #lost(): void {
    this.#gone = true;
    for (const [id, job] of this.#jobs) {
      this.#jobs.delete(id);
      clearTimeout(job.cutTimer);
      if (job.start !== undefined) {
        job.start.reject(
          new SpawnError(
            job.file,
            `Expected the launcher to start \`${job.file}\`, but it exited first`,
          ),
        );
        continue;
      }
      if (job.exit === undefined) {
        try {
          process.kill(job.pid, "SIGKILL");
        } catch {
          // It is gone already.
        }
        job.exit = UNKNOWN_EXIT;
        job.resolveExited(UNKNOWN_EXIT);
      }
      job.resolveClosed(job.exit);
    }
  }
}

/** The exit of a job whose launcher died before it could say. */
const UNKNOWN_EXIT: ChildExit = { code: null, signal: null };

const encoder = new TextEncoder();

/** The boot frame: the script's length as 8 hex digits, then the script (ASCII). */
function bootBytes(): Uint8Array {
  return encoder.encode(LAUNCHER_SCRIPT.length.toString(16).padStart(8, "0") + LAUNCHER_SCRIPT);
}

/** Whether the launcher can carry `options`: no NUL byte anywhere, no `=` in a name. */
export function launchable(options: LaunchOptions): boolean {
  const strings = [...options.cmd, ...Object.values(options.env ?? {})];
  if (options.cwd !== undefined) strings.push(options.cwd);
  for (const name of Object.keys(options.env ?? {})) {
    if (name === "" || name.includes("=")) return false;
    strings.push(name);
  }
  return strings.every((text) => !text.includes("\0"));
}

/** The `S` frame of a job. */
function spawnFrame(id: number, options: LaunchOptions): Uint8Array {
  const env = Object.entries(options.env ?? {});
  const cwd = options.cwd === undefined ? undefined : absolute(options.cwd);
  const input = options.input;
  const fields = [
    "S",
    String(id),
    String(options.maxOutputBytes),
    cwd === undefined ? "" : `+${cwd}`,
    String(env.length),
    String(options.cmd.length),
    input === undefined ? "0" : "1",
    ...env.flat(),
    ...options.cmd,
  ];
  const head = encoder.encode(fields.join("\0") + "\0");
  const size = head.length + (input?.length ?? 0);
  const frame = new Uint8Array(4 + size);
  new DataView(frame.buffer).setUint32(0, size);
  frame.set(head, 4);
  if (input !== undefined) frame.set(input, 4 + head.length);
  return frame;
}

/**
 * `cwd` made absolute against this process's current directory, as spawnChild() would
 * resolve it now: the launcher's own directory is the one this process had when it started.
 */
function absolute(cwd: string): string {
  if (cwd.startsWith("/")) return cwd;
  try {
    return `${process.cwd()}/${cwd}`;
  } catch {
    return cwd;
  }
}

/** A `K` or `U` frame. */
function controlFrame(type: "K" | "U", id: number, signal?: string): Uint8Array {
  const body = encoder.encode(
    signal === undefined ? `${type}\0${id}` : `${type}\0${id}\0${signal}`,
  );
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  return frame;
}

/** Cuts the launcher's stdout into frame bodies. */
class FrameReader {
  #pending: Uint8Array = new Uint8Array(0);

  /** The bodies of the frames `chunk` completes. */
  push(chunk: Uint8Array): Uint8Array[] {
    let bytes = chunk;
    if (this.#pending.length > 0) {
      bytes = new Uint8Array(this.#pending.length + chunk.length);
      bytes.set(this.#pending);
      bytes.set(chunk, this.#pending.length);
    }
    const bodies: Uint8Array[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    while (bytes.length - at >= 4) {
      const size = view.getUint32(at);
      if (bytes.length - at - 4 < size) break;
      bodies.push(bytes.subarray(at + 4, at + 4 + size));
      at += 4 + size;
    }
    this.#pending = at === bytes.length ? new Uint8Array(0) : bytes.slice(at);
    return bodies;
  }
}

const NUL = 0;

/** Decodes one frame body of the launcher. */
function decode(body: Uint8Array): LauncherMessage {
  const type = String.fromCharCode(body[0]);
  if (type === "O" || type === "E") {
    const end = body.indexOf(NUL, 2);
    return {
      type: "output",
      id: Number(latin1(body.subarray(2, end))),
      stream: type === "O" ? "stdout" : "stderr",
      bytes: body.slice(end + 1),
    };
  }
  const [, id, a, b] = latin1(body).split("\0");
  switch (type) {
    case "R":
      return { type: "ready" };
    case "P":
      return { type: "started", id: Number(id), pid: Number(a) };
    case "F":
      return { type: "failed", id: Number(id), errno: Number(a) };
    case "X":
      return {
        type: "exited",
        id: Number(id),
        exit: b !== ""
          ? { code: null, signal: signalName(Number(b)) }
          : { code: Number(a), signal: null },
      };
    case "C":
      return { type: "closed", id: Number(id) };
  }
  throw new TypeError(
    `Expected a launcher message of type R, P, F, O, E, X or C, got ${JSON.stringify(type)}`,
  );
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

/** Each number's first name in a table of `os.constants`, e.g. SIGABRT rather than SIGIOT. */
function byNumber(table: Record<string, number>): Map<number, string> {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(table)) if (!names.has(value)) names.set(value, name);
  return names;
}

let signalNames: Map<number, string> | undefined;
let errnoNames: Map<number, string> | undefined;

/** A signal's name as the runtimes report it ("SIGSEGV"): the host's own numbering. */
function signalName(signal: number): string {
  signalNames ??= byNumber(constants.signals as Record<string, number>);
  return signalNames.get(signal) ?? `SIG${signal}`;
}

/**
 * The error Node's `spawn` gives for a start that failed with `errno`, which `spawnError()`
 * turns into the same `SpawnError` as for any runtime's failure.
 */
function startFailure(cmd: readonly string[], errno: number): Error {
  errnoNames ??= byNumber(constants.errno as Record<string, number>);
  const [file, ...args] = cmd;
  const code = errnoNames.get(errno) ?? `errno ${errno}`;
  return Object.assign(new Error(`spawn ${file} ${code}`), {
    errno: -errno,
    code,
    syscall: `spawn ${file}`,
    path: file,
    spawnargs: args,
  });
}
