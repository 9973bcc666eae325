import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { makePackageProject, SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { underPty } from "../fixtures/pty.js";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../harness/cluster.js";

const BIN = join(process.cwd(), "bin", "sync-cluster");
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", PYTHONPATH: "" };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], cwd: string, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(BIN, args, { cwd, env, maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

describe("status, rollback, ssh and exec on real sshd workers", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let project: string;
  let inv: string;

  before(async () => {
    cluster = await startCluster({ workers: 3 });
    project = await realpath(await tempDir("operate"));
    await makePackageProject(project);
    inv = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  const statusJson = async () => {
    const r = await cli(["status", "-i", inv, "--json"], project);
    return {
      code: r.code,
      doc: JSON.parse(r.stdout) as {
        leaderRelease: string;
        nodes: {
          node: string;
          reachable: boolean;
          release?: { current: string | null; inSync: boolean; filesDiffering: number; releasesKept: number };
        }[];
      },
    };
  };
  const currentOf = async (w: WorkerHandle) =>
    (await cluster.runOnWorker(w, `basename "$(readlink ${w.deployDir}/proj/current)"`)).stdout.trim();

  test("status before and after a push, and after a local change", async () => {
    let s = await statusJson();
    assert.equal(s.code, 1);
    assert.ok(
      s.doc.nodes.every((n) => n.reachable && n.release?.current === null && n.release.filesDiffering === 5),
    );
    const push = await cli(["push", "-i", inv], project);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    s = await statusJson();
    assert.equal(s.code, 0);
    assert.ok(
      s.doc.nodes.every(
        (n) => n.release?.inSync && n.release.current === s.doc.leaderRelease && n.release.releasesKept === 1,
      ),
    );
    await writeTree(project, { "util/new.py": "NEW = 1\n" });
    s = await statusJson();
    assert.equal(s.code, 1);
    assert.ok(
      s.doc.nodes.every((n) => n.release?.inSync === false && n.release.filesDiffering === 1),
      JSON.stringify(s.doc),
    );
    const table = await cli(["status", "-i", inv], project);
    assert.match(table.stdout, /^w1\s+up\s+[0-9a-f]{24}\s+\d+s\s+no \(1 file\(s\) differ\)\s+ok\s+1$/m);
  });

  test("status with one worker pushed a different release, and with one worker down", async () => {
    const push = await cli(["push", "-i", inv], project);
    assert.equal(push.code, 0, push.stderr);
    const odd = cluster.workers[1]!;
    const other = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
      workers: [odd],
    });
    await writeTree(project, { "util/only_w2.py": "X = 1\n" });
    assert.equal((await cli(["push", "-i", other], project)).code, 0);
    await writeFile(join(project, "util/only_w2.py"), "X = 2\n");
    inv = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
    });
    const s = await statusJson();
    const byName = new Map(s.doc.nodes.map((n) => [n.node, n]));
    assert.equal(byName.get(odd.name)?.release?.filesDiffering, 1, "only_w2.py differs in content");
    assert.equal(byName.get("w1")?.release?.filesDiffering, 1, "only_w2.py is missing");
    const down = cluster.workers[2]!;
    await down.stop();
    try {
      const r = await cli(["status", "-i", inv], project);
      assert.equal(r.code, 1);
      assert.match(r.stdout, new RegExp(`^${down.name}\\s+unreachable`, "m"));
      assert.match(r.stdout, new RegExp(`^${down.name}: .*refused`, "m"));
    } finally {
      await down.start();
    }
  });

  test("rollback to the previous release, to a named one, and where a node lacks it", async () => {
    await writeFile(join(project, "util/only_w2.py"), "X = 3\n");
    assert.equal((await cli(["push", "-i", inv], project)).code, 0);
    const w1 = cluster.workers[0]!;
    const releases = (await cluster.runOnWorker(w1, `ls -t ${w1.deployDir}/proj/releases`)).stdout
      .trim()
      .split("\n");
    const [newest, previous] = releases;
    assert.equal(await currentOf(w1), newest);
    const back = await cli(["rollback", "-i", inv], project);
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.equal(await currentOf(w1), previous);
    const s = await statusJson();
    assert.equal(s.doc.nodes.find((n) => n.node === w1.name)?.release?.current, previous);

    // w2 never had w1's first release: it is reported and left as it is.
    const first = releases.at(-1)!;
    const w2 = cluster.workers[1]!;
    const w2Before = await currentOf(w2);
    const named = await cli(["rollback", "-i", inv, "--to", first.slice(0, 8)], project);
    assert.equal(named.code, 1);
    assert.match(
      named.stdout,
      new RegExp(
        `^${w2.name}\\s+FAILED\\s+left unchanged: release ${first.slice(0, 8)} is not on this node`,
        "m",
      ),
    );
    assert.equal(await currentOf(w1), first);
    assert.equal(await currentOf(w2), w2Before);

    // The next push moves forward again.
    assert.equal((await cli(["push", "-i", inv], project)).code, 0);
    assert.equal(await currentOf(w1), s.doc.leaderRelease);
  });

  test("ssh with a command: exit status, stderr kept apart, in the deploy directory with the venv", async () => {
    const w = cluster.workers[0]!;
    const ok = await cli(["ssh", "w1", "-i", inv, "--", "pwd; echo $VIRTUAL_ENV; echo oops >&2"], project);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${w.deployDir}/proj\n${w.venv}\n`);
    assert.equal(ok.stderr, "oops\n");
    const failing = await cli(
      ["ssh", "w2", "-i", inv, "--", "python", "-c", "import sys; sys.exit(7)"],
      project,
    );
    assert.equal(failing.code, 7);
    const piped = await cli(["ssh", "w3", "-i", inv, "--", "cat"], project, "through stdin\n");
    assert.equal(piped.stdout, "through stdin\n");
    const wrong = await cli(["ssh", "nope", "-i", inv, "--", "true"], project);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /no node matches `nope`/);
  });

  test("ssh interactive: a real PTY, window size forwarded, exit status passed through", async () => {
    const driven = await underPty(
      [BIN, "ssh", "w1", "-i", inv],
      "echo marker-$((6*7))\\nstty size\\npython -c 'import util.sort.quick; print(\"imported\")'\\nexit 3",
      { cwd: project, env: { ...env, TERM: "xterm" } },
    );
    assert.equal(driven.code, 3, driven.stdout + driven.stderr);
    assert.match(driven.stdout, /marker-42/);
    assert.match(driven.stdout, /33 101/);
    assert.match(driven.stdout, /imported/);
  });

  test("exec on all nodes and on a selector, with one node down", async () => {
    const all = await cli(
      [
        "exec",
        "-i",
        inv,
        "--",
        "echo hello from $(hostname -s 2>/dev/null || echo x); python -c 'import util.sort.quick'",
      ],
      project,
    );
    assert.equal(all.code, 0, all.stderr);
    for (const w of cluster.workers) assert.match(all.stdout, new RegExp(`^${w.name} \\| hello from`, "m"));
    const some = await cli(
      ["exec", "-i", inv, "--nodes", "w1,w3", "--json", "--", "echo out; echo err >&2; exit 4"],
      project,
    );
    assert.equal(some.code, 1);
    const doc = JSON.parse(some.stdout) as {
      nodes: { node: string; status: number; stdout: string; stderr: string }[];
    };
    assert.deepEqual(
      doc.nodes.map((n) => [n.node, n.status, n.stdout, n.stderr]),
      [
        ["w1", 4, "out\n", "err\n"],
        ["w3", 4, "out\n", "err\n"],
      ],
    );
    const down = cluster.workers[1]!;
    await down.stop();
    try {
      const r = await cli(["exec", "-i", inv, "--group", "--", "echo grouped"], project);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^--- w1 \(exit 0\)\ngrouped$/m);
      assert.match(r.stdout, new RegExp(`^--- ${down.name} \\(unreachable\\)`, "m"));
      assert.match(r.stderr, new RegExp(`1 of 3 node\\(s\\) failed:\\n  ${down.name}: .*refused`));
    } finally {
      await down.start();
    }
  });
});
