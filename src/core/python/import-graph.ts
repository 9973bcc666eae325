import type { PythonImport } from "./python-imports.js";

/**
 * Turns the imports written in one file of the set into absolute module names, and collects the
 * names (with every dotted prefix) that decide which namespace directories are shipped.
 */

/** The module name of a file of the set: `pkg/sub/mod.py` -> `pkg.sub.mod`, `pkg/__init__.py` -> `pkg`. */
export function moduleNameOfFile(path: string): string {
  const parts = path.slice(0, -3).split("/");
  if (parts[parts.length - 1] === "__init__") parts.pop();
  return parts.join(".");
}

/** The package a relative import inside this file is relative to ("" at the root). */
function packageOfFile(path: string): string {
  const parts = path.split("/");
  parts.pop();
  return parts.join(".");
}

export interface AbsoluteImport {
  /** Absolute dotted name of the imported module. */
  module: string;
  /** Absolute names of `from X import a, b` targets that may be submodules: `X.a`, `X.b`. */
  candidates: string[];
  line: number;
  relative: boolean;
  /** Inside a `try` that catches ImportError (see python-imports.ts). */
  optional: boolean;
}

/**
 * Relative imports are made absolute the way Python does; one that climbs above the top-level
 * package (or is used in a root module) is dropped: Python would refuse it too.
 */
export function absoluteImports(filePath: string, imports: readonly PythonImport[]): AbsoluteImport[] {
  const out: AbsoluteImport[] = [];
  const pkg = packageOfFile(filePath);
  for (const imp of imports) {
    let module = imp.module;
    if (imp.level > 0) {
      const base = pkg === "" ? [] : pkg.split(".");
      if (imp.level - 1 >= base.length) continue;
      const anchor = base.slice(0, base.length - (imp.level - 1)).join(".");
      module = imp.module ? `${anchor}.${imp.module}` : anchor;
    }
    if (!module) continue;
    const candidates = imp.names.filter((n) => n !== "*").map((n) => `${module}.${n}`);
    out.push({
      module,
      candidates,
      line: imp.line,
      relative: imp.level > 0,
      optional: imp.optional === true,
    });
  }
  return out;
}

/** `a.b.c` -> `a`, `a.b`, `a.b.c`, added to `into`. */
export function addWithPrefixes(name: string, into: Set<string>): void {
  let dot = name.indexOf(".");
  while (dot !== -1) {
    into.add(name.slice(0, dot));
    dot = name.indexOf(".", dot + 1);
  }
  into.add(name);
}

export function topLevelOf(module: string): string {
  const dot = module.indexOf(".");
  return dot === -1 ? module : module.slice(0, dot);
}
