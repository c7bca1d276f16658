/**
 * Baselines written directly against each runtime's own spawn API (`Deno.Command`,
 * `Bun.spawn`, `node:child_process`), with none of fanout's machinery: a child that echoes
 * messages on the transport the process strategy uses (`_bare_process.mjs`), a spawn timed
 * until its child prints "ready" (`_ready.mjs`), and a command run to its end with its output
 * read (the command-batch scenario's bare loop).
 *
 * @module
 */

import { spawn as spawnNode } from "node:child_process";
import { fileURLToPath } from "node:url";
import { detect } from "../src/runtime/mod.ts";
import { frame, unframer } from "./_frames.mjs";

const READY_SCRIPT = fileURLToPath(new URL("./_ready.mjs", import.meta.url));
const ECHO_SCRIPT = fileURLToPath(new URL("./_bare_process.mjs", import.meta.url));

/** What of `Bun.spawn` the baselines use. */
interface BunSubprocess {
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly exited: Promise<number>;
  send(message: unknown): void;
  kill(): void;
}

function bunSpawn(cmd: string[], options: Record<string, unknown>): BunSubprocess {
  const bun = (globalThis as unknown as {
    Bun: { spawn(cmd: string[], options: Record<string, unknown>): BunSubprocess };
  }).Bun;
  return bun.spawn(cmd, options);
}

/** `deno run <script>` (no permission flags), its stdout piped. */
function denoRun(script: string, stdin: "piped" | "null"): Deno.ChildProcess {
  return new Deno.Command(detect().execPath, {
    args: ["run", script],
    stdin,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

// ---------------------------------------------------------------------------------------------
// A child that echoes messages

/** A bare child process that echoes messages (`_bare_process.mjs`). */
export interface BareProcess {
  /** Sends a message and resolves with the echo. */
  ping(message: unknown): Promise<unknown>;
  /** Closes its channel and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `_bare_process.mjs` on the transport the process strategy uses here (IPC with
 * structured serialization on Node and Bun; length-prefixed `node:v8` frames over
 * stdin/stdout on Deno) and waits for its "ready".
 */
export async function startBareProcess(): Promise<BareProcess> {
  const { name, execPath } = detect();
  let handler: ((message: unknown) => void) | undefined;
  let onReady!: () => void;
  let onFail!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  const receive = (message: unknown): void => {
    if (handler === undefined) {
      if (message === "ready") onReady();
      return;
    }
    const resolve = handler;
    handler = undefined;
    resolve(message);
  };
  /** A ping over `send`: the next message that comes back is its answer. */
  const ask = (send: (message: unknown) => void) => (message: unknown): Promise<unknown> =>
    new Promise((resolve) => {
      handler = resolve;
      send(message);
    });
  const exitedEarly = (code: unknown): void =>
    onFail(new Error(`the bare process exited with ${code} before it was ready`));
  if (name === "deno") {
    const child = denoRun(ECHO_SCRIPT, "piped");
    const writer = child.stdin.getWriter();
    const reading = (async () => {
      const push = unframer(receive);
      for await (const chunk of child.stdout) push(chunk);
    })();
    child.status.then((status) => exitedEarly(status.code));
    await ready;
    return {
      ping: ask((message) => writer.write(frame(message))),
      stop: async () => {
        await writer.close();
        await reading;
        await child.status;
      },
    };
  }
  if (name === "bun") {
    const child = bunSpawn([execPath, ECHO_SCRIPT], {
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      ipc: (message: unknown) => receive(message),
      serialization: "advanced",
    });
    child.exited.then(exitedEarly);
    await ready;
    return {
      ping: ask((message) => child.send(message)),
      stop: async () => {
        child.kill();
        await child.exited;
      },
    };
  }
  const child = spawnNode(execPath, [ECHO_SCRIPT], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced",
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("message", receive);
  child.once("error", onFail);
  child.once("exit", exitedEarly);
  await ready;
  return {
    ping: ask((message) => child.send(message as object)),
    stop: async () => {
      child.disconnect();
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A spawn until "ready"

/**
 * Reads `stream` until "ready" has come, calling `onReady` then; then to its end.
 *
 * @returns When "ready" came (`performance.now()`), or `undefined` if it never did.
 */
async function readUntilReady(
  stream: ReadableStream<Uint8Array>,
  onReady?: () => void,
): Promise<number | undefined> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let at: number | undefined;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return at;
    if (at === undefined) {
      text += decoder.decode(value, { stream: true });
      if (text.includes("ready")) {
        at = performance.now();
        onReady?.();
      }
    }
  }
}

/**
 * Spawns the runtime's own executable on `_ready.mjs` (on Deno with `deno run` and no
 * permission flags) with the runtime's own spawn API, and times it from the spawn call until
 * "ready" is read on its stdout, and until it has exited.
 *
 * @param onReady Called as soon as "ready" is read (a `Deno.bench` ends its timer there).
 */
export async function bareSpawn(
  onReady?: () => void,
): Promise<{ readyMs: number; exitMs: number }> {
  const { name, execPath } = detect();
  const start = performance.now();
  let ready: number | undefined;
  if (name === "deno") {
    const child = denoRun(READY_SCRIPT, "null");
    ready = await readUntilReady(child.stdout, onReady);
    const status = await child.status;
    if (!status.success) throw new Error(`bare deno child exited with code ${status.code}`);
  } else if (name === "bun") {
    const child = bunSpawn([execPath, READY_SCRIPT], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "inherit",
    });
    ready = await readUntilReady(child.stdout, onReady);
    const code = await child.exited;
    if (code !== 0) throw new Error(`bare bun child exited with code ${code}`);
  } else {
    await new Promise<void>((resolve, reject) => {
      const child = spawnNode(execPath, [READY_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        if (ready !== undefined) return;
        text += chunk;
        if (text.includes("ready")) {
          ready = performance.now();
          onReady?.();
        }
      });
      child.on("error", reject);
      child.on("close", (code) => {
        if (code === 0) resolve();
        else reject(new Error(`bare node child exited with code ${code}`));
      });
    });
  }
  const end = performance.now();
  if (ready === undefined) throw new Error("the bare child never printed ready");
  return { readyMs: ready - start, exitMs: end - start };
}

// ---------------------------------------------------------------------------------------------
// A command run to its end

/**
 * Runs `cmd` to its end with stdin closed and stdout and stderr piped and read, as
 * `runCommands()` does, on the runtime's own spawn API.
 */
export async function bareRun(cmd: string): Promise<void> {
  const { name } = detect();
  if (name === "deno") {
    await new Deno.Command(cmd, { stdin: "null", stdout: "piped", stderr: "piped" }).output();
  } else if (name === "bun") {
    const child = bunSpawn([cmd], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    await Promise.all([
      new Response(child.stdout).arrayBuffer(),
      new Response(child.stderr).arrayBuffer(),
      child.exited,
    ]);
  } else {
    await new Promise<void>((resolve, reject) => {
      const child = spawnNode(cmd, [], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.on("data", () => {});
      child.stderr.on("data", () => {});
      child.once("error", reject);
      child.once("close", () => resolve());
    });
  }
}
