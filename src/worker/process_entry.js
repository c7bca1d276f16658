/**
 * The program every pool process runs: `<runtime> process_entry.js`, started by the process
 * strategy with the parent's own executable. Plain JavaScript, like every file a worker loads
 * (on Node a `.ts` entry costs ~50 ms more per spawn: runtime-probe.md §5).
 *
 * Messages (`ToProcess` / `FromProcess` in src/protocol.ts) go over the IPC channel on Node
 * and Bun (`process.send`, structured serialization), and as frames over stdin/stdout on Deno,
 * whose `Deno.Command` has no IPC channel; a task's own output on stdout is passed through by
 * the parent. On Deno the first bytes on stdin are the channel's token (see frames.js), which
 * every frame carries; until it has arrived nothing can be sent, so `ready` follows it.
 *
 * The process reports what ends it: `exit` before `process.exit`/`Deno.exit`, `fatal` for an
 * uncaught error or unhandled rejection (then exits with code 1), each with the index of the
 * item that was running. It exits by itself when the parent goes away (IPC disconnect, or end
 * of stdin).
 *
 * @module
 */

/** @import { EachFailure, FromProcess, ToProcess } from "../protocol.ts" */
/** @import { TaskFn } from "./load_task.js" */

import process from "node:process";
import { Chunk, eachReply, heapInUse, runItems } from "./run_task.js";
import { eachCloneReply, resultCloneFailure } from "./clone_failure.js";
import { loadTask } from "./load_task.js";
import { saveCompileCache, startCompileCache } from "./compile_cache.js";
import { serializeError } from "./error_wire.js";
import { encodeFrame, frameMarker, FrameReader, TOKEN_BYTES } from "./frames.js";
import { attachRefs, forgetShares, receiveShares } from "./shared_refs.js";

// Executors made by tasks here see this and default to serial (see ParallelConfig.strategy).
/** @type {any} */ (globalThis)[Symbol.for("fanout.worker")] = "process";
const scope = /** @type {any} */ (globalThis);
// Node: the compile cache on before any task module is imported (see compile_cache.js).
startCompileCache();
const deno = scope.Deno;
const ipc = typeof process.send === "function";
if (!ipc && deno === undefined) {
  throw new Error("process_entry.js must be started by fanout's process strategy");
}
const exitNow = deno !== undefined ? deno.exit.bind(deno) : process.exit.bind(process);

/**
 * The Deno channel's marker, set once the parent's token has arrived on stdin. Kept in this
 * module only: a task that could read it could forge frames.
 *
 * @type {Uint8Array | undefined}
 */
let marker;

/**
 * Deno: `node:net`'s `Socket`, once loaded (see {@linkcode readStdin}); `null` where it cannot
 * read stdin.
 *
 * @type {typeof import("node:net").Socket | null | undefined}
 */
let StdinSocket;
let stdinSocketLoading = false;

/**
 * Sends a message. On Deno the frame is written synchronously, so it is out before anything
 * that follows (an exit included); it throws before the token has arrived.
 *
 * @type {(message: FromProcess) => void}
 */
const send = ipc
  ? (message) => /** @type {NonNullable<typeof process.send>} */ (process.send)(message)
  : (message) => {
    if (marker === undefined) throw new Error("the parent's channel token has not arrived yet");
    const frame = encodeFrame(message, marker);
    let written = 0;
    while (written < frame.length) written += deno.stdout.writeSync(frame.subarray(written));
    // A chunk answered: the channel is in use, and the call waiting on this reply has its value.
    if (message.type === "done" || message.type === "fail" || message.type === "cancelled") {
      loadStdinSocket();
    }
  };

/** Index of the item running, for crash reports; -1 between chunks. */
let running = -1;
/** @type {Chunk | undefined} */
let current;
/** Id of the chunk the pool cancelled. */
let cancelledId = 0;
/** @type {Map<number, Promise<TaskFn>>} */
const prepared = new Map();

/**
 * Sends a last message, then exits. Over IPC a send is asynchronous: wait for it to be
 * flushed, but not for ever.
 *
 * @param {FromProcess} message
 * @param {number} code
 */
function sendAndExit(message, code) {
  try {
    if (!ipc) {
      send(message);
      return exitNow(code);
    }
    /** @type {NonNullable<typeof process.send>} */ (process.send)(
      message,
      undefined,
      {},
      () => exitNow(code),
    );
    setTimeout(() => exitNow(code), 1000);
  } catch {
    exitNow(code);
  }
}

// Report exits the task asks for; the exit status alone would not say which item ran.
/** @param {unknown} code */
const reportExit = (code) => {
  try {
    send({ type: "exit", code: typeof code === "number" ? code : 0, index: running });
  } catch {
    // The parent is gone: nothing to tell.
  }
};
const exit = process.exit.bind(process);
process.exit = /** @type {typeof process.exit} */ ((code) => {
  reportExit(code ?? process.exitCode ?? 0);
  return exit(code);
});
if (deno !== undefined) {
  try {
    deno.exit = (/** @type {number | undefined} */ code) => {
      reportExit(code ?? 0);
      return exitNow(code);
    };
  } catch {
    // Not writable on this Deno: the exit status still tells the code.
  }
}

/** @param {unknown} error */
const fatal = (error) =>
  sendAndExit({ type: "fatal", error: serializeError(error), index: running }, 1);
process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);

/** @param {ToProcess} message */
function onMessage(message) {
  if (message.type === "cancel") {
    cancelledId = message.id;
    if (current?.id === message.id) current.abort();
    return;
  }
  if (message.type === "release") return forgetShares(message.ids);
  const { id, task, spec, base, items, timed, seed, each, concurrency } = message;
  measureHeap = message.heap === true;
  if (message.shares !== undefined) receiveShares(message.shares, undefined, true);
  if (message.refs) attachRefs(items);
  let loading = prepared.get(task);
  if (loading === undefined) {
    if (spec === undefined) throw new Error(`task ${task} was never sent to this process`);
    loading = loadTask(spec);
    prepared.set(task, loading);
    loading.catch(() => prepared.delete(task));
    // The pool bounds the load on its own clock, and starts the task's only after it.
    loading.then(() => {
      // A pool process is stopped by SIGTERM, which writes no cache: write it now.
      saveCompileCache();
      send({ type: "loaded", task });
    }, () => {});
  }
  loading.then(
    (fn) => runChunk(id, fn, base, items, timed, seed ?? 0n, each, concurrency ?? 1),
    (error) =>
      send({ type: "fail", id, index: base, error: serializeError(error), load: true, ...heap() }),
  );
}

/** Whether replies carry the heap in use (the pool's `idleMemoryLimitMb`). */
let measureHeap = false;

/** `{ heap }` for a reply, when the pool asks for it. */
function heap() {
  return measureHeap ? { heap: heapInUse() } : {};
}

/**
 * @param {number} id
 * @param {TaskFn} fn
 * @param {number} base
 * @param {unknown[]} items
 * @param {boolean} timed
 * @param {bigint} seed
 * @param {{ seeds: readonly (bigint | undefined)[] | undefined } | undefined} each Set for a batch of
 *   submits.
 * @param {number} limit Items that may be in flight at once.
 */
function runChunk(id, fn, base, items, timed, seed, each, limit) {
  const chunk = new Chunk(id, () => cancelledId === id, seed);
  current = chunk;
  const start = timed ? performance.now() : 0;
  const end = () => {
    current = undefined;
    running = -1;
  };
  /** @type {import("./run_task.js").ChunkHooks} */
  const hooks = {
    at: (index) => (running = index),
    fail(index, error, stragglers) {
      end();
      const rest = stragglers ? { stragglers } : {};
      send({ type: "fail", id, index, error: serializeError(error), ...rest, ...heap() });
    },
    stopped() {
      end();
      send({ type: "cancelled", id, ...heap() });
    },
    done(values, failures) {
      end();
      const ms = timed ? performance.now() - start : NaN;
      const reply = failures === undefined ? undefined : eachReply(values, failures);
      /** @param {EachFailure[] | undefined} failed */
      const done = (failed) =>
        send({ type: "done", id, values, ms, ...(failed ? { failures: failed } : {}), ...heap() });
      try {
        done(reply?.failures);
      } catch (error) {
        try {
          // In a batch, each result that cannot be sent fails its own submit; the rest go back.
          if (each === undefined) throw error;
          done(eachCloneReply(values, reply, error).failures);
        } catch (again) {
          send({ ...resultCloneFailure(id, base, values, again), ...heap() });
        }
      }
    },
  };
  runItems(fn, chunk, base, items, hooks, each, limit);
}

if (ipc) {
  process.on("message", (message) => onMessage(/** @type {ToProcess} */ (message)));
  // The parent went away: nobody is left to take results.
  process.on("disconnect", () => exitNow(0));
  send({ type: "ready" });
} else {
  readStdin().catch(fatal);
}

/**
 * Deno: begins loading `node:net`, once. Its import takes ~3.5 ms, so it is not on the way to a
 * process's first result: it begins once the first chunk was answered.
 */
function loadStdinSocket() {
  if (stdinSocketLoading) return;
  stdinSocketLoading = true;
  if (deno.build?.os === "windows") {
    StdinSocket = null;
    return;
  }
  import("node:net").then(
    (net) => (StdinSocket = net.Socket),
    () => (StdinSocket = null),
  );
}

/**
 * Deno: takes the token from stdin, says `ready`, then reads frames until stdin ends.
 *
 * Stdin is read with `Deno.stdin.read` into one reused buffer (`stdin.readable` allocates 64 KiB
 * for every read), each chunk a copy of what a read filled, until `node:net` has loaded
 * ({@linkcode loadStdinSocket}); from the next read on, through a `node:net` `Socket` on fd 0,
 * which polls the pipe on the event loop: `Deno.stdin` hands every read to a blocking thread and
 * back (a dup, two wake-ups and a close per read), a fifth of a small round trip. The switch is
 * made between two reads, so no bytes are read out of order.
 */
async function readStdin() {
  /** @type {FrameReader | undefined} */
  let reader;
  let head = new Uint8Array(0);
  /** @param {Uint8Array} chunk The next bytes of stdin, not reused by the caller. */
  const take = (chunk) => {
    if (reader !== undefined) return reader.push(chunk);
    const joined = new Uint8Array(head.length + chunk.length);
    joined.set(head, 0);
    joined.set(chunk, head.length);
    head = joined;
    if (head.length < TOKEN_BYTES) return;
    marker = frameMarker(head.slice(0, TOKEN_BYTES));
    reader = new FrameReader(marker, {
      message: (message) => onMessage(/** @type {ToProcess} */ (message)),
      // Only the parent writes to stdin, and only frames: anything else is a broken channel.
      other: (bytes) =>
        fatal(
          new Error(
            `Expected only frames from the parent on stdin, got ${bytes.length} other bytes`,
          ),
        ),
      corrupt: (error) =>
        fatal(
          new Error(`The channel from the parent was corrupt: ${error.message}`, { cause: error }),
        ),
    });
    send({ type: "ready" });
    if (head.length > TOKEN_BYTES) reader.push(head.subarray(TOKEN_BYTES));
  };
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    if (StdinSocket) {
      /** @type {import("node:net").Socket | undefined} */
      let socket;
      try {
        socket = new StdinSocket({ fd: 0, readable: true, writable: false });
      } catch {
        StdinSocket = null; // Not on this Deno: go on with Deno.stdin.
      }
      if (socket !== undefined) {
        // Each chunk it emits is a buffer of its own.
        socket.on("data", (/** @type {Uint8Array} */ chunk) => {
          try {
            take(chunk);
          } catch (error) {
            fatal(error);
          }
        });
        socket.on("error", fatal);
        // The parent went away: nobody is left to take results.
        socket.on("end", () => exitNow(0));
        return;
      }
    }
    const read = await deno.stdin.read(buffer);
    if (read === null) break;
    if (read > 0) take(buffer.slice(0, read));
  }
  // The parent went away: nobody is left to take results.
  exitNow(0);
}
