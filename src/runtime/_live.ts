/**
 * Counts threads that have been started and not yet seen to end, so tests and benches can
 * check that nothing leaks.
 *
 * @module
 */

let live = 0;

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
