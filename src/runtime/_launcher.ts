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

import process from "node:process";
import { SpawnError } from "../errors.ts";
import { spawnChild } from "./mod.ts";
import type { ChildExit, ChildHandle } from "./types.ts";
import { PIPE_GRACE_MS, spawnError } from "./_spawn.ts";
import { markLauncher, trackProcess } from "./_live.ts";
import { KILL_GRACE_MS, killGently } from "./_kill.ts";
import { BOOT, bootBytes } from "./_launcher_script.ts";
import { controlFrame, decode, FrameReader, spawnFrame, startFailure } from "./_launcher_wire.ts";
import type { LauncherMessage } from "./_launcher_wire.ts";

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
