import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import fc from "fast-check";
import { remotePath, shellCommand, shellQuote } from "../../src/core/shell-quote.js";

/** What /bin/sh makes of a command line: each word it passes to printf, NUL-terminated. */
function wordsSeenBySh(commandLine: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const out = execFileSync("/bin/sh", ["-c", `printf '%s\\0' ${commandLine}`], { encoding: "utf8", env });
  return out.split("\0").slice(0, -1);
}

const nastyPieces = fc.constantFrom(
  "'",
  '"',
  "\\",
  "\n",
  "\t",
  " ",
  "$(echo hi)",
  "`id`",
  "$HOME",
  "$" + "{x}",
  "-n",
  "--",
  "*",
  "?",
  "~",
  "#",
  ";",
  "&",
  "|",
  "<",
  "!",
  "é",
  "日本",
  "🙂",
);
const shellHostileString = fc
  .array(fc.oneof(nastyPieces, fc.string({ maxLength: 4 })), { maxLength: 12 })
  .map((parts) => parts.join("").replaceAll("\0", ""));

describe("shellQuote", () => {
  test("wraps in single quotes and escapes embedded ones", () => {
    assert.equal(shellQuote("abc"), "'abc'");
    assert.equal(shellQuote(""), "''");
    assert.equal(shellQuote("it's"), "'it'\\''s'");
    assert.equal(shellQuote("$(rm -rf /)"), "'$(rm -rf /)'");
  });

  test("refuses NUL, which no shell argument can carry", () => {
    assert.throws(() => shellQuote("a\0b"), TypeError);
    assert.throws(() => shellCommand(["ok", "\0"]), TypeError);
  });

  test("round-trips arbitrary arguments through /bin/sh unchanged", () => {
    fc.assert(
      fc.property(fc.array(shellHostileString, { minLength: 1, maxLength: 5 }), (args) => {
        assert.deepEqual(wordsSeenBySh(shellCommand(args)), args);
      }),
      { numRuns: 150 },
    );
  });

  test("round-trips full unicode strings too", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 20 }), (arg) => {
        assert.deepEqual(wordsSeenBySh(shellQuote(arg)), [arg]);
      }),
      { numRuns: 50 },
    );
  });
});

describe("remotePath", () => {
  const env = { ...process.env, HOME: "/home/some one" };

  test("expands ~ and ~/ to the remote $HOME, quotes everything else", () => {
    assert.equal(remotePath("~"), '"$HOME"');
    assert.equal(remotePath("~/x y"), `"$HOME"/'x y'`);
    assert.equal(remotePath("/opt/venv"), "'/opt/venv'");
    assert.equal(remotePath("~user/x"), "'~user/x'");
  });

  test("what the remote shell sees", () => {
    assert.deepEqual(wordsSeenBySh(remotePath("~"), env), ["/home/some one"]);
    assert.deepEqual(wordsSeenBySh(remotePath("~/"), env), ["/home/some one/"]);
    assert.deepEqual(wordsSeenBySh(remotePath("~/a b/'c'/$(x)"), env), ["/home/some one/a b/'c'/$(x)"]);
    assert.deepEqual(wordsSeenBySh(remotePath("~root"), env), ["~root"]);
    assert.deepEqual(wordsSeenBySh(remotePath("-rf *"), env), ["-rf *"]);
  });

  test("any ~/ path lands under $HOME, verbatim", () => {
    fc.assert(
      fc.property(shellHostileString, (rest) => {
        assert.deepEqual(wordsSeenBySh(remotePath(`~/${rest}`), env), [`/home/some one/${rest}`]);
      }),
      { numRuns: 60 },
    );
  });
});
