/**
 * The tracer of `call_path.ts`, run in a worker thread: it attaches to the main thread's
 * inspector, puts a breakpoint at the entry of each function it is given, and records each
 * entry in order while the main thread makes one call. The main thread cannot pause itself
 * and be watched; a worker can watch it (`Session.connectToMainThread`). Node only.
 *
 * Protocol with the main thread: it receives `{ functions }`, answers `"ready"` once every
 * breakpoint is set, receives `"stop"` after the call, and answers with the entries.
 *
 * @module
 */

import { Session } from "node:inspector/promises";
import { parentPort } from "node:worker_threads";

/** A function to watch: where coverage found it. */
export interface Watched {
  scriptId: string;
  file: string;
  name: string;
  startOffset: number;
  endOffset: number;
}

/** One function entry seen during the call. */
export interface Entry {
  file: string;
  name: string;
}

interface Location {
  scriptId: string;
  lineNumber: number;
  columnNumber: number;
}

const port = parentPort!;
const session = new Session();
session.connectToMainThread();

const entries: Entry[] = [];
const byBreakpoint = new Map<string, Entry>();
session.on("Debugger.paused", ({ params }) => {
  const id = params.hitBreakpoints?.[0];
  const entry = id === undefined ? undefined : byBreakpoint.get(id);
  if (entry !== undefined) entries.push(entry);
  void session.post("Debugger.resume");
});

const sources = new Map<string, number[]>();
/** Line starts of a script, to turn a coverage offset into a line and column. */
async function lineStarts(scriptId: string): Promise<number[]> {
  let starts = sources.get(scriptId);
  if (starts === undefined) {
    const { scriptSource } = await session.post("Debugger.getScriptSource", { scriptId });
    starts = [0];
    for (let i = 0; i < scriptSource.length; i++) {
      if (scriptSource.charCodeAt(i) === 10) starts.push(i + 1);
    }
    sources.set(scriptId, starts);
  }
  return starts;
}

async function locationOf(scriptId: string, offset: number): Promise<Location> {
  const starts = await lineStarts(scriptId);
  let line = 0;
  while (line + 1 < starts.length && starts[line + 1] <= offset) line++;
  return { scriptId, lineNumber: line, columnNumber: offset - starts[line] };
}

port.on("message", async (message: { functions: Watched[] } | "stop") => {
  if (message === "stop") {
    await session.post("Debugger.disable");
    session.disconnect();
    port.postMessage(entries);
    port.close();
    return;
  }
  // Enabled here, not at the top: an await pending on the session alone does not keep the
  // worker alive, the port's listener does.
  await session.post("Debugger.enable");
  for (const fn of message.functions) {
    const start = await locationOf(fn.scriptId, fn.startOffset);
    const end = await locationOf(fn.scriptId, fn.endOffset);
    const { locations } = await session.post("Debugger.getPossibleBreakpoints", {
      start,
      end,
      restrictToFunction: true,
    });
    if (locations.length === 0) continue;
    const { breakpointId } = await session.post("Debugger.setBreakpoint", {
      location: locations[0],
    });
    byBreakpoint.set(breakpointId, { file: fn.file, name: fn.name });
  }
  port.postMessage("ready");
});
