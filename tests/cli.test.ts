/**
 * The `fanout` command: flag parsing, replacement strings, input combination, exit statuses,
 * halting, job logs, the bar's plain output, real work, and the same batches through GNU
 * parallel where it is installed. Most runs call `main()` in this process with captured
 * streams; a few start the executable itself on the suite's runtime.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../src/cli.ts";
import type { Io } from "../src/cli/_io.ts";
import { commandFor } from "../src/cli/_template.ts";
import { combine } from "../src/cli/_inputs.ts";
import { exitStatus, parseHalt } from "../src/cli/_halt.ts";
import type { BatchResult } from "../mod.ts";
import process from "node:process";
import { detect } from "../src/runtime/mod.ts";
import { programReport, runProgram, test } from "./_helpers.ts";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const MAP_MODULE = fileURLToPath(new URL("./fixtures/cli_map.ts", import.meta.url));

/** Runs `fn` with a new temporary folder, removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "fanout-cli-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `fanout ARGS` in this process, with `stdin` as its standard input. */
async function fanout(args: string[], stdin = ""): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const decoder = new TextDecoder();
  const text = (chunk: Uint8Array | string): string =>
    typeof chunk === "string" ? chunk : decoder.decode(chunk);
  const io: Io = {
    stdout: { write: (chunk) => out.push(text(chunk)) },
    stderr: { write: (chunk) => err.push(text(chunk)) },
    readStdin: () => Promise.resolve(stdin),
  };
  const status = await main(args, io);
  return { status, stdout: out.join(""), stderr: err.join("") };
}

describe("fanout run: replacement strings and inputs", () => {
  test("every replacement string, as GNU parallel defines it", () => {
    const argv = commandFor(
      ["echo", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}", "{%}"],
      { values: ["/d/x.tar.gz"], seq: 7, slot: 3 },
      false,
    );
    assert.deepEqual(argv, [
      "echo",
      "/d/x.tar.gz",
      "/d/x.tar",
      "x.tar.gz",
      "/d",
      "x.tar",
      "7",
      "3",
    ]);
    assert.deepEqual(
      commandFor(["echo", "{//}", "{.}"], { values: ["plain"], seq: 1, slot: 1 }, false),
      ["echo", ".", "plain"],
    );
  });

  test("numbered sources, and inputs appended when the command has none", () => {
    const input = { values: ["a", "x"], seq: 1, slot: 1 };
    assert.deepEqual(commandFor(["cp", "{2}", "{1}.bak"], input, false), ["cp", "x", "a.bak"]);
    assert.deepEqual(commandFor(["echo"], input, false), ["echo", "a", "x"]);
    assert.throws(() => commandFor(["echo", "{3}"], input, false), RangeError);
  });

  test("with --shell, inserted values are quoted and the command is one script", () => {
    const argv = commandFor(["echo {} | wc -c"], { values: ["a b'c"], seq: 1, slot: 1 }, true);
    assert.deepEqual(argv, [`echo 'a b'"'"'c' | wc -c`]);
  });

  test("sources combine into every combination; :::+ pairs with the one before", () => {
    const src = (values: string[], linked = false) => ({ values, linked });
    assert.deepEqual(combine([src(["a", "b"]), src(["1", "2"])]), [
      ["a", "1"],
      ["a", "2"],
      ["b", "1"],
      ["b", "2"],
    ]);
    assert.deepEqual(combine([src(["a", "b", "c"]), src(["x", "y"], true)]), [["a", "x"], [
      "b",
      "y",
    ]]);
    assert.throws(() => combine([src(["a"], true)]), RangeError);
  });

  test("-k keeps input order; ::: :::: and standard input give the values", async () => {
    await withDir(async (dir) => {
      const file = join(dir, "list");
      writeFileSync(file, "f1\nf2\n");
      const ran = await fanout([
        "run",
        "-k",
        "-j",
        "3",
        "--",
        "echo",
        ":::",
        "a",
        "b",
        "::::",
        file,
      ]);
      assert.equal(ran.status, 0, ran.stderr);
      assert.equal(ran.stdout, "a f1\na f2\nb f1\nb f2\n");
      const piped = await fanout(["run", "-k", "echo", "got"], "x\ny\n");
      assert.equal(piped.stdout, "got x\ngot y\n");
    });
  });

  test("a job's output is never interleaved with another's", async () => {
    const ran = await fanout([
      "run",
      "-j",
      "4",
      "--shell",
      "for i in 1 2 3 4 5; do echo {}-$i; done",
      ":::",
      ...Array.from({ length: 12 }, (_, i) => String(i)),
    ]);
    assert.equal(ran.status, 0, ran.stderr);
    const lines = ran.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 60);
    for (let at = 0; at < lines.length; at += 5) {
      const job = lines[at].split("-")[0];
      assert.deepEqual(lines.slice(at, at + 5), [1, 2, 3, 4, 5].map((i) => `${job}-${i}`));
    }
  });

  test("--dry-run prints the commands, quoted, and runs nothing", async () => {
    const ran = await fanout(["run", "--dry-run", "rm", "{}", ":::", "a b", "c"]);
    assert.equal(ran.status, 0);
    assert.equal(ran.stdout, "rm 'a b'\nrm c\n");
  });

  test("{%} is the slot a job runs in, from 1 to -j", async () => {
    const ran = await fanout(["run", "-j", "2", "echo", "{%}", ":::", "a", "b", "c", "d", "e"]);
    const slots = ran.stdout.trim().split("\n").map(Number);
    assert.equal(slots.length, 5);
    assert.ok(slots.every((slot) => slot === 1 || slot === 2), ran.stdout);
  });
});

describe("fanout run: exit statuses, halting, retries, logs", () => {
  test("exit status is the number of failed jobs, 101 beyond 100", async () => {
    const some = await fanout(["run", "sh", "-c", "exit $0", ":::", "0", "1", "2", "0", "3"]);
    assert.equal(some.status, 3);
    const many = await fanout([
      "run",
      "-j",
      "8",
      "false",
      ":::",
      ...Array.from({ length: 102 }, String),
    ]);
    assert.equal(many.status, 101);
  });

  test("a usage error is one line naming the flag, with status 255", async () => {
    for (
      const [args, pattern] of [
        [["run", "--jobs", "x", "true"], /--jobs.*whole number.*"x"/],
        [["run", "--halt", "later", "true"], /--halt.*never, now, soon.*"later"/],
        [["run", "--timeout", "0", "true"], /--timeout.*seconds above 0.*"0"/],
        [["run", "--bogus", "true"], /--bogus/],
        [["run"], /COMMAND/],
        [["launch"], /Expected a command \(run, map or worker\), got "launch"/],
      ] as const
    ) {
      const ran = await fanout([...args]);
      assert.equal(ran.status, 255, `${args.join(" ")}: ${ran.stderr}`);
      assert.match(ran.stderr, pattern);
      assert.equal(ran.stderr.trimEnd().split("\n").length, 1, ran.stderr);
    }
  });

  test("--halt now,fail=2 stops at the second failure and exits with its code", async () => {
    const ran = await fanout([
      "run",
      "-j",
      "1",
      "--halt",
      "now,fail=2",
      "sh",
      "-c",
      "echo $0; exit $0",
      ":::",
      "0",
      "1",
      "2",
      "0",
      "3",
    ]);
    assert.equal(ran.status, 2);
    assert.equal(ran.stdout, "0\n1\n2\n");
    assert.match(ran.stderr, /halted after job 3 failed/);
  });

  test("halt rules parse as GNU parallel spells them", () => {
    assert.deepEqual(parseHalt("soon,fail=30%"), { when: "soon", on: "fail", percent: 30 });
    assert.deepEqual(parseHalt("now,success=2"), { when: "now", on: "success", count: 2 });
    assert.deepEqual(parseHalt("2"), { when: "now", on: "fail", count: 1 });
    assert.equal(parseHalt("never"), "never");
    assert.throws(() => parseHalt("now,fail=0"), /--halt/);
    const results = Array.from({ length: 10 }, (_, i) => ({
      attempts: 1,
      exitCode: i < 2 ? 1 : 0,
      error: undefined,
      timedOut: false,
    }));
    const batch = { results, failed: 2, haltedBy: undefined } as unknown as BatchResult;
    assert.equal(exitStatus(batch, { when: "soon", on: "fail", percent: 30 }), 20);
  });

  test("--retries N runs a failing job N times in all", async () => {
    await withDir(async (dir) => {
      const count = join(dir, "count");
      const ran = await fanout([
        "run",
        "--retries",
        "3",
        "--shell",
        `echo x >> ${count}; exit 1`,
        ":::",
        "a",
      ]);
      assert.equal(ran.status, 1);
      assert.equal(readFileSync(count, "utf8"), "x\nx\nx\n");
    });
  });

  test("--timeout kills a job; the joblog says -1 and signal 15, as GNU parallel's", async () => {
    await withDir(async (dir) => {
      const log = join(dir, "log");
      const ran = await fanout([
        "run",
        "--timeout",
        "0.2",
        "--joblog",
        log,
        "sleep",
        ":::",
        "0",
        "30",
      ]);
      assert.equal(ran.status, 1);
      const rows = readFileSync(log, "utf8").trimEnd().split("\n").map((line) => line.split("\t"));
      assert.deepEqual(rows[0], [
        "Seq",
        "Host",
        "Starttime",
        "JobRuntime",
        "Send",
        "Receive",
        "Exitval",
        "Signal",
        "Command",
      ]);
      const bySeq = new Map(rows.slice(1).map((row) => [row[0], row]));
      assert.deepEqual(bySeq.get("1")!.slice(6), ["0", "0", "sleep 0"]);
      assert.deepEqual(bySeq.get("2")!.slice(6), ["-1", "15", "sleep 30"]);
      assert.match(bySeq.get("2")![2], /^\d+\.\d{3}$/);
    });
  });

  test("--resume skips logged jobs; --resume-failed runs the failed ones again", async () => {
    await withDir(async (dir) => {
      const log = join(dir, "log");
      const first = await fanout([
        "run",
        "--joblog",
        log,
        "--shell",
        "exit {}",
        ":::",
        "0",
        "1",
        "0",
      ]);
      assert.equal(first.status, 1);
      const again = await fanout([
        "run",
        "--resume-failed",
        "--joblog",
        log,
        "--shell",
        "echo run {#}",
        ":::",
        "0",
        "1",
        "0",
      ]);
      assert.equal(again.status, 0);
      assert.equal(again.stdout, "run 2\n");
      const more = await fanout([
        "run",
        "--resume",
        "--joblog",
        log,
        "echo",
        "run",
        "{#}",
        ":::",
        "0",
        "1",
        "0",
        "5",
      ]);
      assert.equal(more.stdout, "run 4\n");
      const seqs = readFileSync(log, "utf8").trimEnd().split("\n").slice(1).map((l) =>
        l.split("\t")[0]
      );
      assert.deepEqual(seqs.sort(), ["1", "2", "2", "3", "4"]);
      const without = await fanout(["run", "--resume", "true"]);
      assert.equal(without.status, 255);
      assert.match(without.stderr, /--joblog FILE with --resume/);
    });
  });

  test("--results keeps each job's stdout and stderr in GNU parallel's layout", async () => {
    await withDir(async (dir) => {
      const out = join(dir, "out");
      const ran = await fanout([
        "run",
        "--results",
        out,
        "--shell",
        "echo {1}; echo e{2} >&2",
        ":::",
        "a/b",
        "c",
        ":::",
        "x",
      ]);
      assert.equal(ran.status, 0, ran.stderr);
      assert.equal(readFileSync(join(out, "1", "a\\_b", "2", "x", "stdout"), "utf8"), "a/b\n");
      assert.equal(readFileSync(join(out, "1", "c", "2", "x", "stderr"), "utf8"), "ex\n");
      assert.equal(readFileSync(join(out, "1", "c", "2", "x", "seq"), "utf8"), "2\n");
    });
  });

  test("a command that cannot start fails its job, says why, and logs 127", async () => {
    await withDir(async (dir) => {
      const log = join(dir, "log");
      const ran = await fanout(["run", "--joblog", log, "fanout-no-such-command", ":::", "a"]);
      assert.equal(ran.status, 1);
      assert.match(ran.stderr, /fanout-no-such-command/);
      assert.equal(readFileSync(log, "utf8").split("\n")[1].split("\t")[6], "127");
    });
  });

  test("--json - writes the batch result", async () => {
    const ran = await fanout(["run", "--json", "-", "sh", "-c", "exit $0", ":::", "0", "4"]);
    const json = JSON.parse(ran.stdout);
    assert.equal(json.succeeded, 1);
    assert.equal(json.failed, 1);
    assert.equal(json.results[1].exitCode, 4);
  });

  test("--bar to a file that is not a terminal writes plain lines, no escape codes", async () => {
    const ran = await fanout(["run", "--bar", "true", ":::", "a", "b", "c"]);
    assert.equal(ran.status, 0);
    assert.ok(!ran.stderr.includes("\x1b"), JSON.stringify(ran.stderr));
    assert.match(ran.stderr.trimEnd().split("\n").at(-1)!, /3\/3 100%/);
  });
});

describe("fanout map", () => {
  for (const strategy of ["serial", "threads"]) {
    test(`runs an export over JSON lines in input order (${strategy})`, async () => {
      const input = Array.from({ length: 50 }, (_, i) => String(i + 20)).join("\n") + "\n";
      const ran = await fanout(
        ["map", `${MAP_MODULE}#square`, "--strategy", strategy, "-j", "2"],
        input,
      );
      assert.equal(ran.status, 0, ran.stderr);
      assert.deepEqual(
        ran.stdout.trimEnd().split("\n").map(Number),
        Array.from({ length: 50 }, (_, i) => (i + 20) ** 2),
      );
    });
  }

  test("the default export, --in and --out files, and --bar", async () => {
    await withDir(async (dir) => {
      writeFileSync(join(dir, "in"), '{"a":1}\n[2]\n"three"\n');
      const ran = await fanout([
        "map",
        MAP_MODULE,
        "--in",
        join(dir, "in"),
        "--out",
        join(dir, "out"),
        "--bar",
      ]);
      assert.equal(ran.status, 0, ran.stderr);
      assert.equal(readFileSync(join(dir, "out"), "utf8"), '{"a":1}\n[2]\n"three"\n');
      assert.match(ran.stderr, /3\/3 100%/);
    });
  });

  test("a bad line fails with its line number before anything runs; a failing task with its own", async () => {
    const bad = await fanout(["map", `${MAP_MODULE}#square`], "1\n{oops\n3\n");
    assert.equal(bad.status, 255);
    assert.match(bad.stderr, /line 2 to be JSON/);
    assert.equal(bad.stdout, "");
    const failing = await fanout(
      ["map", `${MAP_MODULE}#square`, "--strategy", "serial"],
      "12\n13\n",
    );
    assert.equal(failing.status, 1);
    assert.match(failing.stderr, /line 2.*unlucky 13/);
  });

  test("--explain prints auto's choice and its reason, and runs nothing", async () => {
    const ran = await fanout(["map", `${MAP_MODULE}#square`, "--explain"], "1\n2\n3\n");
    assert.equal(ran.status, 0, ran.stderr);
    assert.match(ran.stdout, /^(serial|async|threads|processes)\b.*\n$/);
  });
});

describe("fanout: the executable", () => {
  test("--version, and a batch's exit status, from the command itself", async () => {
    const version = await runProgram(CLI, ["--version"]);
    assert.equal(version.code, 0, programReport(version));
    assert.match(version.stdout, /^fanout \d+\.\d+\.\d+\n$/);
    const ran = await runProgram(CLI, [
      "run",
      "-k",
      "sh",
      "-c",
      "echo $0; exit $0",
      ":::",
      "0",
      "2",
      "3",
    ]);
    assert.equal(ran.code, 2, programReport(ran));
    assert.equal(ran.stdout, "0\n2\n3\n");
  });

  test("real work: gzip -9 -k and sha256sum over 200 files equal a serial loop's", async () => {
    await withDir(async (dir) => {
      const files = Array.from({ length: 200 }, (_, i) => {
        const file = join(dir, `f${i}.txt`);
        writeFileSync(file, `file ${i}\n`.repeat(200 + i));
        return file;
      });
      const zipped = await fanout(["run", "-j", "4", "gzip", "-9", "-k", ":::", ...files]);
      assert.equal(zipped.status, 0, zipped.stderr);
      for (const file of files) {
        assert.deepEqual(gunzipSync(readFileSync(`${file}.gz`)), readFileSync(file));
      }
      const hashed = await fanout(["run", "-k", "-j", "4", "sha256sum", ":::", ...files]);
      const expected = files.map((file) =>
        `${createHash("sha256").update(readFileSync(file)).digest("hex")}  ${file}\n`
      ).join("");
      assert.equal(hashed.stdout, expected);
    });
  });
});

const GNU = "/usr/bin/parallel";
const gnuMissing = existsSync(GNU) ? undefined : `GNU parallel is not installed at ${GNU}`;

function gnu(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(GNU, ["--will-cite", ...args], (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      resolve({ status: typeof code === "number" ? code : 0, stdout, stderr });
    });
  });
}

describe(`fanout run against GNU parallel${gnuMissing ? ` (skipped: ${gnuMissing})` : ""}`, () => {
  const cases: [string, string[]][] = [
    ["exit codes", ["-k", "echo {}; exit {}", ":::", "0", "1", "2", "0", "3"]],
    ["halt now,fail=2", [
      "-j1",
      "--halt",
      "now,fail=2",
      "echo {}; exit {}",
      ":::",
      "0",
      "1",
      "2",
      "0",
      "3",
    ]],
    ["halt soon,fail=30%", [
      "-j1",
      "--halt",
      "soon,fail=30%",
      "exit {}",
      ":::",
      "1",
      "0",
      "1",
      "1",
      "0",
      "0",
      "0",
      "0",
      "0",
      "0",
    ]],
    ["halt soon,success=2", [
      "-j1",
      "--halt",
      "soon,success=2",
      "echo {}; exit {}",
      ":::",
      "1",
      "0",
      "2",
      "0",
      "3",
    ]],
    ["combinations and replacement strings", [
      "-k",
      "echo {1} {2} {#} {/.} {//}",
      ":::",
      "a/x.y",
      "b",
      ":::",
      "1",
      "2",
    ]],
    ["linked sources", ["-k", "echo", ":::", "a", "b", "c", ":::+", "x", "y"]],
    ["a signal", ["-k", "kill -9 $$", ":::", "1"]],
  ];
  for (const [name, args] of cases) {
    if (gnuMissing !== undefined) {
      test(`${name} (skipped: ${gnuMissing})`, () => {});
      continue;
    }
    test(`${name}: the same output, exit status and joblog`, async () => {
      await withDir(async (dir) => {
        const theirs = await gnu(["--joblog", join(dir, "gnu"), ...args]);
        const ours = await fanout(["run", "--shell", "--joblog", join(dir, "ours"), ...args]);
        assert.equal(
          ours.status,
          theirs.status,
          `exit status${programReport({ ...ours } as never)}`,
        );
        if (args.includes("-k")) assert.equal(ours.stdout, theirs.stdout);
        else assert.deepEqual(ours.stdout.split("\n").sort(), theirs.stdout.split("\n").sort());
        const rows = (file: string) =>
          readFileSync(join(dir, file), "utf8").trimEnd().split("\n").map((line) => {
            const cols = line.split("\t");
            return [cols[0], cols[1], cols[4], cols[5], cols[6], cols[7], cols[8]].join("\t");
          }).sort();
        assert.deepEqual(rows("ours"), rows("gnu"));
      });
    });
  }
});

const tmuxMissing = ["/usr/bin/tmux", "/usr/local/bin/tmux"].some(existsSync)
  ? undefined
  : "tmux is not installed";

function tmux(socket: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("tmux", ["-L", socket, ...args], (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout);
    });
  });
}

describe(`fanout run --bar in a real terminal${tmuxMissing ? ` (skipped: ${tmuxMissing})` : ""}`, () => {
  if (tmuxMissing !== undefined) {
    test(`the bar (skipped: ${tmuxMissing})`, () => {});
    return;
  }
  test("draws in place, never inside a job's output, and ends with a clean final line", async () => {
    const socket = `fanout-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const { name, execPath } = detect();
    const program = [execPath, ...(name === "deno" ? ["run", "-A"] : []), CLI];
    const quoted = program.map((word) => `'${word}'`).join(" ");
    const script = `${quoted} run --bar -j 4 -- sh -c 'echo line $0' ::: $(seq 60); ` +
      `echo EXIT=$?; exec sleep 600`;
    await tmux(socket, ["new-session", "-d", "-x", "120", "-y", "80", script]);
    try {
      // Waits for the run to end, as a person watching the terminal would.
      let pane = "";
      for (let tries = 0; tries < 600 && !/EXIT=\d+/.test(pane); tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        pane = await tmux(socket, ["capture-pane", "-p", "-S", "-200"]);
      }
      const lines = pane.split("\n").map((line) => line.trimEnd()).filter((line) => line !== "");
      const exit = lines.findIndex((line) => line.startsWith("EXIT="));
      assert.equal(lines[exit], "EXIT=0", pane);
      assert.match(lines[exit - 1], /^\[#+\] 60\/60 100% \| .*\/s \| in \d+:\d\d$/, pane);
      const jobs = lines.slice(0, exit - 1);
      assert.equal(jobs.length, 60, pane);
      assert.ok(jobs.every((line) => /^line \d+$/.test(line)), pane);
    } finally {
      await tmux(socket, ["kill-server"]).catch(() => {});
    }
  });
});
