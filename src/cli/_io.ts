/**
 * Where the `fanout` command reads and writes: the process's own streams, or a test's.
 *
 * @module
 */

import process from "node:process";
import { Buffer } from "node:buffer";

/** Where the command writes; the process's own streams unless a test gives others. */
export interface Io {
  /** Where the jobs' output (and `--dry-run`, `--json -`) goes. */
  readonly stdout: { write(bytes: Uint8Array | string): unknown; isTTY?: boolean };
  /** Where the jobs' errors, messages and the bar go. */
  readonly stderr: {
    write(bytes: Uint8Array | string): unknown;
    isTTY?: boolean;
    columns?: number;
  };
  /** Standard input's text, read only when no `:::` source is given. */
  readStdin(): Promise<string>;
}

/** The process's own streams. */
export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    // Not readFileSync(0): on a pipe Node can fail with EAGAIN.
    readStdin: async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
      return Buffer.concat(chunks).toString("utf8");
    },
  };
}
