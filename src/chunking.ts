/**
 * Chunk sizing. Small items are sent in chunks so that a map over 200,000 trivial items is a
 * few dozen messages, not 200,000; slow items go one by one so every worker stays busy.
 *
 * Auto sizing starts every worker on a one-item chunk, then sizes chunks from the measured
 * time per item (reported by the worker, excluding transport) towards a target duration long
 * enough to hide a round trip, growing at most 16× per step. Towards the end, chunks shrink
 * to an even share of what is left, so workers finish together, but never below a quarter of
 * the target duration.
 *
 * @module
 */

/** Duration a chunk should take: ~40 round trips on this class of machine. */
export const TARGET_CHUNK_MS = 4;
/** Largest auto chunk, which bounds the size of one message. */
export const MAX_CHUNK = 8192;
const GROWTH = 16;

/** Chooses the size of each next chunk of one call. */
export class ChunkSizer {
  readonly #fixed: number | undefined;
  readonly #workers: number;
  #perItemMs: number | undefined;
  #last = 1;

  /**
   * @param chunkSize A fixed size, or "auto".
   * @param workers How many chunks run at once.
   */
  constructor(chunkSize: number | "auto", workers: number) {
    this.#fixed = chunkSize === "auto" ? undefined : chunkSize;
    this.#workers = workers;
  }

  /** Size of the next chunk; `remaining` is the number of items left, when known. */
  next(remaining?: number): number {
    if (this.#fixed !== undefined) return this.#fixed;
    if (this.#perItemMs === undefined) return (this.#last = 1);
    const wanted = this.#perItemMs > 0 ? TARGET_CHUNK_MS / this.#perItemMs : Infinity;
    let size = Math.max(1, Math.min(Math.floor(wanted), this.#last * GROWTH, MAX_CHUNK));
    if (remaining !== undefined) {
      // Even out the tail across workers, but never below a quarter of the target duration:
      // shorter chunks cost more in round trips than the imbalance they save.
      const share = Math.ceil(remaining / this.#workers);
      size = Math.min(size, Math.max(share, Math.floor(wanted / 4), 1));
    }
    return (this.#last = size);
  }

  /** Records that `items` items took `ms` milliseconds to run. */
  record(items: number, ms: number): void {
    if (this.#fixed !== undefined || items === 0) return;
    const perItem = ms / items;
    this.#perItemMs = this.#perItemMs === undefined ? perItem : (this.#perItemMs + perItem) / 2;
  }
}
