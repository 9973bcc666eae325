/**
 * The project's default name on the workers (DEPLOYDIR/NAME, sync-cluster-NAME.pth) when the
 * inventory names none: the name the project gives itself in its packaging metadata, else, for a
 * root called `src`, its parent directory's name (every src-layout project would otherwise be
 * called `src` and replace the others), else the root's name. Pure: the caller reads the files.
 */

export interface MetadataTexts {
  pyprojectToml?: string;
  setupCfg?: string;
  setupPy?: string;
}

/** The lines of one `[section]` of a TOML or INI file, up to the next section header. */
function sectionLines(text: string, section: string): string[] {
  const lines = text.split(/\r?\n/);
  const out: string[] = [];
  let inside = false;
  for (const line of lines) {
    const header = /^\s*\[([^\]]+)\]\s*(?:[#;].*)?$/.exec(line);
    if (header) {
      inside = header[1]!.trim() === section;
      continue;
    }
    if (inside) out.push(line);
  }
  return out;
}

/** `[project] name = "..."` of pyproject.toml (PEP 621); a TOML basic or literal string. */
export function nameInPyproject(text: string): string | undefined {
  for (const line of sectionLines(text, "project")) {
    const m = /^\s*name\s*=\s*(?:"([^"\\]*)"|'([^']*)')\s*(?:#.*)?$/.exec(line);
    if (m) return m[1] ?? m[2];
  }
  return undefined;
}

/** `[metadata] name = ...` of setup.cfg. */
export function nameInSetupCfg(text: string): string | undefined {
  for (const line of sectionLines(text, "metadata")) {
    const m = /^\s*name\s*[=:]\s*(\S.*?)\s*$/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/** A literal `name="..."` keyword argument in setup.py (a computed name is not guessed at). */
export function nameInSetupPy(text: string): string | undefined {
  const m = /\bname\s*=\s*(?:"([^"\\\n]+)"|'([^'\\\n]+)')/.exec(text);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** A name the workers can use as a directory and a .pth file name: other characters become "-". */
export function workerSafeName(name: string): string {
  const safe = name.trim().replace(/[^A-Za-z0-9._-]+/g, "-");
  return /^\.*$/.test(safe) ? "" : safe.replace(/^\.+/, "");
}

export function nameFromMetadata(texts: MetadataTexts): string | undefined {
  const found =
    (texts.pyprojectToml !== undefined ? nameInPyproject(texts.pyprojectToml) : undefined) ??
    (texts.setupCfg !== undefined ? nameInSetupCfg(texts.setupCfg) : undefined) ??
    (texts.setupPy !== undefined ? nameInSetupPy(texts.setupPy) : undefined);
  const safe = found === undefined ? "" : workerSafeName(found);
  return safe === "" ? undefined : safe;
}

/**
 * `metadataOf(dir)` gives the packaging files of a directory. The root's own metadata first;
 * for a root named `src`, its parent's metadata, then the parent's name.
 */
export function defaultProjectName(root: string, metadataOf: (dir: string) => MetadataTexts): string {
  const base = root.slice(root.lastIndexOf("/") + 1);
  const own = nameFromMetadata(metadataOf(root));
  if (own) return own;
  if (base === "src") {
    const parent = root.slice(0, root.lastIndexOf("/")) || "/";
    const fromParent = nameFromMetadata(metadataOf(parent));
    if (fromParent) return fromParent;
    const parentBase = parent.slice(parent.lastIndexOf("/") + 1);
    if (parentBase) return workerSafeName(parentBase) || base;
  }
  return base;
}
