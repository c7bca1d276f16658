/**
 * Auto chunk sizing, on its own: pure arithmetic, no workers.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { ChunkSizer, MAX_CHUNK, TARGET_CHUNK_MS } from "../src/chunking.ts";
import { test } from "./_helpers.ts";

describe("chunk sizing", () => {
  test("without an estimate, every worker starts on a one-item probe", () => {
    const sizer = new ChunkSizer("auto", 2);
    assert.equal(sizer.next(16), 1);
    assert.equal(sizer.next(15), 1);
    sizer.record(1, 0.25);
    assert.ok(sizer.next(14) > 1);
  });

  test("with an estimate from an earlier call, a short input is split evenly at once", () => {
    const sizer = new ChunkSizer("auto", 2, 0.27);
    // 16 items of ~0.27 ms: one chunk of 8 per idle worker, no probes, no third chunk.
    assert.equal(sizer.next(16), 8);
    assert.equal(sizer.next(8), 8);
  });

  test("with an estimate, a long input gets target-sized chunks and an even tail", () => {
    const perItem = 0.001;
    const sizer = new ChunkSizer("auto", 4, perItem);
    const target = Math.min(Math.floor(TARGET_CHUNK_MS / perItem), MAX_CHUNK);
    let left = 1_000_000;
    for (let worker = 0; worker < 4; worker++) {
      assert.equal(sizer.next(left), target);
      left -= target;
    }
    sizer.record(target, target * perItem);
    // Near the end, chunks shrink to a share of what is left, but not below a quarter target.
    assert.equal(sizer.next(400), Math.max(100, Math.floor(target / 4)));
  });

  test("a fixed chunk size ignores estimates and measurements", () => {
    const sizer = new ChunkSizer(5, 2, 0.5);
    assert.equal(sizer.next(100), 5);
    sizer.record(5, 100);
    assert.equal(sizer.next(95), 5);
  });

  test("an unusable estimate is ignored", () => {
    assert.equal(new ChunkSizer("auto", 2, NaN).next(16), 1);
    assert.equal(new ChunkSizer("auto", 2, -1).next(16), 1);
  });
});
