import { fileURLToPath } from "node:url";

/**
 * Python files ship as source beside the TypeScript (the compiler does not copy them), so they
 * are found from the compiled module's location: dist/src/python-source.js -> src/.
 */
export function pythonSourcePath(relativeToSrc: string): string {
  return fileURLToPath(new URL(`../../src/${relativeToSrc}`, import.meta.url));
}
