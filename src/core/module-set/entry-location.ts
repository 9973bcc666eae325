import type { LocatedModule } from "../python/import-classification.js";
import type { ResolutionMode } from "./resolution-mode.js";

/**
 * Rules 2-5 of docs/DESIGN.md section 4 that decide from where the leader's interpreter finds the
 * entry: the mode of the set and its root, or why there is nothing to ship. Pure: the resolver
 * locates the entry, these say what that means.
 */

/** The mode and root for `python -m NAME` whose top-level name was found at `located`, or why not. */
export function moduleEntryPlace(
  top: string,
  name: string,
  located: LocatedModule | undefined,
  lookedIn: readonly { path: string; kind: string }[],
): { mode: ResolutionMode; root: string } | { problem: string } {
  if (!located) {
    const looked = lookedIn.map((e) => `  ${e.path} (${e.kind})`).join("\n");
    return {
      problem: `No module named \`${top}\` was found for \`python -m ${name}\`. Looked in:\n${looked}\nRun from the project directory, pass --root DIR, or set PYTHONPATH.`,
    };
  }
  switch (located.entry.kind) {
    case "start":
    case "pythonpath":
    case "pth":
      return { mode: "package", root: located.entry.path };
    case "venv-site":
      return { mode: "installed", root: located.entry.path };
    case "stdlib":
      return {
        problem: `\`${top}\` is a standard-library module: there is nothing to ship. Rename your package if it is meant to be yours.`,
      };
    default:
      return {
        problem:
          `\`${top}\` is found in ${located.entry.path} (the system's or the user's site-packages), not in the project or the virtualenv: there is nothing to ship. ` +
          "Run from the project directory, or install the project into a --system-site-packages virtualenv with `pip install .`.",
      };
  }
}

/** Why an editable or egg install of the entry's package cannot be shipped, and what to do instead. */
export function editableInstallProblem(top: string, editable: { kind: string; file: string }): string {
  return (
    `\`${top}\` is installed as an ${editable.kind === "egg" ? ".egg" : `editable install (${editable.kind})`} (${editable.file}). ` +
    "Such installs point at the source tree instead of copying the modules, so they cannot be auto-deployed (the Toil documentation says the same of `pip install -e .`, `setup.py develop` and `setup.py install`). " +
    "Uninstall it and run `pip install .` in the project instead."
  );
}

/**
 * Why a script cannot be the entry because another module of its name is on the path (on the
 * workers `import NAME` could load that one), or undefined.
 */
export function scriptShadowedProblem(
  script: string,
  module: string,
  root: string,
  elsewhere: LocatedModule | undefined,
): string | undefined {
  if (!elsewhere || elsewhere.entry.path === root) return undefined;
  return `The script ${script} has the name of the module \`${module}\` found in ${elsewhere.entry.path}: on the workers \`import ${module}\` could load that one instead. Rename the script.`;
}
