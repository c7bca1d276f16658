/**
 * The launcher's wire, on this side: the frames sent to it and the messages read back (the
 * format is described in `_launcher.ts`).
 *
 * @module
 */

import { constants } from "node:os";
import process from "node:process";
import type { ChildExit } from "./types.ts";
import type { LaunchOptions } from "./_launcher.ts";

const encoder = new TextEncoder();

/** A message of the launcher, decoded. */
export type LauncherMessage =
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

/** The `S` frame of a job. */
export function spawnFrame(id: number, options: LaunchOptions): Uint8Array {
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
export function controlFrame(type: "K" | "U", id: number, signal?: string): Uint8Array {
  const body = encoder.encode(
    signal === undefined ? `${type}\0${id}` : `${type}\0${id}\0${signal}`,
  );
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  return frame;
}

/** Cuts the launcher's stdout into frame bodies. */
export class FrameReader {
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
export function decode(body: Uint8Array): LauncherMessage {
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
export function startFailure(cmd: readonly string[], errno: number): Error {
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
