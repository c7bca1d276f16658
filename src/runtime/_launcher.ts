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

/**
 * The helper. It reaps with `waitpid(WNOHANG)` after every `select()`, which a SIGCHLD
 * interrupts; the loop never blocks on one job (an `exec()` is waited for through a pipe in
 * the same `select()`), and it writes its replies once per turn.
 */
export const LAUNCHER_SCRIPT: string = String.raw`use strict;
use warnings;
use Errno qw(EINTR EAGAIN EWOULDBLOCK);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);

$0 = 'fanout-launcher';
# 1 on Linux, macOS and the BSDs; POSIX.pm would say so, at ~15 ms of start-up.
use constant WNOHANG => 1;
use constant CHUNK => 65536;
# The longest select() waits while jobs run (see the loop).
use constant NET_S => 0.02;

# Handlers, not 'IGNORE': exec() resets a handled signal for the job, an ignored one it would
# inherit. SIGPIPE: a write to a job that closed its stdin fails with EPIPE instead. SIGINT and
# SIGQUIT (Ctrl-C reaches the whole process group): the jobs die of them and are reported as
# they would be to a parent that spawned them itself, which decides what happens next.
$SIG{$_} = sub { } for qw(PIPE INT QUIT);
my $quit = 0;
$SIG{TERM} = sub { $quit = 1 };
my $chld = 0;
$SIG{CHLD} = sub { $chld = 1 };

open(my $null, '<', '/dev/null') or die "fanout-launcher: /dev/null: $!\n";
my %jobs;    # id => job
my %by_pid;  # pid => id, until reaped
my $requests = '';
my $replies = '';
my $eof = 0;

sub put { $replies .= pack('N', length $_[0]) . $_[0] }

sub flush {
  while (length $replies) {
    my $n = syswrite(STDOUT, $replies);
    if (!defined $n) {
      next if $! == EINTR;
      # The parent's end is closed: it is gone, and nothing is left to report to.
      shut();
    }
    substr($replies, 0, $n) = '';
  }
}

sub shut {
  kill 'TERM', keys %by_pid;
  exit 0;
}

sub close_pipes {
  my ($job, @kinds) = @_;
  for my $kind (@kinds) {
    close $job->{$kind} if defined $job->{$kind};
    $job->{$kind} = undef;
  }
  $job->{input} = '' if grep { $_ eq 'in' } @kinds;
}

sub closed_if_done {
  my ($id) = @_;
  my $job = $jobs{$id};
  return if !$job->{exited} || defined $job->{out} || defined $job->{err};
  delete $jobs{$id};
  put("C\0$id");
}

sub spawn {
  my ($id, $max, $cwd, $envn, $argvn, $has_input, $rest) = @_;
  my @fields = split /\0/, $rest, 2 * $envn + $argvn + 1;
  my $input = pop @fields;
  my @env = splice @fields, 0, 2 * $envn;
  my ($out_r, $out_w, $err_r, $err_w, $in_r, $in_w, $report_r, $report_w);
  # Perl opens every descriptor above 2 close-on-exec: none of these leaks into a job.
  pipe($out_r, $out_w) && pipe($err_r, $err_w) && pipe($report_r, $report_w) &&
    (!$has_input || pipe($in_r, $in_w))
    or return put("F\0$id\0" . ($! + 0));
  my $pid = fork();
  return put("F\0$id\0" . ($! + 0)) if !defined $pid;
  if ($pid == 0) {
    # As little as can be before exec(): every page Perl writes here is copied for the job.
    if (open(STDIN, '<&', $has_input ? $in_r : $null) && open(STDOUT, '>&', $out_w) &&
      open(STDERR, '>&', $err_w) && ($cwd eq '' || chdir substr($cwd, 1)))
    {
      while (@env) {
        my $key = shift @env;
        $ENV{$key} = shift @env;
      }
      no warnings 'exec';
      exec { $fields[0] } @fields;
    }
    syswrite($report_w, pack('N', $! + 0));
    CORE::exit(127);
  }
  close $_ for grep { defined } $out_w, $err_w, $in_r, $report_w;
  my $job = {
    pid => $pid,
    report => $report_r,
    out => $out_r,
    err => $err_r,
    in => $in_w,
    input => $input,
    at => 0,
    room => { out => $max + 1, err => $max + 1 },
    exited => 0,
  };
  $jobs{$id} = $job;
  $by_pid{$pid} = $id;
  if (defined $in_w) {
    if (length $input) {
      fcntl($in_w, F_SETFL, fcntl($in_w, F_GETFL, 0) | O_NONBLOCK);
    } else {
      close_pipes($job, 'in');
    }
  }
}

# The report pipe closes at a successful exec(), or brings the errno of the step that failed.
sub reported {
  my ($id) = @_;
  my $job = $jobs{$id};
  my ($report, $n) = ('');
  do { $n = sysread($job->{report}, $report, 4) } while (!defined $n && $! == EINTR);
  close_pipes($job, 'report');
  if (!$n) {
    return put("P\0$id\0$job->{pid}");
  }
  # Its exit (127) is reaped without a word: the parent hears of the failure only.
  delete $jobs{$id};
  $job->{failed} = 1;
  close_pipes($job, qw(out err in));
  put("F\0$id\0" . unpack('N', $report));
}

sub request {
  my ($body) = @_;
  my $type = substr($body, 0, 1);
  if ($type eq 'S') {
    my (undef, @head) = split /\0/, $body, 8;
    spawn(@head);
  } elsif ($type eq 'K') {
    my (undef, $id, $signal) = split /\0/, $body;
    my $job = $jobs{$id};
    # Only a job not reaped yet: a reaped pid may already be another process's.
    kill $signal, $job->{pid} if defined $job && !$job->{exited};
  } elsif ($type eq 'U') {
    my (undef, $id) = split /\0/, $body;
    return if !defined $jobs{$id};
    close_pipes($jobs{$id}, qw(out err));
    closed_if_done($id);
  }
}

sub read_requests {
  my $n = sysread(STDIN, $requests, CHUNK, length $requests);
  if (!defined $n) {
    return if $! == EINTR || $! == EAGAIN;
    $n = 0;
  }
  $eof = 1 if $n == 0;
  while (length($requests) >= 4) {
    my $length = unpack('N', $requests);
    last if length($requests) < 4 + $length;
    my $body = substr($requests, 4, $length);
    substr($requests, 0, 4 + $length) = '';
    request($body);
  }
}

sub reap {
  $chld = 0;
  for (;;) {
    my $pid = waitpid(-1, WNOHANG);
    last if $pid <= 0;
    my $status = $?;
    my $id = delete $by_pid{$pid};
    next if !defined $id || !defined $jobs{$id};
    my $job = $jobs{$id};
    # Dead, so its report is there to read at once.
    reported($id) if defined $job->{report};
    next if $job->{failed};
    $job->{exited} = 1;
    close_pipes($job, 'in');
    my $signal = $status & 127;
    put($signal ? "X\0$id\0\0$signal" : "X\0$id\0" . ($status >> 8) . "\0");
    closed_if_done($id);
  }
}

sub pump_output {
  my ($id, $kind) = @_;
  my $job = $jobs{$id};
  my $n = sysread($job->{$kind}, my $chunk, CHUNK);
  if (!defined $n) {
    return if $! == EINTR || $! == EAGAIN;
    $n = 0;
  }
  if ($n == 0) {
    close_pipes($job, $kind);
    return closed_if_done($id);
  }
  # Past the parent's limit (and one byte more, which tells it output was cut), the rest is
  # read and dropped, so that the job never blocks on a full pipe.
  my $room = $job->{room}{$kind};
  return if $room <= 0;
  $chunk = substr($chunk, 0, $room) if $n > $room;
  $job->{room}{$kind} -= length $chunk;
  put(($kind eq 'out' ? 'O' : 'E') . "\0$id\0" . $chunk);
}

sub pump_input {
  my ($job) = @_;
  my $left = length($job->{input}) - $job->{at};
  my $n = syswrite($job->{in}, $job->{input}, $left > CHUNK ? CHUNK : $left, $job->{at});
  if (!defined $n) {
    return if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
    # EPIPE: the job closed its stdin without reading all of it. Its exit status tells.
    return close_pipes($job, 'in');
  }
  $job->{at} += $n;
  close_pipes($job, 'in') if $job->{at} >= length $job->{input};
}

binmode STDIN;
binmode STDOUT;
put("R\0$$");
for (;;) {
  flush();
  shut() if $quit || $eof;
  my ($rin, $win) = ('', '');
  my @watched;
  vec($rin, fileno(STDIN), 1) = 1;
  for my $id (keys %jobs) {
    my $job = $jobs{$id};
    # A job's output is read once it is known to have started.
    for my $kind (defined $job->{report} ? ('report') : ('out', 'err')) {
      next if !defined $job->{$kind};
      vec($rin, fileno($job->{$kind}), 1) = 1;
      push @watched, [$id, $kind, fileno($job->{$kind})];
    }
    if (defined $job->{in}) {
      vec($win, fileno($job->{in}), 1) = 1;
      push @watched, [$id, 'in', fileno($job->{in})];
    }
  }
  # Perl runs a signal handler between statements: a SIGCHLD that came while the loop was busy
  # set the flag, and this select() only polls. One that lands in the instant between that
  # check and the start of select() wakes nothing, so while jobs run select() never waits
  # longer than NET_S: no exit goes unreported.
  my $timeout = $chld ? 0 : %by_pid ? NET_S : undef;
  my $ready = select(my $rout = $rin, my $wout = $win, undef, $timeout);
  if ($ready < 0) {
    die "fanout-launcher: select: $!\n" if $! != EINTR;
    $ready = 0;
  }
  if ($ready > 0) {
    for my $w (@watched) {
      my ($id, $kind, $fd) = @$w;
      my $job = $jobs{$id};
      next if !defined $job || !defined $job->{$kind} || fileno($job->{$kind}) != $fd;
      if ($kind eq 'in') {
        pump_input($job) if vec($wout, $fd, 1);
      } elsif (vec($rout, $fd, 1)) {
        $kind eq 'report' ? reported($id) : pump_output($id, $kind);
      }
    }
    # After the jobs: a new job's pipes may reuse a descriptor just closed.
    read_requests() if vec($rout, fileno(STDIN), 1);
  }
  reap();
}
`;

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
