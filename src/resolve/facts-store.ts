import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { InterpreterFacts } from "../core/interpreter-facts.js";
import { probeFor, type ResolveOptions } from "./resolver.js";
import { refreshProjectEntries } from "./top-level-listing.js";

/**
 * What the leader's interpreter reported, kept between runs: starting python to ask costs more
 * than the rest of a no-op push. The answer is reused only while the interpreter and every
 * directory on its path are unchanged (an install or uninstall changes a site directory's
 * mtime); the project's own entries are always listed afresh.
 */

const FORMAT = 1;

interface Stored {
  format: number;
  key: string;
  /** mtimes of the interpreter and of every non-project path directory when probed. */
  stamps: [path: string, mtimeMs: number][];
  facts: InterpreterFacts;
}

async function mtimeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return -1;
  }
}

function stampPaths(facts: InterpreterFacts): string[] {
  const dirs = facts.path.filter((e) => e.kind !== "start" && e.kind !== "pythonpath").map((e) => e.path);
  return [facts.executable, ...dirs, ...(facts.venvSite ? [facts.venvSite] : [])];
}

export async function factsWithStore(
  options: Pick<ResolveOptions, "python" | "startDir" | "env">,
): Promise<InterpreterFacts> {
  const env = options.env ?? process.env;
  const key = JSON.stringify([
    FORMAT,
    options.python ?? null,
    options.startDir,
    env.PYTHONPATH ?? "",
    env.VIRTUAL_ENV ?? "",
    env.PATH ?? "",
  ]);
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  const file = join(
    base,
    "sync-cluster",
    `python-${createHash("sha256").update(key).digest("hex").slice(0, 20)}.json`,
  );
  try {
    const stored = JSON.parse(await readFile(file, "utf8")) as Stored;
    if (stored.format === FORMAT && stored.key === key) {
      const now = await Promise.all(stored.stamps.map(([p]) => mtimeOf(p)));
      if (now.every((m, i) => m === stored.stamps[i]![1] && m !== -1))
        return await refreshProjectEntries(stored.facts);
    }
  } catch {
    // No usable answer kept: ask the interpreter.
  }
  const facts = await probeFor(options);
  const paths = stampPaths(facts);
  const stamps = (
    await Promise.all(paths.map(async (p) => [p, await mtimeOf(p)] as [string, number]))
  ).filter(([, m]) => m !== -1);
  try {
    await mkdir(join(file, ".."), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ format: FORMAT, key, stamps, facts } satisfies Stored), {
      mode: 0o600,
    });
    await rename(tmp, file);
  } catch {
    // Nothing kept; the next run asks again.
  }
  return facts;
}
