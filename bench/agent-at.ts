import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The agent source a node would have received from sync-cluster at `commit`, to measure it beside
 * this one: the single file where the agent was one, else its modules joined by that commit's own
 * joiner (bin/join-agent.mjs), which reads them (and the protocol it embeds) relative to itself.
 */
export function agentSourceAt(commit: string): string {
  try {
    return execFileSync("git", ["show", `${commit}:src/worker/agent.py`], {
      stdio: ["ignore", "pipe", "ignore"],
    }).toString();
  } catch {
    const dir = mkdtempSync(join(tmpdir(), "sc-agent-at-"));
    try {
      execFileSync("sh", [
        "-c",
        `git archive ${commit} src/worker src/core/protocol bin/join-agent.mjs | tar -x -C ${dir}`,
      ]);
      execFileSync(process.execPath, [join(dir, "bin", "join-agent.mjs"), join(dir, "agent.py")]);
      return readFileSync(join(dir, "agent.py"), "utf8");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
