/**
 * The words after the first `--` of the command line. Commander merges them into the operands,
 * but `ssh [NODE] -- COMMAND` must know whether NODE came before the `--` or is the command.
 */
let rawArgv: readonly string[] = [];

export function rememberArgv(argv: readonly string[]): void {
  rawArgv = argv;
}

export function wordsAfterDoubleDash(): string[] | undefined {
  const at = rawArgv.indexOf("--");
  return at < 0 ? undefined : rawArgv.slice(at + 1);
}
