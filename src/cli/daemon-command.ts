import type { Command } from "commander";
import { DEFAULT_IDLE_SECONDS } from "../core/daemon/daemon-policy.js";
import { UsageError } from "../core/errors.js";
import { daemonBuild, daemonStatus, ensureDaemon, stopDaemon } from "../daemon/client.js";
import { daemonPlace } from "../daemon/place.js";
import type { DaemonStatus } from "../daemon/protocol.js";

/** `sync-cluster daemon run|start|status|stop`: the user's daemon that holds node connections. */

function parseIdle(value: string | undefined): number {
  if (value === undefined) return DEFAULT_IDLE_SECONDS;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--idle takes a positive number of seconds, not ${value}.`);
  return n;
}

function age(iso: string | null): string {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

export function statusReport(status: DaemonStatus): string {
  const lines = [
    `pid      ${status.pid}`,
    `uptime   ${status.uptimeSeconds}s (since ${status.startedAt})`,
    `socket   ${status.socket}`,
    `idle     exits after ${status.idleSeconds}s unused`,
  ];
  if (status.nodes.length === 0) lines.push("nodes    none held");
  else {
    const rows = status.nodes.map((n) => [
      n.names.join(","),
      `${n.user}@${n.host}:${n.port}`,
      n.connectedAt ? `connected ${age(n.connectedAt)}` : "not connected",
      `agents ${n.agentsHeld} held, ${n.agentsLent} lent`,
      `used ${age(n.lastUsedAt)}`,
      `dials ${n.dials}`,
    ]);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows)
      lines.push(
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
      );
  }
  for (const p of status.projects ?? [])
    lines.push(
      `project  ${p.startDir} (${p.entry}): ${p.unwatchable ? `resolved afresh each time, ${p.unwatchable}` : `${p.watchedDirectories} directories watched`}; ${p.warmAnswers} kept, ${p.resolutions} resolved; used ${age(p.lastUsedAt)}`,
    );
  return `${lines.join("\n")}\n`;
}

export function registerDaemon(program: Command): void {
  const daemon = program
    .command("daemon")
    .description(
      "The per-user daemon that keeps node connections and agents between commands (started on first use)",
    );
  daemon
    .command("run")
    .description("Run the daemon in the foreground")
    .option("--idle <seconds>", `exit after this many seconds unused (default ${DEFAULT_IDLE_SECONDS})`)
    .action(async (options: { idle?: string }) => {
      const place = daemonPlace();
      // Only `daemon run` holds connections: the other commands need neither it nor ssh2.
      const { Daemon } = await import("../daemon/server.js");
      const server = new Daemon({
        place,
        build: daemonBuild(),
        idleSeconds: parseIdle(options.idle),
        log: (line) => process.stdout.write(`${line}\n`),
      });
      try {
        await server.start();
      } catch (error) {
        // Another daemon already running, or a directory others may enter: said as it is.
        throw new UsageError((error as Error).message);
      }
      const stop = () => void server.stop();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      await server.stopped;
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    });
  daemon
    .command("start")
    .description("Start the daemon in the background unless it runs")
    .option("--idle <seconds>", `exit after this many seconds unused (default ${DEFAULT_IDLE_SECONDS})`)
    .action(async (options: { idle?: string }) => {
      const place = daemonPlace();
      try {
        const state = await ensureDaemon(place, parseIdle(options.idle));
        const status = await daemonStatus(place);
        process.stdout.write(
          `daemon ${state === "started" ? "started" : "already running"}, pid ${status?.pid}\n`,
        );
      } catch (error) {
        throw new UsageError(`the daemon could not start: ${(error as Error).message}`);
      }
    });
  daemon
    .command("status")
    .description("Whether the daemon runs, and the connections it holds")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const place = daemonPlace();
      let status: DaemonStatus | undefined;
      try {
        status = await daemonStatus(place);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      if (options.json) process.stdout.write(`${JSON.stringify(status ?? null)}\n`);
      else process.stdout.write(status ? statusReport(status) : `no daemon runs (socket ${place.socket})\n`);
      if (!status) process.exitCode = 1;
    });
  daemon
    .command("stop")
    .description("Stop the daemon, closing every connection it holds")
    .action(async () => {
      const place = daemonPlace();
      let stopped: boolean;
      try {
        stopped = await stopDaemon(place);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      process.stdout.write(stopped ? "daemon stopped\n" : "no daemon was running\n");
    });
}
