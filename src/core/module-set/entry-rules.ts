/**
 * Rules 2-4 of docs/DESIGN.md section 4 that concern the entry and the root: what an entry is, which
 * roots are refused, and which names may not be used. Pure string work.
 */

export type Entry = { kind: "script"; path: string } | { kind: "module"; name: string };

const MODULE_NAME = /^[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*$/u;

export function isValidModuleName(name: string): boolean {
  return MODULE_NAME.test(name);
}

/** Parses `-m pkg.mod`, `pkg.mod` given with -m, or `script.py`, as in the inventory's `project.entry`. */
export function parseEntry(text: string): Entry {
  const trimmed = text.trim();
  const m = /^-m\s*(\S+)$/.exec(trimmed);
  if (m) return { kind: "module", name: m[1]! };
  return { kind: "script", path: trimmed };
}

/** Directories that are never a project root: shipping them would ship a whole system or home. */
const REFUSED_ROOTS = [
  "/",
  "/home",
  "/tmp",
  "/usr",
  "/etc",
  "/var",
  "/bin",
  "/sbin",
  "/dev",
  "/sys",
  "/run",
  "/proc",
];

export function refusedRootReason(root: string, home: string): string | undefined {
  const normalized = root.length > 1 ? root.replace(/\/+$/, "") : root;
  if (REFUSED_ROOTS.includes(normalized)) {
    return `The project root would be ${normalized}, a system directory; shipping it is refused. Move the workflow into a project directory of its own.`;
  }
  if (home && normalized === home.replace(/\/+$/, "")) {
    return `The project root would be your home directory ${normalized}; shipping it is refused. Move the workflow into a project directory (for example ~/my_project) and run from there.`;
  }
  return undefined;
}

/** Script mode: why a script file cannot be the entry, if it cannot. */
export function scriptNameProblem(fileName: string, stdlib: ReadonlySet<string>): string | undefined {
  if (!fileName.endsWith(".py")) {
    return `${fileName} does not end in .py: the workers import the workflow by module name, which needs a .py file. Rename it to ${fileName.replace(/\.[^.]*$/, "")}.py.`;
  }
  const stem = fileName.slice(0, -3);
  if (stdlib.has(stem)) {
    return `${fileName} has the name of the standard-library module \`${stem}\`: on the workers \`import ${stem}\` would find one or the other. Rename the script (for example to ${stem}_workflow.py).`;
  }
  if (!isValidModuleName(stem)) {
    return `${fileName} is not a valid Python module name, so the workers cannot import it. Rename it using letters, digits and underscores (for example ${stem.replace(/[^\p{L}\p{N}_]/gu, "_")}.py).`;
  }
  return undefined;
}
