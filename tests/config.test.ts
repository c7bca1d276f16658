/**
 * `CE_PARALLEL` parsing, on its own: every token it accepts and what it sets, and every token it
 * refuses, with a RangeError that quotes the token and lists what is accepted.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { parseParallelEnv } from "../src/env.ts";
import type { EnvConfig } from "../src/config.ts";
import { test } from "./_helpers.ts";

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** [what the rows show, [value of CE_PARALLEL, what it sets][]] */
const ACCEPTED: [string, [string, EnvConfig][]][] = [
  ["a blank value sets nothing", [
    ["", {}],
    [" ", {}],
    ["\t\n  ", {}],
  ]],
  ["each mode is accepted, in any case", [
    ["off", { mode: "off" }],
    ["serial", { mode: "serial" }],
    ["threads", { mode: "threads" }],
    ["processes", { mode: "processes" }],
    ["auto", { mode: "auto" }],
    ["distributed", { mode: "distributed" }],
    ["OFF", { mode: "off" }],
    ["Threads", { mode: "threads" }],
    ["PROCESSES", { mode: "processes" }],
    ["sErIaL", { mode: "serial" }],
  ]],
  ["redis=URL and queue=NAME set the distributed mode's Redis and queue, case kept", [
    [
      "distributed,redis=redis://u:Pw@10.0.0.5:6380/2,queue=Jobs.v2",
      { mode: "distributed", redis: "redis://u:Pw@10.0.0.5:6380/2", queue: "Jobs.v2" },
    ],
    ["redis=rediss://cache.internal:6379", { redis: "rediss://cache.internal:6379" }],
  ]],
  ["workers=N sets maxWorkers to an integer from 1", [
    ["workers=1", { maxWorkers: 1 }],
    ["workers=4", { maxWorkers: 4 }],
    ["workers=128", { maxWorkers: 128 }],
  ]],
  ["load_timeout, kill_grace, max_tasks and idle_memory set the bounds and recycling", [
    ["load_timeout=5000", { loadTimeoutMs: 5000 }],
    ["kill_grace=0", { killGraceMs: 0 }],
    ["kill_grace=250", { killGraceMs: 250 }],
    ["max_tasks=100", { maxTasksPerWorker: 100 }],
    ["idle_memory=512", { idleMemoryLimitMb: 512 }],
  ]],
  ["chunk=N sets chunkSize to an integer from 1, or auto in any case", [
    ["chunk=1", { chunkSize: 1 }],
    ["chunk=500", { chunkSize: 500 }],
    ["chunk=auto", { chunkSize: "auto" }],
    ["chunk=AUTO", { chunkSize: "auto" }],
  ]],
  ["min_batch=N sets minBatchSize to an integer from 0", [
    ["min_batch=0", { minBatchSize: 0 }],
    ["min_batch=1", { minBatchSize: 1 }],
    ["min_batch=50", { minBatchSize: 50 }],
  ]],
  ["task_bytes sets taskSizeHintBytes from bytes, decimal or binary units", [
    ["task_bytes=1048576", { taskSizeHintBytes: 1_048_576 }],
    ["task_bytes=512B", { taskSizeHintBytes: 512 }],
    ["task_bytes=4KB", { taskSizeHintBytes: 4_000 }],
    ["task_bytes=10MB", { taskSizeHintBytes: 10_000_000 }],
    ["task_bytes=2GB", { taskSizeHintBytes: 2_000_000_000 }],
    ["task_bytes=4KiB", { taskSizeHintBytes: 4 * KiB }],
    ["task_bytes=10MiB", { taskSizeHintBytes: 10 * MiB }],
    ["task_bytes=1GiB", { taskSizeHintBytes: GiB }],
  ]],
  ["task_bytes takes decimals, rounded to a whole byte", [
    ["task_bytes=1.5MB", { taskSizeHintBytes: 1_500_000 }],
    ["task_bytes=0.5KiB", { taskSizeHintBytes: 512 }],
    ["task_bytes=1.5GiB", { taskSizeHintBytes: 1.5 * GiB }],
    ["task_bytes=2.25KB", { taskSizeHintBytes: 2_250 }],
    ["task_bytes=1.5B", { taskSizeHintBytes: 2 }],
  ]],
  ["task_bytes units are case-insensitive", [
    ["task_bytes=512b", { taskSizeHintBytes: 512 }],
    ["task_bytes=4kb", { taskSizeHintBytes: 4_000 }],
    ["task_bytes=10mb", { taskSizeHintBytes: 10_000_000 }],
    ["task_bytes=10Mb", { taskSizeHintBytes: 10_000_000 }],
    ["task_bytes=2gb", { taskSizeHintBytes: 2_000_000_000 }],
    ["task_bytes=4KIB", { taskSizeHintBytes: 4 * KiB }],
    ["task_bytes=10mib", { taskSizeHintBytes: 10 * MiB }],
    ["task_bytes=1gIb", { taskSizeHintBytes: GiB }],
  ]],
  ["force_serial=0|1 sets forceSerialOnFailure", [
    ["force_serial=0", { forceSerialOnFailure: false }],
    ["force_serial=1", { forceSerialOnFailure: true }],
  ]],
  ["timeout=ms sets timeoutMs to a number above 0, decimals allowed", [
    ["timeout=1", { timeoutMs: 1 }],
    ["timeout=30000", { timeoutMs: 30_000 }],
    ["timeout=2.5", { timeoutMs: 2.5 }],
    ["timeout=0.5", { timeoutMs: 0.5 }],
  ]],
  ["log=0|1 sets log", [
    ["log=0", { log: false }],
    ["log=1", { log: true }],
  ]],
  ["setting names are case-insensitive", [
    ["WORKERS=2", { maxWorkers: 2 }],
    ["Task_Bytes=1KB", { taskSizeHintBytes: 1_000 }],
    ["LOG=1", { log: true }],
  ]],
  ["whitespace around tokens and around = is ignored", [
    ["  threads  ", { mode: "threads" }],
    ["workers = 4", { maxWorkers: 4 }],
    [" chunk =auto ", { chunkSize: "auto" }],
    ["min_batch= 0", { minBatchSize: 0 }],
    ["task_bytes = 10MB", { taskSizeHintBytes: 10_000_000 }],
    ["timeout =\t250", { timeoutMs: 250 }],
    ["\tthreads ,\n workers=2 , log = 1\n", { mode: "threads", maxWorkers: 2, log: true }],
  ]],
  ["tokens combine, in any order", [
    ["threads, workers=4, task_bytes=10MB", {
      mode: "threads",
      maxWorkers: 4,
      taskSizeHintBytes: 10_000_000,
    }],
    ["workers=2,processes", { mode: "processes", maxWorkers: 2 }],
    ["off,log=1", { mode: "off", log: true }],
    [
      "auto,workers=8,chunk=16,min_batch=0,task_bytes=1.5MiB,force_serial=1,timeout=1500,log=0",
      {
        mode: "auto",
        maxWorkers: 8,
        chunkSize: 16,
        minBatchSize: 0,
        taskSizeHintBytes: 1.5 * MiB,
        forceSerialOnFailure: true,
        timeoutMs: 1500,
        log: false,
      },
    ],
    [
      "log=1,timeout=0.5,force_serial=0,task_bytes=1GB,min_batch=3,chunk=auto,workers=1,SERIAL",
      {
        mode: "serial",
        maxWorkers: 1,
        chunkSize: "auto",
        minBatchSize: 3,
        taskSizeHintBytes: 1_000_000_000,
        forceSerialOnFailure: false,
        timeoutMs: 0.5,
        log: true,
      },
    ],
  ]],
];

/** [what the rows show, [value of CE_PARALLEL, the token quoted, why it is refused][]] */
const REJECTED: [string, [string, string, string][]][] = [
  ["an unknown mode is refused", [
    ["bogus", "bogus", "not a mode or a setting"],
    ["thread", "thread", "not a mode or a setting"],
    ["on", "on", "not a mode or a setting"],
    ["workers=2,parallel", "parallel", "not a mode or a setting"],
  ]],
  ["redis= takes a redis URL and queue= a name Redis keys can hold", [
    [
      "redis=http://x",
      "redis=http://x",
      "expected a redis:// or rediss:// URL (a comma in it written as %2C)",
    ],
    ["redis=", "redis=", "expected a redis:// or rediss:// URL (a comma in it written as %2C)"],
    [
      "queue=a b",
      "queue=a b",
      "expected a queue name of 1 to 100 letters, digits, '.', '_' or '-'",
    ],
  ]],
  ["an unknown setting is refused", [
    ["speed=fast", "speed=fast", "unknown setting `speed`"],
    ["max_workers=2", "max_workers=2", "unknown setting `max_workers`"],
    ["=5", "=5", "unknown setting ``"],
    ["mode=threads", "mode=threads", "unknown setting `mode`"],
  ]],
  ["workers must be an integer from 1", [
    ["workers=0", "workers=0", "expected an integer from 1 to 1024"],
    ["workers=1.5", "workers=1.5", "expected an integer from 1 to 1024"],
    ["workers=-1", "workers=-1", "expected an integer from 1 to 1024"],
    ["workers=", "workers=", "expected an integer from 1 to 1024"],
    ["workers=many", "workers=many", "expected an integer from 1 to 1024"],
    ["workers=2e3", "workers=2e3", "expected an integer from 1 to 1024"],
    ["workers=+2", "workers=+2", "expected an integer from 1 to 1024"],
    ["workers=1025", "workers=1025", "expected an integer from 1 to 1024"],
    [
      "workers=99999999999999999999",
      "workers=99999999999999999999",
      "expected an integer from 1 to 1024",
    ],
  ]],
  ["chunk must be an integer from 1 or auto", [
    ["chunk=0", "chunk=0", "expected an integer from 1 up"],
    ["chunk=-4", "chunk=-4", "expected an integer from 1 up"],
    ["chunk=2.5", "chunk=2.5", "expected an integer from 1 up"],
    ["chunk=", "chunk=", "expected an integer from 1 up"],
    ["chunk=automatic", "chunk=automatic", "expected an integer from 1 up"],
  ]],
  ["min_batch must be an integer from 0", [
    ["min_batch=-1", "min_batch=-1", "expected an integer from 0 up"],
    ["min_batch=0.5", "min_batch=0.5", "expected an integer from 0 up"],
    ["min_batch=", "min_batch=", "expected an integer from 0 up"],
  ]],
  ["task_bytes must be a byte count with a known unit", [
    ["task_bytes=10XB", "task_bytes=10XB", "expected a byte count"],
    ["task_bytes=abc", "task_bytes=abc", "expected a byte count"],
    ["task_bytes=", "task_bytes=", "expected a byte count"],
    ["task_bytes=MB", "task_bytes=MB", "expected a byte count"],
    ["task_bytes=-1MB", "task_bytes=-1MB", "expected a byte count"],
    ["task_bytes=10M", "task_bytes=10M", "expected a byte count"],
    ["task_bytes=1e6", "task_bytes=1e6", "expected a byte count"],
    ["task_bytes=1constructor", "task_bytes=1constructor", "expected a byte count"],
    ["task_bytes=0", "task_bytes=0", "expected a byte count from 1 up"],
    [
      "task_bytes=99999999999999999999GB",
      "task_bytes=99999999999999999999GB",
      "expected a byte count",
    ],
  ]],
  ["force_serial and log must be 0 or 1", [
    ["force_serial=yes", "force_serial=yes", "expected 0 or 1"],
    ["force_serial=true", "force_serial=true", "expected 0 or 1"],
    ["force_serial=", "force_serial=", "expected 0 or 1"],
    ["log=2", "log=2", "expected 0 or 1"],
    ["log=on", "log=on", "expected 0 or 1"],
    ["log=", "log=", "expected 0 or 1"],
  ]],
  ["timeout must be a number of ms above 0", [
    ["timeout=0", "timeout=0", "expected milliseconds above 0"],
    ["timeout=-5", "timeout=-5", "expected milliseconds above 0"],
    ["timeout=abc", "timeout=abc", "expected milliseconds above 0"],
    ["timeout=", "timeout=", "expected milliseconds above 0"],
    ["timeout=Infinity", "timeout=Infinity", "expected milliseconds above 0"],
    ["timeout=0x10", "timeout=0x10", "expected milliseconds above 0"],
    ["timeout=1e3", "timeout=1e3", "expected milliseconds above 0"],
    ["timeout=3000000000", "timeout=3000000000", "expected milliseconds above 0, up to 2147483647"],
    ["timeout=5s", "timeout=5s", "expected milliseconds above 0"],
  ]],
  ["an empty token is refused: two commas in a row, or a comma at either end", [
    ["threads,,workers=2", "", "an empty token"],
    ["threads, ,workers=2", "", "an empty token"],
    ["threads,", "", "an empty token"],
    [",threads", "", "an empty token"],
    [",", "", "an empty token"],
  ]],
  ["a second mode is refused", [
    ["threads,serial", "serial", "a second mode"],
    ["threads,threads", "threads", "a second mode"],
    ["off, workers=2, AUTO", "AUTO", "a second mode"],
  ]],
  ["a setting given twice is refused, whatever its case", [
    ["workers=2,workers=3", "workers=3", "`workers` again"],
    ["workers=2,WORKERS=2", "WORKERS=2", "`workers` again"],
    ["log=0, log=1", "log=1", "`log` again"],
    ["chunk=auto,chunk=4", "chunk=4", "`chunk` again"],
  ]],
  ["the bounds must be positive (a kill grace may be 0)", [
    ["load_timeout=0", "load_timeout=0", "expected milliseconds above 0"],
    ["kill_grace=-1", "kill_grace=-1", "expected milliseconds from 0"],
    ["max_tasks=0", "max_tasks=0", "expected an integer from 1 up"],
    ["idle_memory=x", "idle_memory=x", "expected an integer from 1 up"],
  ]],
  ["the quoted token is trimmed and JSON-escaped", [
    ["  workers=0  ", "workers=0", "expected an integer from 1 to 1024"],
    ['log="1"', 'log="1"', "expected 0 or 1"],
    ["workers=\\2", "workers=\\2", "expected an integer from 1 to 1024"],
  ]],
];

/** Every accepted form the message of a RangeError lists. */
const LISTED = [
  "off, serial, async, threads, processes, auto",
  "workers=N",
  "concurrency=N",
  "chunk=N|auto",
  "min_batch=N",
  "task_bytes=N[B|KB|MB|GB|KiB|MiB|GiB]",
  "force_serial=0|1",
  "timeout=ms",
  "load_timeout=ms",
  "kill_grace=ms",
  "max_tasks=N",
  "idle_memory=MB",
  "log=0|1",
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Matches a message that names the variable, lists what is accepted, quotes `token` and says why. */
function refusal(token: string, why: string): RegExp {
  return new RegExp(
    `CE_PARALLEL.*workers=N.*; got ${escapeRegExp(JSON.stringify(token))}: ${escapeRegExp(why)}`,
  );
}

function show(value: unknown): string {
  return inspect(value, { breakLength: Infinity });
}

describe("CE_PARALLEL", () => {
  for (const [behaviour, rows] of ACCEPTED) {
    for (const [text, expected] of rows) {
      test(`${behaviour}: ${JSON.stringify(text)} sets ${show(expected)}`, () => {
        assert.deepEqual(parseParallelEnv(text), expected);
      });
    }
  }

  for (const [behaviour, rows] of REJECTED) {
    for (const [text, token, why] of rows) {
      test(`${behaviour}: ${JSON.stringify(text)} throws a RangeError quoting ${JSON.stringify(token)}`, () => {
        assert.throws(() => parseParallelEnv(text), {
          name: "RangeError",
          message: refusal(token, why),
        });
      });
    }
  }

  test("a refusal lists every accepted form", () => {
    for (const form of LISTED) {
      assert.throws(() => parseParallelEnv("bogus"), {
        name: "RangeError",
        message: new RegExp(escapeRegExp(form)),
      });
    }
  });

  test("a refusal is thrown for the first bad token, before later tokens are read", () => {
    assert.throws(() => parseParallelEnv("workers=0,bogus"), {
      name: "RangeError",
      message: refusal("workers=0", "expected an integer from 1 to 1024"),
    });
  });

  test("each call returns a new object", () => {
    const first = parseParallelEnv("threads");
    first.maxWorkers = 3;
    assert.deepEqual(parseParallelEnv("threads"), { mode: "threads" });
    const blank = parseParallelEnv("");
    blank.log = true;
    assert.deepEqual(parseParallelEnv(""), {});
  });
});
