import { spawn } from "node:child_process";
import { Duplex } from "node:stream";
import type { ProxyCommandSpec } from "../core/ssh/node-route.js";

/**
 * A running ProxyCommand: its stdin and stdout are the stream SSH talks over; its stderr is kept
 * (the end of it) to explain a failed connection; it is stopped when the connection closes.
 */

/** Enough of the command's own words to explain a failure, not a flood. */
const STDERR_KEPT = 2000;

export interface RunningProxyCommand {
  stream: Duplex;
  /** Why the command failed, once it has: how it ended and its stderr; undefined while it looks fine. */
  failure(): Promise<string | undefined>;
  stop(): void;
}

export function startProxyCommand(spec: ProxyCommandSpec): RunningProxyCommand {
  const [program, ...args] = spec.argv;
  const child = spawn(program!, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  let ended: string | undefined;
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => {
    stderr = (stderr + text).slice(-STDERR_KEPT);
  });
  const closed = new Promise<void>((resolve) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      ended =
        error.code === "ENOENT"
          ? `could not be started: there is no program \`${program}\``
          : `could not be started: ${error.message}`;
      resolve();
    });
    child.once("close", (code, signal) => {
      ended ??= signal ? `was killed by ${signal}` : `exited with status ${code}`;
      resolve();
    });
  });
  // A write after the command exited (EPIPE) is the connection failing, reported by SSH as such.
  child.stdin.on("error", () => {});
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  stream.on("error", () => {});
  return {
    stream,
    async failure() {
      // The command's last words arrive with its exit; wait a moment for them.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      if (ended === undefined && stderr.trim() === "") return undefined;
      const said = stderr.trim() ? `: ${stderr.trim().split("\n").slice(-5).join(" / ")}` : "";
      return `the ProxyCommand \`${spec.command}\` ${ended ?? "is still running but the SSH handshake failed"}${said}`;
    },
    stop() {
      stream.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
  };
}
