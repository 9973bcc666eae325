/**
 * ClusterShell's node sets, as `nodeset -e` expands them and `nodeset -f` folds them:
 * `node[01-04]`, `node[1,3,7-9]`, `node[1-9/2]`, `r[1-2]n[1-3]`, joined by `,` (union), `!`
 * (difference), `&` (intersection) and `^` (symmetric difference), applied left to right.
 * Parsed here, not by `nodeset`, so that plain sets need no Python and a mistake is shown where
 * it is. Groups (`@compute`, `@source:name`) live in ClusterShell's configuration: their
 * members are looked up at the edge (inventory/node-groups.ts) and passed in.
 */

/** More names than any cluster has: a typo like `node[1-1000000]` stops here. */
export const NODE_SET_LIMIT = 100_000;

/** The members of each group, by the group as written (`@compute`, `@slurm:gpu`). */
export type GroupMembers = ReadonlyMap<string, readonly string[]>;

export type NodeSetOperator = "," | "!" | "&" | "^";

/** One operand of a node set and the operator before it (`,` for the first); column is 1-based. */
export interface NodeSetOperand {
  operator: NodeSetOperator;
  text: string;
  column: number;
}

/** What is wrong with a node set, and at which character (1-based) of its text. */
export class NodeSetError extends Error {
  constructor(
    readonly text: string,
    readonly column: number,
    readonly problem: string,
  ) {
    super(`in \`${excerpt(text, column)}\` at character ${column}: ${problem}`);
    this.name = "NodeSetError";
  }
}

function excerpt(text: string, column: number): string {
  if (text.length <= 80) return text;
  const from = Math.max(0, column - 40);
  return `${from > 0 ? "..." : ""}${text.slice(from, from + 80)}${from + 80 < text.length ? "..." : ""}`;
}

const OPERATORS: ReadonlySet<string> = new Set([",", "!", "&", "^"]);
/** What each operator does to what comes before it, said when that is missing. */
const OPERATOR_MEANINGS: Record<NodeSetOperator, string> = {
  ",": "adds the nodes after it to those before it",
  "!": "takes the nodes after it away from those before it",
  "&": "keeps the nodes on both sides of it",
  "^": "keeps the nodes on only one side of it",
};

/**
 * The operands of a node set, split at the operators outside brackets (inside, a comma separates
 * numbers). Brackets must pair up, one level deep, and no operand may be empty.
 */
export function splitNodeSet(text: string): NodeSetOperand[] {
  const fail = (index: number, problem: string): never => {
    throw new NodeSetError(text, index + 1, problem);
  };
  if (text.trim() === "") fail(0, "the node set is empty");
  const operands: NodeSetOperand[] = [];
  let operator: NodeSetOperator = ",";
  let operatorAt = -1;
  let start = 0;
  let open = -1;
  const take = (end: number) => {
    const raw = text.slice(start, end);
    const operand = raw.trim();
    if (operand === "") {
      if (operatorAt < 0) {
        const next = text[end] as NodeSetOperator;
        fail(end, `nothing before \`${next}\`, which ${OPERATOR_MEANINGS[next]}`);
      }
      fail(operatorAt, `nothing after \`${operator}\``);
    }
    operands.push({ operator, text: operand, column: start + raw.length - raw.trimStart().length + 1 });
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "[") {
      if (open >= 0) fail(i, "a bracket opens inside another one");
      open = i;
    } else if (c === "]") {
      if (open < 0) fail(i, "this `]` closes no bracket");
      open = -1;
    } else if (open < 0 && OPERATORS.has(c)) {
      take(i);
      operator = c as NodeSetOperator;
      operatorAt = i;
      start = i + 1;
    }
  }
  if (open >= 0) fail(open, "this bracket is never closed");
  take(text.length);
  return operands;
}

/** A number written with a leading zero (`08`, `00`) is zero-padded; `0` alone is not. */
function isPadded(index: string): boolean {
  return index.length > 1 && index[0] === "0";
}

/** The numbers in one pair of brackets, as written (`08-10` gives 08, 09, 10); `column` is the `[`'s. */
function bracketIndexes(
  full: string,
  content: string,
  column: number,
  digitsBefore: string,
): { indexes: string[]; stepped: boolean } {
  const fail = (at: number, problem: string): never => {
    throw new NodeSetError(full, at, problem);
  };
  if (content.trim() === "") fail(column, "the brackets are empty: put numbers in them, as in `node[1-4]`");
  const indexes = new Set<string>();
  let stepped = false;
  let offset = 0;
  for (const piece of content.split(",")) {
    const at = column + 1 + offset + piece.length - piece.trimStart().length;
    offset += piece.length + 1;
    const range = piece.trim();
    if (range === "") fail(at, "nothing between these commas");
    const m = /^(\d+)(?:\s*-\s*(\d+))?(?:\s*\/\s*(\d+))?$/.exec(range);
    if (!m) fail(at, rangeProblem(range));
    const [, first, last, stepText] = m!;
    if (last === undefined) {
      if (stepText !== undefined) fail(at, `a step needs a range, as in \`1-9/2\`, not \`${range}\``);
      indexes.add(first!);
      continue;
    }
    stepped ||= stepText !== undefined;
    const step = BigInt(stepText ?? "1");
    if (step < 1n) fail(at, `the step of \`${range}\` must be 1 or more`);
    // As ClusterShell reads them: a leading 0 pads every number to the width of both ends.
    const lastPadded = isPadded(last) && /[1-9]/.test(last);
    if ((isPadded(first!) || lastPadded) && first!.length !== last.length) {
      const width = Math.max(first!.length, last.length);
      fail(
        at,
        `\`${range}\` mixes widths: with zero padding both ends have as many digits, as in \`${first!.padStart(width, "0")}-${last.padStart(width, "0")}\``,
      );
    }
    const from = BigInt(first!);
    const to = BigInt(last);
    if (from > to) fail(at, `the range \`${range}\` runs backwards; write \`${last}-${first}\``);
    const count = (to - from) / step + 1n;
    if (count > BigInt(NODE_SET_LIMIT)) fail(at, tooMany(count, range));
    const width = isPadded(first!) ? first!.length : 0;
    for (let n = from; n <= to; n += step) indexes.add(n.toString().padStart(width, "0"));
    if (indexes.size > NODE_SET_LIMIT) fail(column, tooMany(indexes.size, `[${content}]`));
  }
  // ClusterShell joins digits before a bracket to its numbers as a range: `n1[8-10]` is n18 to
  // n110, and `n0[8-10]` an error. Refused where that differs from writing the digits inside.
  if (digitsBefore !== "")
    for (const index of indexes) {
      const next = `1${"0".repeat(index.length)}`;
      if (/^9+$/.test(index) && indexes.has(next))
        fail(
          column,
          `the digits \`${digitsBefore}\` before the bracket join its numbers, and \`${index}\` and \`${next}\` differ in width, which ClusterShell reads its own way: write the whole numbers inside the brackets`,
        );
    }
  return { indexes: [...indexes], stepped };
}

function rangeProblem(range: string): string {
  if (range.startsWith("-")) return `\`${range}\` is negative: node numbers are 0 or more`;
  if (range.includes(":"))
    return `\`${range}\` is no range of numbers (an IPv6 address is written without brackets)`;
  return `\`${range}\` is not a number (\`7\`), a range (\`1-4\`) or a range with a step (\`1-9/2\`)`;
}

function tooMany(count: bigint | number, what: string): string {
  return `\`${what}\` stands for ${count.toLocaleString("en-US")} names, more than the limit of ${NODE_SET_LIMIT.toLocaleString("en-US")}`;
}

/** Text outside brackets: what a host name may hold in a node set. */
function checkLiteral(full: string, literal: string, column: number): void {
  const bad = /[\s*?]/.exec(literal);
  if (!bad) return;
  throw new NodeSetError(
    full,
    column + bad.index,
    /\s/.test(bad[0])
      ? "a node name cannot contain spaces"
      : `\`${bad[0]}\` is a ClusterShell wildcard, which needs its list of every node: name the nodes instead`,
  );
}

/**
 * The parts of one operand, each a list of alternatives (a literal has one), in order: their
 * cartesian product is its names. `column` is the operand's first character.
 */
function patternParts(full: string, text: string, column: number): string[][] {
  const parts: string[][] = [];
  let i = 0;
  let steppedBefore = false;
  while (i < text.length) {
    const open = text.indexOf("[", i);
    const end = open < 0 ? text.length : open;
    const literal = text.slice(i, end);
    if (literal !== "") {
      checkLiteral(full, literal, column + i);
      if (steppedBefore && /^\d/.test(literal))
        throw new NodeSetError(
          full,
          column + i,
          "digits right after a range with a step are refused by ClusterShell: put them inside the brackets (`[1-5/2]0` is `[10-50/20]`)",
        );
      parts.push([literal]);
    } else if (i > 0) {
      throw new NodeSetError(
        full,
        column + i,
        "two brackets side by side are refused by ClusterShell: put text between them, or the numbers in one bracket (`[1-2][3-4]` is `[13-14,23-24]`)",
      );
    }
    if (open < 0) break;
    const close = text.indexOf("]", open);
    const { indexes, stepped } = bracketIndexes(
      full,
      text.slice(open + 1, close),
      column + open,
      /\d*$/.exec(literal)![0],
    );
    parts.push(indexes);
    steppedBefore = stepped;
    i = close + 1;
  }
  let count = 1;
  for (const part of parts) {
    count *= part.length;
    if (count > NODE_SET_LIMIT) throw new NodeSetError(full, column, tooMany(count, text));
  }
  return parts;
}

function product(parts: readonly (readonly string[])[]): string[] {
  let names = [""];
  for (const part of parts) names = names.flatMap((prefix) => part.map((p) => prefix + p));
  return names;
}

/** The groups an operand starting with `@` names: `@rack[1-2]` is `@rack1` and `@rack2`. */
function groupNames(full: string, text: string, column: number): string[] {
  const fail = (problem: string): never => {
    throw new NodeSetError(full, column, problem);
  };
  const body = text.slice(1);
  if (body.startsWith("@")) fail("`@@source` lists ClusterShell's group names, not nodes");
  const colon = body.indexOf(":");
  const source = colon < 0 ? "" : body.slice(0, colon);
  const name = body.slice(colon + 1);
  if (colon === 0) fail("no group source before `:` (write `@source:group`, or `@group`)");
  if (name === "") fail(`a group needs a name after \`@${colon < 0 ? "" : `${source}:`}\``);
  const prefix = colon < 0 ? "@" : `@${source}:`;
  if (source !== "") checkLiteral(full, source, column + 1);
  // `@*` is every node of the source, as ClusterShell's configuration lists them.
  if (name === "*") return [text];
  return product(patternParts(full, name, column + prefix.length)).map((n) => prefix + n);
}

/** The groups a node set names, each once, as `nodeset` is asked about them. */
export function groupReferences(text: string): string[] {
  const groups = new Set<string>();
  for (const operand of splitNodeSet(text))
    if (operand.text.startsWith("@"))
      for (const group of groupNames(text, operand.text, operand.column)) groups.add(group);
  return [...groups];
}

function operandNames(full: string, operand: NodeSetOperand, groups: GroupMembers): Iterable<string> {
  if (!operand.text.startsWith("@")) return product(patternParts(full, operand.text, operand.column));
  const names = new Set<string>();
  for (const group of groupNames(full, operand.text, operand.column)) {
    const members = groups.get(group);
    if (members === undefined)
      throw new NodeSetError(
        full,
        operand.column,
        `\`${group}\` is a ClusterShell group, and groups are not looked up here: name the nodes`,
      );
    for (const member of members) names.add(member);
  }
  return names;
}

/** One operator applied to what came before it and the next operand, as ClusterShell does. */
export function applyOperator<T>(
  left: ReadonlySet<T>,
  operator: NodeSetOperator,
  right: Iterable<T>,
): Set<T> {
  const other = new Set(right);
  if (operator === ",") return new Set([...left, ...other]);
  if (operator === "!") return new Set([...left].filter((n) => !other.has(n)));
  if (operator === "&") return new Set([...left].filter((n) => other.has(n)));
  return new Set([...[...left].filter((n) => !other.has(n)), ...[...other].filter((n) => !left.has(n))]);
}

/**
 * Every name of a node set, in ClusterShell's order (by the text around the numbers, then by
 * the numbers), each once. Throws NodeSetError.
 */
export function expandNodeSet(text: string, groups: GroupMembers = new Map()): string[] {
  let names = new Set<string>();
  for (const operand of splitNodeSet(text)) {
    names = applyOperator(names, operand.operator, operandNames(text, operand, groups));
    if (names.size > NODE_SET_LIMIT) throw new NodeSetError(text, operand.column, tooMany(names.size, text));
  }
  return sortNodeNames(names);
}

interface NameShape {
  /** The text around the numbers, `%s` where each was (ClusterShell's pattern). */
  pattern: string;
  /** The texts between the numbers, one more than there are numbers. */
  texts: string[];
  indexes: string[];
}

function shapeOf(name: string): NameShape {
  const texts = name.split(/\d+/);
  return { pattern: texts.join("%s"), texts, indexes: name.match(/\d+/g) ?? [] };
}

/** ClusterShell sorts numbers by length, then by digits: 9 before 10, 9 before 09. */
function compareIndexes(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.length !== y.length) return x.length - y.length;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function compareShapes(a: NameShape, b: NameShape): number {
  if (a.pattern !== b.pattern) return a.pattern < b.pattern ? -1 : 1;
  return compareIndexes(a.indexes, b.indexes);
}

/** Names in ClusterShell's order: node2 before node10. */
export function sortNodeNames(names: Iterable<string>): string[] {
  return [...names]
    .map((name) => ({ name, shape: shapeOf(name) }))
    .sort((a, b) => compareShapes(a.shape, b.shape) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((entry) => entry.name);
}

/** Runs of consecutive numbers of the same width, `1-3,5,08-10`, as ClusterShell writes them. */
function foldIndexes(indexes: readonly string[]): string {
  const sorted = [...new Set(indexes)].sort((a, b) => compareIndexes([a], [b]));
  const runs: string[] = [];
  let first = sorted[0]!;
  let last = first;
  const flush = () => runs.push(first === last ? first : `${first}-${last}`);
  for (const index of sorted.slice(1)) {
    const follows = BigInt(index) === BigInt(last) + 1n;
    // A padded run keeps its width (08-10); an unpadded one takes no padded number.
    const sameWidth = isPadded(first) ? index.length === first.length : !isPadded(index);
    if (follows && sameWidth) last = index;
    else {
      flush();
      first = index;
      last = index;
    }
  }
  flush();
  return runs.join(",");
}

/** Names of one pattern with n numbers, folded one axis at a time from the last. */
function foldVectors(
  texts: readonly string[],
  vectors: readonly string[][],
): { text: string; first: string[] }[] {
  type Item = { fixed: string[]; folded: string[]; first: string[] };
  let items: Item[] = vectors.map((v) => ({ fixed: v, folded: [], first: v }));
  for (let axis = texts.length - 2; axis >= 0; axis--) {
    const groups = new Map<string, Item[]>();
    for (const item of items) {
      const key = JSON.stringify([item.fixed.slice(0, axis), item.folded]);
      const group = groups.get(key);
      if (group) group.push(item);
      else groups.set(key, [item]);
    }
    items = [...groups.values()].map((group) => {
      const values = group.map((item) => item.fixed[axis]!);
      const folded = values.length > 1 ? `[${foldIndexes(values)}]` : values[0]!;
      const first = group.map((item) => item.first).sort(compareIndexes)[0]!;
      return { fixed: group[0]!.fixed.slice(0, axis), folded: [folded, ...group[0]!.folded], first };
    });
  }
  return items.map((item) => ({
    text: texts.map((t, i) => t + (item.folded[i] ?? "")).join(""),
    first: item.first,
  }));
}

/** Why a name cannot be written in a node set, or undefined. */
function unfoldable(name: string): string | undefined {
  if (name === "") return "an empty name";
  if (/[\s[\],!&^*?]/.test(name)) return "it holds a space or one of [ ] , ! & ^ * ?";
  if (name.startsWith("@")) return "it starts with @, which names a group";
  return undefined;
}

/**
 * The shortest node set ClusterShell writes for these names (`node[1-3,5]`), without steps, as
 * `nodeset -f` does. `expandNodeSet` of it gives the names back. Throws NodeSetError for a name
 * that a node set cannot hold.
 */
export function foldNodeSet(names: Iterable<string>): string {
  const byPattern = new Map<string, { shape: NameShape; vectors: string[][] }>();
  for (const name of new Set(names)) {
    const problem = unfoldable(name);
    if (problem) throw new NodeSetError(name, 1, `this name cannot be part of a node set: ${problem}`);
    const shape = shapeOf(name);
    // Keyed by the texts themselves: a name holding a literal `%s` is not a number's place.
    const key = JSON.stringify(shape.texts);
    const entry = byPattern.get(key);
    if (entry) entry.vectors.push(shape.indexes);
    else byPattern.set(key, { shape, vectors: [shape.indexes] });
  }
  const pieces: { pattern: string; first: string[]; text: string }[] = [];
  for (const { shape, vectors } of byPattern.values()) {
    if (shape.indexes.length === 0) pieces.push({ pattern: shape.pattern, first: [], text: shape.texts[0]! });
    else
      for (const piece of foldVectors(shape.texts, vectors))
        pieces.push({ pattern: shape.pattern, ...piece });
  }
  pieces.sort(
    (a, b) =>
      compareShapes(
        { pattern: a.pattern, texts: [], indexes: a.first },
        { pattern: b.pattern, texts: [], indexes: b.first },
      ) || (a.text < b.text ? -1 : 1),
  );
  return pieces.map((p) => p.text).join(",");
}

/** Names for a line of output: folded when that is shorter (`node[01-16]`), else as a list. */
export function foldedIfShorter(names: readonly string[], separator = ", "): string {
  const listed = names.join(separator);
  if (names.length < 2 || names.some((n) => unfoldable(n) !== undefined)) return listed;
  const folded = foldNodeSet(names);
  // Shorter for its brackets, not only for leaving out the spaces after the commas.
  return folded.length < names.join(",").length ? folded : listed;
}
