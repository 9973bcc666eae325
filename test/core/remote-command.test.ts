import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LineSplitter } from "../../src/core/line-splitter.js";
import { remoteCommand } from "../../src/core/ssh/remote-command.js";
import { withFileBindMounted } from "../fixtures/mount-namespace.js";
import { SYSTEM_PYTHON, writeOtherPython } from "../fixtures/projects.js";

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
      command: ["pwd; echo $VIRTUAL_ENV"],
    });
    assert.equal(runRemote(line, home), `${home}/deploy dir/my proj\nactivated\n`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("several words are a program and its arguments, each passed as it is", () => {
  const home = mkdtempSync(join(tmpdir(), "sc-remote-"));
  try {
    const words = ["a b", "$HOME", "'q'", '"dq"', "; rm -rf ~", "*", "\\n", "é"];
    const line = remoteCommand({
      deployDir: "~/deploy",
      project: "p",
      venv: "/nonexistent/venv",
      activateVenv: false,
      command: [SYSTEM_PYTHON, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", ...words],
    });
    assert.deepEqual(JSON.parse(runRemote(line, home)), words);
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

/**
 * The interactive session's start, run by each shell a node may have as its login shell: the
 * user's own start-up files put another python first on PATH (as pyenv, `conda init` and
 * `module load python` do), and the venv must still come first, after them. An interactive shell
 * reads the typed lines from a pipe here as it would from the PTY.
 */
describe("the interactive session activates the venv after the user's start-up files", () => {
  const SESSION = 'command -v python; echo "user files: $FROM_USER_FILES"; pwd; exit\n';

  function session(
    shell: string,
    setUp: (home: string) => void,
    env: (home: string) => Record<string, string> = () => ({}),
    input = SESSION,
  ) {
    const home = mkdtempSync(join(tmpdir(), "sc-session-"));
    const tmp = join(home, "tmp");
    mkdirSync(join(home, "deploy", "proj"), { recursive: true });
    mkdirSync(tmp);
    execFileSync(SYSTEM_PYTHON, ["-m", "venv", "--without-pip", join(home, "venv")]);
    writeOtherPython(join(home, "other"), () => "not the venv");
    setUp(home);
    const line = remoteCommand({
      deployDir: "~/deploy",
      project: "proj",
      venv: "~/venv",
      activateVenv: true,
    });
    // Through a pipe made by sh: fish fails to read a socket, which is what Node gives a child's stdin.
    const run = spawnSync("/bin/sh", ["-c", `printf '%s' "$SC_TEST_SESSION" | ${line}`], {
      env: {
        HOME: home,
        PATH: "/usr/bin:/bin",
        SHELL: shell,
        TMPDIR: tmp,
        TERM: "dumb",
        SC_TEST_SESSION: input,
        ...env(home),
      },
      encoding: "utf8",
      timeout: 20_000,
    });
    const leftInTmp = readdirSync(tmp);
    rmSync(home, { recursive: true, force: true });
    return { home, stdout: run.stdout, stderr: run.stderr, status: run.status, leftInTmp };
  }

  function assertVenvFirst(r: ReturnType<typeof session>, marker: string) {
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      `${r.home}/venv/bin/python\nuser files: ${marker}\n${r.home}/deploy/proj\n`,
      r.stderr,
    );
  }

  test("bash: ~/.bashrc runs, then the venv is activated and shown in the prompt", () => {
    const r = session("/bin/bash", (home) =>
      writeFileSync(
        join(home, ".bashrc"),
        'export PATH="$HOME/other:$PATH" FROM_USER_FILES=bashrc\nPS1="u$ "\n',
      ),
    );
    assertVenvFirst(r, "bashrc");
    assert.match(r.stderr, /\(venv\) u\$ /);
  });

  test("dash: the file $ENV names runs, then the venv", () => {
    const r = session(
      "/bin/dash",
      (home) =>
        writeFileSync(
          join(home, ".shrc"),
          'export PATH="$HOME/other:$PATH" FROM_USER_FILES=shrc\nPS1="u$ "\n',
        ),
      (home) => ({ ENV: join(home, ".shrc") }),
    );
    assertVenvFirst(r, "shrc");
    assert.match(r.stderr, /\(venv\) u\$ /);
  });

  test("zsh: ~/.zshenv and ~/.zshrc run, then the venv; the temporary ZDOTDIR is gone", () => {
    const r = session("/usr/bin/zsh", (home) => {
      writeFileSync(join(home, ".zshenv"), "export FROM_USER_FILES=zshenv\n");
      writeFileSync(
        join(home, ".zshrc"),
        'path=($HOME/other $path)\nFROM_USER_FILES="$FROM_USER_FILES+zshrc"\nPS1="u$ "\n',
      );
    });
    assertVenvFirst(r, "zshenv+zshrc");
    assert.match(r.stderr, /\(venv\) u\$ /);
    assert.deepEqual(r.leftInTmp, []);
  });

  test("zsh: a ZDOTDIR set in ~/.zshenv is where its .zshrc is read, and stays set", () => {
    const r = session("/usr/bin/zsh", (home) => {
      mkdirSync(join(home, ".config", "zsh"), { recursive: true });
      writeFileSync(join(home, ".zshenv"), "export ZDOTDIR=$HOME/.config/zsh\n");
      writeFileSync(
        join(home, ".config", "zsh", ".zshrc"),
        'path=($HOME/other $path)\nFROM_USER_FILES="zshrc in $ZDOTDIR"\n',
      );
    });
    assertVenvFirst(r, `zshrc in ${r.home}/.config/zsh`);
    assert.deepEqual(r.leftInTmp, []);
  });

  test("zsh: a system zshenv that sets ZDOTDIR itself (ours would not run) gets the venv activated before the user's files", () => {
    // /etc/zsh/zshenv replaced in a mount namespace of the test's own; the machine's is untouched.
    const home = mkdtempSync(join(tmpdir(), "sc-session-"));
    try {
      mkdirSync(join(home, "zdot"));
      writeFileSync(join(home, "zshenv"), `ZDOTDIR=${home}/zdot\n`);
      writeFileSync(join(home, "zdot", ".zshrc"), "FROM_USER_FILES=admin-zdotdir\n");
      mkdirSync(join(home, "deploy", "proj"), { recursive: true });
      execFileSync(SYSTEM_PYTHON, ["-m", "venv", "--without-pip", join(home, "venv")]);
      const line = remoteCommand({
        deployDir: "~/deploy",
        project: "proj",
        venv: "~/venv",
        activateVenv: true,
      });
      const [command, ...args] = [
        ...withFileBindMounted(join(home, "zshenv"), "/etc/zsh/zshenv"),
        "/bin/sh",
        "-c",
        `printf '%s' "$SC_TEST_SESSION" | ${line}`,
      ];
      const run = spawnSync(command!, args, {
        env: {
          HOME: home,
          PATH: "/usr/bin:/bin",
          SHELL: "/usr/bin/zsh",
          TERM: "dumb",
          SC_TEST_SESSION: 'echo "venv: $VIRTUAL_ENV, user files: $FROM_USER_FILES"; exit\n',
        },
        encoding: "utf8",
        timeout: 20_000,
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout, `venv: ${home}/venv, user files: admin-zdotdir\n`, run.stderr);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test("fish: config.fish runs, then the venv's activate.fish", () => {
    const r = session("/usr/bin/fish", (home) => {
      mkdirSync(join(home, ".config", "fish"), { recursive: true });
      writeFileSync(
        join(home, ".config", "fish", "config.fish"),
        "set -gx PATH $HOME/other $PATH\nset -gx FROM_USER_FILES config.fish\n",
      );
    });
    assertVenvFirst(r, "config.fish");
  });

  // csh syntax has no `command -v`; tcsh's `which` is a builtin that says the same.
  const CSH_SESSION = 'which python; echo "user files: $FROM_USER_FILES"; pwd; exit\n';
  for (const [shell, file] of [
    ["/usr/bin/tcsh", ".tcshrc"],
    ["/bin/csh", ".cshrc"],
  ] as const) {
    test(`${shell}: ~/${file} runs with HOME as it is, then the venv's activate.csh; the temporary HOME is gone`, () => {
      const r = session(
        shell,
        (home) =>
          writeFileSync(
            join(home, file),
            `setenv PATH "$HOME/other:$PATH"\nsetenv FROM_USER_FILES "${file} in $HOME"\nset prompt = "u> "\n`,
          ),
        () => ({}),
        CSH_SESSION,
      );
      assert.equal(r.status, 0, r.stderr);
      // csh and tcsh print their prompt, and the lines they read, on stdout.
      const lines = r.stdout
        .replaceAll("(venv) u> ", "")
        .split("\n")
        .filter((line) => !/^(Warning: no access to tty|Thus no job control)/.test(line));
      assert.deepEqual(
        lines,
        [
          `${r.home}/venv/bin/python`,
          `user files: ${file} in ${r.home}`,
          `${r.home}/deploy/proj`,
          "exit",
          "",
        ],
        r.stdout,
      );
      assert.match(r.stdout, /\(venv\) u> /);
      assert.deepEqual(r.leftInTmp, []);
    });
  }
});
