/**
 * Counts threads and child processes that have been started and not yet seen to end, so
 * tests and benches can check that nothing leaks.
 *
 * @module
 */

let live = 0;
const processes = new Set<number>();
/** The subset of `processes` that are fanout's own command launchers, not jobs. */
const launchers = new Set<number>();

/** Records a started thread; returns the function that records its end (safe to call twice). */
export function trackThread(): () => void {
  live++;
  let ended = false;
  return () => {
    if (!ended) {
      ended = true;
      live--;
    }
  };
}

/** Number of worker threads started by fanout in this isolate and still alive. */
export function liveThreadCount(): number {
  return live;
}

/**
 * Set by a pool thread (thread_entry.js): told how many child processes this isolate has, so
 * its pool lets it reap them before terminating it.
 */
const CHILDREN_HOOK = Symbol.for("fanout.children");

/** Records a started child process until `exited` settles (once its exit status is reaped). */
export function trackProcess(pid: number, exited: Promise<unknown>): void {
  processes.add(pid);
  tell();
  const done = (): void => {
    processes.delete(pid);
    launchers.delete(pid);
    tell();
  };
  exited.then(done, done);
}

function tell(): void {
  const hook = (globalThis as Record<symbol, unknown>)[CHILDREN_HOOK];
  if (typeof hook === "function") hook(processes.size);
}

/**
 * Pids of the child processes fanout started in this isolate (pool workers and commands) whose
 * exit has not been reaped yet.
 */
export function liveProcessPids(): number[] {
  return [...processes];
}

/** Marks a tracked child as a command launcher (`_launcher.ts`) rather than a job. */
export function markLauncher(pid: number): void {
  if (processes.has(pid)) launchers.add(pid);
}

/**
 * Pids of the commands and pool workers fanout started in this isolate and has not reaped,
 * leaving out the launchers that start commands on their behalf.
 */
export function liveJobPids(): number[] {
  return [...processes].filter((pid) => !launchers.has(pid));
}
