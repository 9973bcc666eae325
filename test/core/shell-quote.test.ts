import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  portableShellCommand,
  remotePath,
  shellCommand,
  shellQuote,
} from "../../src/core/ssh/shell-quote.js";

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

/**
 * sshd runs a command through the user's login shell, whichever it is: the command line must reach
 * sh unchanged through each. Run here with the real shells (install-deps installs zsh, fish, tcsh).
 */
describe("portableShellCommand", () => {
  const LOGIN_SHELLS = [
    "/bin/bash",
    "/bin/dash",
    "/usr/bin/zsh",
    "/usr/bin/fish",
    "/usr/bin/tcsh",
    "/bin/csh",
  ];
  const throughLoginShell = (shell: string, script: string) =>
    execFileSync(shell, ["-c", portableShellCommand(script)], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent" },
    });

  test("a one-line script without backslashes goes as it is", () => {
    assert.equal(
      portableShellCommand("echo 'it''s' $HOME"),
      shellCommand(["sh", "-c", "echo 'it''s' $HOME"]),
    );
  });

  test("a script with newlines, a here-document, backslashes and quotes runs the same under every login shell", () => {
    const script = [
      'x=\'a b\'\\; y="q\\""',
      "cat <<'END'",
      "$x \\c \\0012 '\\'' ! % %s \t é",
      "END",
      'printf "%s|%s\\n" "$x" "$y"',
    ].join("\n");
    const expected = execFileSync("/bin/sh", ["-c", script], { encoding: "utf8" });
    for (const shell of LOGIN_SHELLS) assert.equal(throughLoginShell(shell, script), expected, shell);
  });

  test("any text printed by the script arrives intact under every login shell", () => {
    fc.assert(
      fc.property(shellHostileString, shellHostileString, (first, second) => {
        const script = `printf '%s' ${shellQuote(first)}\nprintf '[%s]' ${shellQuote(second)}`;
        for (const shell of LOGIN_SHELLS)
          assert.equal(throughLoginShell(shell, script), `${first}[${second}]`, shell);
      }),
      { seed: 20261203, numRuns: 25 },
    );
  });
});
