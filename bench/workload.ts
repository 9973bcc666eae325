import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Deterministic project trees shaped like real workflows: `workflow/` and `util/sort/quick.py`
 * at the root, many packages, and what must never be shipped (.git, __pycache__, a nested venv,
 * large data files), so every tool is given the same realistic job.
 */

export type WorkloadSize = "small" | "medium" | "large";

export const WORKLOADS: Record<WorkloadSize, { modules: number; moduleBytes: number; packages: number }> = {
  small: { modules: 50, moduleBytes: 2_000, packages: 5 },
  medium: { modules: 1_000, moduleBytes: 10_000, packages: 50 },
  large: { modules: 10_000, moduleBytes: 8_000, packages: 200 },
};

/** mulberry32: small, fast and the same everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  "value",
  "result",
  "items",
  "count",
  "index",
  "record",
  "sample",
  "matrix",
  "score",
  "total",
  "batch",
  "window",
  "reads",
  "genome",
  "align",
];

function pythonModule(random: () => number, bytes: number, imports: string[]): string {
  const lines = [
    '"""Generated module for the sync-cluster benchmark."""',
    ...imports.map((m) => `import ${m}`),
    "",
  ];
  let size = lines.join("\n").length;
  let n = 0;
  while (size < bytes) {
    const a = WORDS[Math.floor(random() * WORDS.length)]!;
    // Never the same word twice: `def f(value, value=1)` is a syntax error, which push refuses.
    const ai = WORDS.indexOf(a);
    const b = WORDS[(ai + 1 + Math.floor(random() * (WORDS.length - 1))) % WORDS.length]!;
    const k = Math.floor(random() * 1e6);
    const fn = `\n\ndef ${a}_${b}_${n}(${a}, ${b}=${k}):\n    """Combine ${a} and ${b}."""\n    ${a}_${b} = [${a} * i + ${b} for i in range(${k % 97})]\n    return sum(${a}_${b}) % ${k + 1}\n`;
    lines.push(fn);
    size += fn.length;
    n++;
  }
  return `${lines.join("\n")}\n`;
}

export interface Workload {
  root: string;
  size: WorkloadSize;
  /** Paths (relative to root) of Python modules, in a fixed order, for incremental edits. */
  modules: string[];
}

export async function generateWorkload(root: string, size: WorkloadSize, seed = 1): Promise<Workload> {
  const spec = WORKLOADS[size];
  const random = prng(seed);
  await rm(root, { recursive: true, force: true });
  const modules: string[] = [];
  const write = async (rel: string, text: string | Buffer) => {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), text);
  };
  await write("util/__init__.py", "");
  await write("util/sort/__init__.py", "");
  await write("util/sort/quick.py", "def quick_sort(v):\n    return sorted(v)\n");
  await write("workflow/__init__.py", "");
  await write(
    "workflow/main.py",
    "from util.sort.quick import quick_sort\n\n\ndef main():\n    return quick_sort([3, 1, 2])\n",
  );
  const perPackage = Math.ceil(spec.modules / spec.packages);
  let written = 0;
  for (let p = 0; p < spec.packages && written < spec.modules; p++) {
    const pkg = `pkg${String(p).padStart(3, "0")}`;
    await write(`${pkg}/__init__.py`, "");
    for (let m = 0; m < perPackage && written < spec.modules; m++, written++) {
      const rel = `${pkg}/mod${String(m).padStart(3, "0")}.py`;
      const imports = m > 0 ? [`${pkg}.mod${String(m - 1).padStart(3, "0")}`] : ["util.sort.quick"];
      await write(rel, pythonModule(random, spec.moduleBytes, imports));
      modules.push(rel);
    }
  }
  // Never shipped: version control, bytecode, a virtualenv inside the project, data.
  for (let i = 0; i < 20; i++) await write(`.git/objects/${i}/obj`, Buffer.alloc(50_000, i));
  await write("pkg000/__pycache__/mod000.cpython-311.pyc", Buffer.alloc(20_000, 1));
  await write("venv/pyvenv.cfg", "include-system-site-packages = true\n");
  await write("venv/lib/python3.11/site-packages/big/__init__.py", "x = 1\n".repeat(10_000));
  await write("data/reads.fastq", Buffer.alloc(size === "small" ? 1_000_000 : 20_000_000, 65));
  return { root, size, modules };
}
