#!/usr/bin/env node
/**
 * One version, one dependency range, one set of entry points: package.json (npm), deno.json
 * and jsr.json (JSR reads deno.json when both are there; jsr.json is kept equal to it so that
 * neither can drift). Prints what disagrees and exits 1, or prints `versions: ok`.
 */

import { readFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const read = (file) => JSON.parse(readFileSync(path.join(ROOT, file), "utf8"));
const npm = read("package.json");
const deno = read("deno.json");
const jsr = read("jsr.json");

const problems = [];
const same = (what, values) => {
  const shown = Object.entries(values).map(([file, value]) => `${file}: ${JSON.stringify(value)}`);
  if (new Set(Object.values(values).map((v) => JSON.stringify(v))).size > 1) {
    problems.push(`${what} differ: ${shown.join(", ")}`);
  }
};
same("versions", { "package.json": npm.version, "deno.json": deno.version, "jsr.json": jsr.version });
same("names", { "deno.json": deno.name, "jsr.json": jsr.name });
same("licenses", { "package.json": npm.license, "deno.json": deno.license, "jsr.json": jsr.license });
same("JSR entry points", { "deno.json": deno.exports, "jsr.json": jsr.exports });
// Every npm dependency is mapped in deno.json with the same range.
for (const [name, range] of Object.entries(npm.dependencies ?? {})) {
  same(`ranges of ${name}`, {
    "package.json": range,
    "deno.json": (deno.imports?.[name] ?? "").replace(new RegExp(`^npm:${name}@`), ""),
  });
}
if (problems.length > 0) {
  for (const problem of problems) console.error(`versions: ${problem}`);
  process.exit(1);
}
console.log(`versions: ok (${npm.version}; ${Object.keys(npm.dependencies ?? {}).join(", ")})`);
