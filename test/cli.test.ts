/** The command line: listing, and bad options rejected with messages naming the option. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./data/helpers.ts";

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("methods lists every balancing method with its defaults", () => {
  const r = cli("methods");
  assert.equal(r.code, 0, r.err);
  for (const m of ["ew", "uw", "dwa", "gradnorm", "rlw", "mgda", "pcgrad", "pcgrad-plus", "gradvac", "cagrad", "imtl", "dbmtl", "nashmtl", "alignedmtl", "gradcraft"]) {
    assert.match(r.out, new RegExp(`^${m} `, "m"), `missing ${m}`);
  }
  assert.match(r.out, /gradcraft\s+GradCraft\s+gradient\s+tau=0\.1 eps=1e-10/);
});

test("bad options fail fast with a message naming the option, and write nothing", () => {
  const out = join(tempDir("cli"), "r.json");
  const cases: [string[], RegExp][] = [
    [["train", "--dataset", "kuairand", "--method", "bogus", "--out", out], /unknown method "bogus"/],
    [["train", "--dataset", "kuairand", "--epochs", "0", "--out", out], /--epochs must be >= 1/],
    [["train", "--dataset", "kuairand", "--tau", "1.5", "--out", out], /--tau must be <= 1/],
    [["train", "--dataset", "kuairand", "--scope", "weird", "--out", out], /--scope.*shared, shared-dense, all/],
    [["train", "--dataset", "kuairand", "--method", "gradcraft", "--method-opt", "tua=1", "--out", out], /unknown option "tua"/],
    [["train", "--dataset", "kuairand", "--model", "nope", "--out", out], /unknown model "nope"/],
    [["train", "--dataset", "no-such-dataset.json", "--out", out], /no-such-dataset\.json/],
    [["bench", "--methods", "ew,bogus", "--out", out], /unknown method "bogus"/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    assert.notEqual(r.code, 0, `${args.join(" ")} should fail`);
    assert.match(r.err, re, `${args.join(" ")}: ${r.err}`);
  }
  assert.equal(existsSync(out), false);
});
