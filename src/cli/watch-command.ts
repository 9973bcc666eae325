import type { Command } from "commander";
import { ExitCode, UsageError } from "../core/errors.js";
import type { WatchEvent } from "../watch/watch.js";
import { type LinkOptions, linkerFor, noDaemonOption, verboseOption } from "./node-links.js";
import { addEntryOptions, type EntryOptions, projectFromOptions } from "./project-context.js";
import { acceptNewOption, jobsOption, parseJobs } from "./shared-options.js";
import { isInteractive, printJsonLine } from "./terminal.js";
import { flatOption, throughTree } from "./tree-mode.js";
import { WatchDisplay } from "./watch-display.js";

interface WatchCommandOptions extends EntryOptions, LinkOptions {
  flat?: boolean;
  jobs?: string;
  debounce?: string;
  json?: boolean;
  check?: boolean;
  acceptNew?: boolean;
  replace?: boolean;
  onSynced?: string;
  refreshWorkers?: string;
}

/** How long in-flight pushes may take to finish after SIGINT/SIGTERM before they are cut. */
const STOP_GRACE_MS = 3000;

export function registerWatch(program: Command): void {
  addEntryOptions(
    program
      .command("watch")
      .description("Keep every worker in step with the project: push each saved change as it happens")
      .argument("[script]", "the workflow's main script (sibling-files scenario)"),
  )
    .addOption(jobsOption("workers handled"))
    .option("--debounce <ms>", "wait this long after the last change before pushing", "10")
    .option("--root <dir>", "the directory python is started from")
    .option("--python <py>", "the leader's interpreter")
    .option("--no-check", "sync even nodes whose readiness check fails")
    .addOption(acceptNewOption())
    .option("--replace", "replace a project of the same name that another leader or root pushed to a worker")
    .option(
      "--on-synced <command>",
      "run COMMAND on this machine (with sh -c) each time every node holds a new release; it gets SYNC_CLUSTER_RELEASE and SYNC_CLUSTER_NODES",
    )
    .option(
      "--refresh-workers <seconds>",
      "run the inventory's workers command again this often (default: its `refresh`, 30)",
    )
    .addOption(noDaemonOption())
    .addOption(verboseOption())
    .option("--json", "print one JSON event per line (the default when stdout is not a terminal)")
    .addOption(flatOption())
    .action(async (script: string | undefined, options: WatchCommandOptions) => {
      const concurrency = parseJobs(options.jobs);
      const debounceMs = Number(options.debounce);
      if (!Number.isFinite(debounceMs) || debounceMs < 0)
        throw new UsageError(`--debounce takes milliseconds, not ${options.debounce}`);
      const refreshSeconds =
        options.refreshWorkers === undefined ? undefined : Number(options.refreshWorkers);
      if (refreshSeconds !== undefined && !(Number.isFinite(refreshSeconds) && refreshSeconds > 0))
        throw new UsageError(
          `--refresh-workers takes a positive number of seconds, not ${options.refreshWorkers}`,
        );
      if (options.onSynced !== undefined && options.onSynced.trim() === "")
        throw new UsageError("--on-synced takes a command to run, not an empty text");
      const project = await projectFromOptions(script, options, true);
      if (refreshSeconds !== undefined && !project.inventory!.workersSource)
        throw new UsageError(
          `--refresh-workers is for workers listed by a command (workers: {command} or {slurm}); ${project.inventory!.file} lists them`,
        );
      const json = options.json === true || !isInteractive(process.stdout);
      const display = json ? undefined : new WatchDisplay(process.stdout);
      const onEvent = (event: WatchEvent) => {
        if (json) printJsonLine({ time: new Date().toISOString(), ...event });
        else display!.handle(event);
      };
      // Loaded by watch alone (chokidar and the syncers): every other command starts faster.
      const { WatchSession } = await import("../watch/watch.js");
      const session = new WatchSession({
        inventory: project.inventory!,
        tree: throughTree(project.inventory!, options)?.tree,
        resolveOptions: project.resolveOptions,
        debounceMs,
        concurrency,
        acceptNew: options.acceptNew ?? false,
        links: linkerFor(project.inventory!, options),
        replace: options.replace ?? false,
        check: options.check !== false,
        refreshSeconds,
        onSynced: options.onSynced,
        onSyncedCwd: process.cwd(),
        onEvent,
      });
      await session.start();
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = () => {
          signals++;
          if (signals > 1) {
            // The user insists: leave now. Workers' `current` is still whole (publish is atomic).
            process.exit(ExitCode.interrupted);
          }
          void session.stop(STOP_GRACE_MS).then(() => {
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
            resolve();
          });
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      });
      display?.close();
      process.exitCode = ExitCode.ok;
    });
}
