/**
 * Counts threads and child processes that have been started and not yet seen to end, so
 * tests and benches can check that nothing leaks.
 *
 * @module
 */

let live = 0;
const processes = new Set<number>();

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

/** Records a started child process until `exited` settles (once its exit status is reaped). */
export function trackProcess(pid: number, exited: Promise<unknown>): void {
  processes.add(pid);
  const done = (): void => {
    processes.delete(pid);
  };
  exited.then(done, done);
}

/**
 * Pids of the child processes fanout started in this isolate (pool workers and commands) whose
 * exit has not been reaped yet.
 */
export function liveProcessPids(): number[] {
  return [...processes];
}
