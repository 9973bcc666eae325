/**
 * The import statements of a Python source file, found by a small single-pass tokenizer instead
 * of running Python: strings (prefixed, triple-quoted, f-strings), comments, brackets and
 * continuations are understood, so an `import` inside a docstring is not one and a parenthesised
 * `from x import (a,\n b)` is. It never throws: a file Python cannot parse still yields the imports
 * it can see, and every character is looked at a bounded number of times.
 */

export interface PythonImport {
  /** Dotted module name; "" for `from . import x`. */
  module: string;
  /** Leading dots of a relative import; 0 for absolute. */
  level: number;
  /** Names after `from ... import` (aliases dropped, `*` kept); empty for `import a.b`. */
  names: string[];
  /** 1-based line where the statement starts. */
  line: number;
  /**
   * Set when the statement sits in the body of a `try` whose handler catches ImportError,
   * ModuleNotFoundError, Exception or BaseException (or everything): the file runs without it.
   */
  optional?: true;
}

/** `at` is the token's offset in the source: the column of a statement's first token gives its block. */
type Token =
  | { kind: "name"; text: string; line: number; at: number }
  /** Punctuation the import grammar needs; anything else is "other", any string literal is "str". */
  | { kind: "op"; text: "." | "," | "(" | ")" | "*" | ":" | "str" | "other"; line: number; at: number }
  | { kind: "end"; line: number };

const STRING_PREFIX = /^(?:[rRbBuUfFtT]|[rR][bBfFtT]|[bBfFtT][rR])$/;
const FORMATTED_PREFIX = /[fFtT]/;
const UNICODE_NAME_START = /[\p{L}\p{Nl}_]/u;
const UNICODE_NAME_CHAR = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]/u;
/** f-strings nest; past this depth their fields are skipped as plain text so garbage cannot blow the stack. */
const MAX_FSTRING_NESTING = 16;

function isAsciiNameChar(code: number, allowDigit: boolean): boolean {
  return (
    (code >= 97 && code <= 122) ||
    (code >= 65 && code <= 90) ||
    code === 95 ||
    (allowDigit && code >= 48 && code <= 57)
  );
}

/** Length (1 or 2 UTF-16 units) of the identifier character at `i`, or 0 if there is none. */
function nameCharLength(source: string, i: number, start: boolean): number {
  if (i >= source.length) return 0;
  const code = source.charCodeAt(i);
  if (code < 128) return isAsciiNameChar(code, !start) ? 1 : 0;
  const point = source.codePointAt(i)!;
  const char = String.fromCodePoint(point);
  return (start ? UNICODE_NAME_START : UNICODE_NAME_CHAR).test(char) ? char.length : 0;
}

interface Scan {
  index: number;
  line: number;
  /** The scan stopped at a newline or the end of input instead of its closing delimiter. */
  broken: boolean;
}

/**
 * Scans the string literal whose opening quote is at `start`. A single-quoted string that reaches
 * a newline ends there (Python would reject it; stopping limits the damage to one line).
 */
function skipString(source: string, start: number, line: number, formatted: boolean, nesting: number): Scan {
  const quote = source[start]!;
  const triple = source[start + 1] === quote && source[start + 2] === quote;
  let i = start + (triple ? 3 : 1);
  const n = source.length;
  while (i < n) {
    const c = source[i]!;
    if (c === "\\") {
      if (source[i + 1] === "\n") line++;
      i += 2;
    } else if (c === "\n") {
      if (!triple) return { index: i, line, broken: true };
      line++;
      i++;
    } else if (c === quote && (!triple || (source[i + 1] === quote && source[i + 2] === quote))) {
      return { index: i + (triple ? 3 : 1), line, broken: false };
    } else if (c === "{" && formatted && nesting < MAX_FSTRING_NESTING) {
      if (source[i + 1] === "{") {
        i += 2;
        continue;
      }
      const field = skipReplacementField(source, i + 1, line, triple, nesting + 1);
      i = field.index;
      line = field.line;
      if (field.broken) return field;
    } else i++;
  }
  return { index: n, line, broken: true };
}

/**
 * Scans an f-string `{...}` field from just after its `{`. The expression may hold strings in any
 * quote (Python 3.12 allows reusing the outer one), brackets, and a `:` format spec with fields of
 * its own; quotes in the format spec are literal fill characters.
 */
function skipReplacementField(
  source: string,
  start: number,
  line: number,
  triple: boolean,
  nesting: number,
): Scan {
  let i = start;
  const n = source.length;
  let depth = 0;
  let inFormatSpec = false;
  while (i < n) {
    const c = source[i]!;
    if (c === "\n") {
      if (!triple) return { index: i, line, broken: true };
      line++;
      i++;
    } else if (c === "}") {
      if (depth === 0) return { index: i + 1, line, broken: false };
      depth--;
      i++;
    } else if (inFormatSpec) {
      if (c === "{" && nesting < MAX_FSTRING_NESTING) {
        const field = skipReplacementField(source, i + 1, line, triple, nesting + 1);
        if (field.broken) return field;
        i = field.index;
        line = field.line;
      } else i++;
    } else if (c === "'" || c === '"') {
      const nested = skipString(source, i, line, FORMATTED_PREFIX.test(prefixBefore(source, i)), nesting);
      if (nested.broken) return nested;
      i = nested.index;
      line = nested.line;
    } else {
      if (c === "(" || c === "[" || c === "{") depth++;
      else if ((c === ")" || c === "]") && depth > 0) depth--;
      else if (c === ":" && depth === 0) inFormatSpec = true;
      i++;
    }
  }
  return { index: n, line, broken: true };
}

/** The string prefix (`rb`, `f`, ...) written just before the quote at `quoteIndex`, if any. */
function prefixBefore(source: string, quoteIndex: number): string {
  let start = quoteIndex;
  while (start > quoteIndex - 2 && start > 0 && /[rRbBuUfFtT]/.test(source[start - 1]!)) start--;
  const prefix = source.slice(start, quoteIndex);
  if (start > 0 && nameCharLength(source, start - 1, false) > 0) return "";
  return STRING_PREFIX.test(prefix) ? prefix : "";
}

/**
 * Tokens of the logical lines: `end` closes each one (a newline outside brackets, or `;`). Only
 * what the import grammar needs is kept; numbers and operators become "other".
 */
function* tokenize(source: string): Generator<Token> {
  const n = source.length;
  let i = 0;
  let line = 1;
  let depth = 0;
  let atLineStart = true;
  let previous: Token | undefined;
  while (i < n) {
    const c = source[i]!;
    if (c === "\n") {
      if (depth === 0) yield { kind: "end", line };
      line++;
      i++;
      atLineStart = true;
      continue;
    }
    if (c === " " || c === "\t" || c === "\f") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < n && source[i] !== "\n") i++;
      continue;
    }
    if (c === "\\" && source[i + 1] === "\n") {
      // An explicit continuation: the logical line goes on.
      i += 2;
      line++;
      continue;
    }
    let token: Token;
    const at = i;
    const nameLength = nameCharLength(source, i, true);
    if (c === '"' || c === "'") {
      const end = skipString(source, i, line, false, 0);
      token = { kind: "op", text: "str", line, at };
      i = end.index;
      line = end.line;
    } else if (nameLength > 0) {
      const start = i;
      i += nameLength;
      for (let more = nameCharLength(source, i, false); more > 0; more = nameCharLength(source, i, false)) {
        i += more;
      }
      const text = source.slice(start, i);
      if ((source[i] === '"' || source[i] === "'") && STRING_PREFIX.test(text)) {
        const end = skipString(source, i, line, FORMATTED_PREFIX.test(text), 0);
        token = { kind: "op", text: "str", line, at };
        i = end.index;
        line = end.line;
      } else {
        token = { kind: "name", text, line, at };
        // `import` can never sit inside brackets, nor `from` except after `yield`: seeing one open a
        // line there means a bracket was left unclosed, so recover rather than lose the rest of the file.
        const keywordInBrackets =
          text === "import" || (text === "from" && !(previous?.kind === "name" && previous.text === "yield"));
        if (depth > 0 && atLineStart && keywordInBrackets) {
          depth = 0;
          yield { kind: "end", line };
        }
      }
    } else {
      i++;
      if (c === "(" || c === "[" || c === "{") depth++;
      else if ((c === ")" || c === "]" || c === "}") && depth > 0) depth--;
      if (c === ";" && depth === 0) {
        yield { kind: "end", line };
        atLineStart = false;
        previous = undefined;
        continue;
      }
      const kept =
        c === "." || c === "," || c === "(" || c === ")" || c === "*" || (c === ":" && depth === 0);
      token = { kind: "op", text: kept ? c : "other", line, at };
    }
    atLineStart = false;
    previous = token;
    yield token;
  }
  yield { kind: "end", line };
}

/** Statements that may be followed, after their colon, by a simple statement on the same line. */
const COMPOUND_KEYWORDS = new Set([
  "if",
  "elif",
  "else",
  "try",
  "except",
  "finally",
  "with",
  "for",
  "while",
  "def",
  "class",
  "async",
  "match",
  "case",
]);

/** Exceptions whose handler makes the imports of its `try` body optional (a bare `except:` does too). */
const IMPORT_FAILURE_HANDLERS = new Set(["ImportError", "ModuleNotFoundError", "Exception", "BaseException"]);

/**
 * The indentation of the statement whose first token is at `at`, tabs to the next multiple of 8
 * as Python counts them; Infinity when something precedes it on its line (`x = 1; import y`,
 * `try: import y`): such a statement is inside whatever block the line's first one is in. Only
 * the whitespace before the token is looked at, so a long line costs no more than a short one.
 */
function indentationOf(source: string, at: number): number {
  let start = at;
  while (start > 0 && (source[start - 1] === " " || source[start - 1] === "\t" || source[start - 1] === "\f"))
    start--;
  if (start > 0 && source[start - 1] !== "\n") return Number.POSITIVE_INFINITY;
  let col = 0;
  for (let i = start; i < at; i++) col = source[i] === "\t" ? (Math.floor(col / 8) + 1) * 8 : col + 1;
  return col;
}

/**
 * An open `try` statement: its column, which clause the lines below it belong to, and the
 * imports of its body, made optional once a handler is seen to catch import failures.
 */
interface TryBlock {
  column: number;
  clause: "body" | "handler" | "other";
  imports: PythonImport[];
  guarded: boolean;
}

export function scanImports(source: string): PythonImport[] {
  // Python's universal newlines; a single linear regex pass.
  const text = (source.charCodeAt(0) === 0xfeff ? source.slice(1) : source).replace(/\r\n?/g, "\n");
  const found: PythonImport[] = [];
  const tries: TryBlock[] = [];
  // Only statements that start with `import` or `from` are kept, so a huge literal costs no memory.
  let importStatement: Token[] | undefined;
  // The exception names of an `except` clause's header, until its colon.
  let handlerNames: string[] | undefined;
  let afterAs = false;
  let started = false;
  let compoundHeader = false;
  const finishImport = () => {
    if (!importStatement) return;
    const before = found.length;
    parseImportStatement(importStatement, found);
    const body = tries.filter((t) => t.clause === "body");
    for (const imp of found.slice(before)) for (const t of body) t.imports.push(imp);
    importStatement = undefined;
  };
  const finishHandler = () => {
    const block = tries.at(-1);
    if (handlerNames && block) {
      if (handlerNames.length === 0 || handlerNames.some((n) => IMPORT_FAILURE_HANDLERS.has(n)))
        block.guarded = true;
    }
    handlerNames = undefined;
  };
  const closeTry = (block: TryBlock) => {
    if (block.guarded) for (const imp of block.imports) imp.optional = true;
  };
  /** A statement begins at `column`: close the `try` blocks it lies outside of, and follow clauses. */
  const statementStarts = (token: Token & { kind: "name" | "op" }) => {
    const column = indentationOf(text, token.at);
    const keyword = token.kind === "name" ? token.text : "";
    while (tries.length > 0) {
      const block = tries.at(-1)!;
      if (column > block.column) break;
      if (column === block.column && (keyword === "except" || keyword === "else" || keyword === "finally")) {
        block.clause = keyword === "except" ? "handler" : "other";
        if (keyword === "except") {
          handlerNames = [];
          afterAs = false;
        }
        return;
      }
      closeTry(tries.pop()!);
    }
    if (keyword === "try") tries.push({ column, clause: "body", imports: [], guarded: false });
  };
  for (const token of tokenize(text)) {
    if (token.kind === "end") {
      finishImport();
      finishHandler();
      started = false;
    } else if (!started) {
      started = true;
      statementStarts(token);
      const keyword = token.kind === "name" && (token.text === "import" || token.text === "from");
      importStatement = keyword ? [token] : undefined;
      compoundHeader = token.kind === "name" && COMPOUND_KEYWORDS.has(token.text);
    } else if (importStatement) {
      importStatement.push(token);
    } else if (compoundHeader && token.kind === "op" && token.text === ":") {
      // `if TYPE_CHECKING: import x`: the header's colon starts a new simple statement.
      finishHandler();
      started = false;
    } else if (handlerNames) {
      // `except (ImportError, OSError) as e`: the last part of each dotted name, up to `as`.
      if (token.kind === "name" && token.text === "as") afterAs = true;
      else if (token.kind === "name" && !afterAs) handlerNames.push(token.text);
      else if (token.kind === "op" && token.text === ".") handlerNames.pop();
    }
  }
  finishImport();
  for (const block of tries) closeTry(block);
  return found;
}

function isName(token: Token | undefined, text?: string): token is Token & { kind: "name" } {
  return token?.kind === "name" && (text === undefined || token.text === text);
}

function isOp(token: Token | undefined, text: string): boolean {
  return token?.kind === "op" && token.text === text;
}

function dottedName(tokens: Token[], at: number): { name: string; next: number } {
  const parts: string[] = [];
  let i = at;
  for (let token = tokens[i]; isName(token); token = tokens[i]) {
    parts.push(token.text);
    i++;
    if (isOp(tokens[i], ".") && isName(tokens[i + 1])) i++;
    else break;
  }
  return { name: parts.join("."), next: i };
}

function parseImportStatement(tokens: Token[], out: PythonImport[]): void {
  const line = tokens[0]!.line;
  if (isName(tokens[0], "import")) {
    let i = 1;
    while (i < tokens.length) {
      const { name, next } = dottedName(tokens, i);
      if (!name) return;
      out.push({ module: name, level: 0, names: [], line });
      i = next;
      if (isName(tokens[i], "as")) i += 2;
      if (!isOp(tokens[i], ",")) return;
      i++;
    }
    return;
  }
  let i = 1;
  let level = 0;
  while (isOp(tokens[i], ".")) {
    level++;
    i++;
  }
  const { name, next } = isName(tokens[i], "import") ? { name: "", next: i } : dottedName(tokens, i);
  i = next;
  if (!isName(tokens[i], "import") || (!name && level === 0)) return;
  i++;
  const names: string[] = [];
  for (let token = tokens[i]; token !== undefined; token = tokens[i]) {
    if (isOp(token, "(") || isOp(token, ")") || isOp(token, ",")) i++;
    else if (isOp(token, "*")) {
      names.push("*");
      i++;
    } else if (isName(token)) {
      names.push(token.text);
      i++;
      if (isName(tokens[i], "as")) i += 2;
    } else break;
  }
  out.push({ module: name, level, names, line });
}

/** The top-level package an absolute import loads first; undefined for relative imports. */
export function topLevelName(imp: PythonImport): string | undefined {
  if (imp.level > 0) return undefined;
  return imp.module.split(".")[0] || undefined;
}
