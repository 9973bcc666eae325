import { writeFile } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../core/errors.js";
import { inventoryTemplate } from "../inventory/template.js";

interface InitOptions {
  module?: string;
  worker?: string[];
  force?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("Write a commented inventory template (default ./sync-cluster.yaml)")
    .argument("[path]", "where to write it", "sync-cluster.yaml")
    .option("-m, --module <module>", "the workflow's entry module, e.g. workflow.main")
    .option("-w, --worker <host>", "a worker host or ~/.ssh/config alias (repeatable)", collect)
    .option("--force", "overwrite an existing file")
    .action(async (path: string, options: InitOptions) => {
      const target = resolvePath(path);
      const text = inventoryTemplate({
        ...(options.module ? { entry: `-m ${options.module}` } : {}),
        ...(options.worker?.length ? { workers: options.worker } : {}),
      });
      try {
        // "wx" so an existing inventory is never overwritten by accident.
        await writeFile(target, text, { flag: options.force ? "w" : "wx" });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") {
          throw new UsageError(`${target} already exists; edit it, or pass --force to replace it.`);
        }
        throw new UsageError(`cannot write ${target}: ${(error as Error).message}`);
      }
      process.stdout.write(
        `wrote ${target}\nedit its workers, then: sync-cluster check && sync-cluster push\n`,
      );
    });
}
