/**
 * The submitter's shared values in Redis: each handle's value written once, under a key of
 * its own, the first time a chunk holds it; its expiry pushed back while it is in use; deleted
 * when the handle is released.
 *
 * @module
 */

import { MARK } from "../worker/shared_refs.js";
import { encode } from "./_codec.ts";
import type { Link } from "./_link.ts";

/**
 * A shared value's key expires this long after it was written or last pushed back, so that a
 * submitter that died leaves nothing behind for ever; one in use is pushed back every
 * `SHARE_TOUCH_MS`.
 */
const SHARE_TTL_S = 24 * 3600;
const SHARE_TOUCH_MS = 3600_000;

/** The shared values one strategy put in Redis. */
export class SharedValues {
  /** What every key starts with (the queue's share prefix and the submitter's id). */
  readonly #prefix: string;
  /** By handle id: the key, once written. */
  readonly #keys = new Map<number, Promise<string>>();
  /** When each one's expiry was last pushed back (`Date.now()`). */
  readonly #touched = new Map<number, number>();

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** The Redis key of a handle's value, written there the first time a chunk holds it. */
  key(client: Link["client"], handle: object): Promise<string> {
    const id = (handle as { [MARK]: number })[MARK];
    const name = `${this.#prefix}${id}`;
    const write = (): Promise<string> => {
      let text: string;
      try {
        text = encode((handle as { value: unknown }).value);
      } catch (error) {
        return Promise.reject(error);
      }
      return client.set(name, text, "EX", SHARE_TTL_S).then(() => name);
    };
    let key = this.#keys.get(id);
    if (key !== undefined && this.#touched.get(id)! < Date.now() - SHARE_TOUCH_MS) {
      // In use for long: its expiry is pushed back, or, if it lapsed after all, it is written again.
      this.#touched.set(id, Date.now());
      key = key.then(async () => (await client.expire(name, SHARE_TTL_S)) === 1 ? name : write());
      this.#keys.set(id, key);
    }
    if (key === undefined) {
      key = write();
      this.#keys.set(id, key);
      this.#touched.set(id, Date.now());
    }
    const written = key;
    written.catch(() => {
      if (this.#keys.get(id) === written) this.#keys.delete(id);
    });
    return written;
  }

  /** A released handle: its value gone from Redis (through `link`, if connected). */
  forget(id: number, link: Link | undefined): void {
    const key = this.#keys.get(id);
    if (key === undefined) return;
    this.#keys.delete(id);
    this.#touched.delete(id);
    if (link === undefined) return;
    key.then((name) => link.forget([name])).catch(() => {});
  }

  /** Forgets the keys Redis no longer has (it lost its data): the next chunk writes them again. */
  recheck(link: Link): void {
    for (const [id, key] of [...this.#keys]) {
      key.then((name) => link.client.exists(name)).then((found) => {
        if (found === 0 && this.#keys.get(id) === key) {
          this.#keys.delete(id);
          this.#touched.delete(id);
        }
      }).catch(() => {});
    }
  }

  /** The keys written, once every write settled (those that failed left out). */
  written(): Promise<string[]> {
    return Promise.all([...this.#keys.values()].map((key) => key.catch(() => "")))
      .then((names) => names.filter((name) => name !== ""));
  }
}
