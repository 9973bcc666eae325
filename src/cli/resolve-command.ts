import type { Command } from "commander";
import { isModulePath } from "../core/module-set/module-set.js";
import { resolveWithStoredDigests } from "../resolve/cached-resolve.js";
import type { Resolution } from "../resolve/resolver.js";
import { addEntryOptions, type EntryOptions, projectFromOptions } from "./project-context.js";
import { formatBytes, printJson } from "./terminal.js";

interface ResolveCommandOptions extends EntryOptions {
  json?: boolean;
  verbose?: boolean;
}

export function registerResolve(program: Command): void {
  addEntryOptions(
    program
      .command("resolve")
      .description("Show the module set of the workflow, decided the way Python would import it")
      .argument("[script]", "the workflow's main script (sibling-files scenario)"),
  )
    .option("--root <dir>", "the directory python is started from")
    .option("--python <py>", "the leader's interpreter (default: $VIRTUAL_ENV/bin/python, then python3)")
    .option("--json", "print the module set as one JSON document")
    .option("-v, --verbose", "list every file of the set")
    .action(async (script: string | undefined, options: ResolveCommandOptions) => {
      const project = await projectFromOptions(script, options);
      const resolution = await resolveWithStoredDigests(project.resolveOptions);
      if (options.json) printJson(resolutionJson(resolution));
      else process.stdout.write(resolutionReport(resolution, options.verbose ?? false));
    });
}

export function resolutionJson(r: Resolution): unknown {
  const several = r.roots.length > 1;
  const entry = (f: Resolution["files"][number]) => ({
    path: f.path,
    ...(several ? { root: f.root } : {}),
    size: f.size,
    mode: f.mode.toString(8),
    sha256: f.sha256,
  });
  return {
    mode: r.mode,
    module: r.module,
    root: r.root,
    roots: r.roots,
    python: r.python,
    files: r.files.map(entry),
    data: r.files.filter((f) => !isModulePath(f.path)).map(entry),
    thirdParty: r.thirdParty,
    native: r.native,
    unresolved: r.unresolved,
    optional: r.optional,
    notShipped: r.notShipped,
    syntaxErrors: r.syntaxErrors,
    warnings: r.warnings,
  };
}

export function resolutionReport(r: Resolution, verbose: boolean): string {
  const bytes = r.files.reduce((s, f) => s + f.size, 0);
  const modules = r.files.filter((f) => isModulePath(f.path));
  const data = r.files.filter((f) => !isModulePath(f.path));
  const lines = [`mode      ${r.mode}`, `module    ${r.module}`, `root      ${r.root}`];
  if (r.roots.length > 1) lines.push(`roots     ${r.roots.map((root, i) => `${i}: ${root}`).join(", ")}`);
  lines.push(
    `python    ${r.python.executable} (${r.python.version})`,
    `files     ${r.files.length} (${modules.length} Python modules, ${data.length} data files, ${formatBytes(bytes)})`,
  );
  if (r.thirdParty.length > 0) {
    lines.push(
      `imports   ${r.thirdParty
        .map(
          (t) =>
            `${t.module}${t.dist ? ` (${t.dist} ${t.version ?? ""}`.trimEnd() + `, ${t.location}${t.native ? ", native" : ""})` : ` (${t.location})`}`,
        )
        .join(", ")}`,
    );
  }
  if (r.optional.length > 0) {
    lines.push(
      `optional  ${r.optional.map((o) => `${o.module} (${o.found ? "on the leader" : "not on the leader"})`).join(", ")}`,
    );
  }
  const shown = (f: Resolution["files"][number]) =>
    `  ${r.roots.length > 1 ? `[${f.root}] ` : ""}${f.path}${isModulePath(f.path) ? "" : `  (${formatBytes(f.size)})`}`;
  if (verbose) {
    for (const f of modules) lines.push(shown(f));
    if (data.length > 0) lines.push("data:");
    for (const f of data) lines.push(shown(f));
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return `${lines.join("\n")}\n`;
}
