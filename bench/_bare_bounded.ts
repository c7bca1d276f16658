/**
 * The bare pool with a bound on what is in flight: the baseline of `submits.ts` part sb3. Raw
 * workers of `_bare.ts` (`_bare_worker.js`, `n + 1`), at most `limit` items posted and not yet
 * answered, a new one posted as soon as one is answered, with none of the pool's machinery.
 *
 * @module
 */

import type { BareWorker } from "./_bare.ts";

/**
 * Posts `items` to `workers` with at most `limit` in flight: `limit` up front, round-robin,
 * then one more to a worker each time it answers one. Each worker answers in the order it
 * received, so a queue of indices per worker says which item each reply belongs to.
 *
 * @param workers The bare pool (started with `"inc"`).
 * @param items The numbers to send.
 * @param limit How many may be in flight at once.
 * @returns Each item plus one, in input order.
 */
export function bareBounded(
  workers: BareWorker[],
  items: readonly number[],
  limit: number,
): Promise<number[]> {
  if (items.length === 0) return Promise.resolve([]);
  return new Promise((resolve) => {
    const out = new Array<number>(items.length);
    let next = 0;
    let left = items.length;
    const posters = workers.map((worker) => {
      const queue: number[] = [];
      let head = 0;
      const post = (): void => {
        queue.push(next);
        worker.post(items[next++]);
      };
      worker.onReply((value) => {
        out[queue[head++]] = value;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        if (--left === 0) resolve(out);
        else if (next < items.length) post();
      });
      return post;
    });
    // The first `limit` items, round-robin.
    for (let k = 0; next < items.length && k < limit; k++) posters[k % posters.length]();
  });
}
