import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { LineSplitter } from "../../src/core/line-splitter.js";
import { remoteCommand } from "../../src/core/remote-command.js";

// The command line is what a remote login shell would receive: run it with a local one.
const runRemote = (line: string, home: string) =>
  execFileSync("/bin/sh", ["-c", line], {
    env: { HOME: home, PATH: "/usr/bin:/bin" },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });

test("runs in the project's deploy directory with the venv activated", () => {
  const home = mkdtempSync(join(tmpdir(), "sc-remote-"));
  try {
    mkdirSync(join(home, "deploy dir", "my proj"), { recursive: true });
    mkdirSync(join(home, "venv", "bin"), { recursive: true });
    execFileSync("/bin/sh", [
      "-c",
      `printf 'VIRTUAL_ENV=activated; export VIRTUAL_ENV\\n' > "${home}/venv/bin/activate"`,
    ]);
    const line = remoteCommand({
      deployDir: "~/deploy dir",
      project: "my proj",
      venv: "~/venv",
      activateVenv: true,
      command: ["pwd;", "echo", "$VIRTUAL_ENV"],
    });
    assert.equal(runRemote(line, home), `${home}/deploy dir/my proj\nactivated\n`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("a missing venv or deploy directory still runs the command, with a warning", () => {
  const home = mkdtempSync(join(tmpdir(), "sc-remote-"));
  try {
    const line = remoteCommand({
      deployDir: "~/nope",
      project: "p",
      venv: "/nonexistent/venv",
      activateVenv: true,
      command: ["pwd"],
    });
    const out = execFileSync("/bin/sh", ["-c", `${line} 2>&1`], {
      env: { HOME: home, PATH: "/usr/bin:/bin" },
      encoding: "utf8",
    });
    assert.match(out, /no virtualenv at \/nonexistent\/venv/);
    assert.match(out, new RegExp(`${home}\\n$`));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("hostile project and venv names stay data", () => {
  const line = remoteCommand({
    deployDir: "/tmp/$(touch /tmp/pwned)",
    project: "'; rm -rf ~ #",
    venv: "`id`",
    activateVenv: true,
    command: ["true"],
  });
  runRemote(line, "/nonexistent");
  assert.throws(() => execFileSync("test", ["-e", "/tmp/pwned"]));
});

test("LineSplitter keeps partial lines and multi-byte characters across chunks", () => {
  const s = new LineSplitter();
  const bytes = Buffer.from("ab\nc€d\nta", "utf8");
  const lines = [...s.push(bytes.subarray(0, 5)), ...s.push(bytes.subarray(5)), ...s.end()];
  assert.deepEqual(lines, ["ab", "c€d", "ta"]);
});
