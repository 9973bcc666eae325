import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type PythonImport, scanImports, topLevelName } from "../../src/core/python/python-imports.js";

const brief = (source: string) => scanImports(source).map((i) => [i.module, i.level, i.names, i.line]);

describe("scanImports", () => {
  test("plain, dotted, aliased and multiple imports", () => {
    assert.deepEqual(brief("import os\nimport a.b.c as d, e\n"), [
      ["os", 0, [], 1],
      ["a.b.c", 0, [], 2],
      ["e", 0, [], 2],
    ]);
  });

  test("from-imports: relative, star, aliases, parenthesised over lines, backslash continuation", () => {
    const src =
      "from . import a\nfrom ..pkg.mod import (\n    x as y,\n    z,\n)\nfrom m import *\nfrom q \\\n  import r\n";
    assert.deepEqual(brief(src), [
      ["", 1, ["a"], 1],
      ["pkg.mod", 2, ["x", "z"], 2],
      ["m", 0, ["*"], 6],
      ["q", 0, ["r"], 7],
    ]);
  });

  test("indented, in try/except and TYPE_CHECKING blocks, after a colon, and after semicolons", () => {
    const src = [
      "try:",
      "    import fast",
      "except ImportError:",
      "    import slow",
      "if TYPE_CHECKING: from typing_only import T",
      "def f():",
      "    import inner; import other",
      "x = 1; import last",
    ].join("\n");
    assert.deepEqual(
      scanImports(src).map((i) => i.module),
      ["fast", "slow", "typing_only", "inner", "other", "last"],
    );
  });

  test("imports in a try whose handler catches import failures are optional; the rest are not", () => {
    const src = [
      "import always",
      "try:",
      "    import azure",
      "    if x:",
      "        from deep.mod import y",
      "except (OSError, builtins.ImportError) as e:",
      "    import fallback",
      "else:",
      "    import in_else",
      "try: import one_line",
      "except: pass",
      "try:",
      "    import value_error_only",
      "except ValueError:",
      "    pass",
      "def f():",
      "\ttry:",
      "\t\timport tabbed",
      "\texcept ModuleNotFoundError:",
      "\t\ttabbed = None",
      "\timport after_try",
      "try:",
      "    import with_finally",
      "finally:",
      "    pass",
      "try:",
      "    import broad",
      "except Exception:",
      "    pass",
      "x = 1; import last",
    ].join("\n");
    assert.deepEqual(
      scanImports(src).map((i) => `${i.module}${i.optional ? "?" : ""}`),
      [
        "always",
        "azure?",
        "deep.mod?",
        "fallback",
        "in_else",
        "one_line?",
        "value_error_only",
        "tabbed?",
        "after_try",
        "with_finally",
        "broad?",
        "last",
      ],
    );
  });

  test("strings, docstrings, comments and f-strings are not imports", () => {
    const src = [
      '"""',
      "import not_a_module",
      '"""',
      "# import commented",
      "s = 'import quoted'",
      'f = f"{x} import y"',
      "b = rb'''",
      "from nowhere import x",
      "'''",
      "yield_from = 1",
      "raise E from err",
      "obj.import_ = 2",
      "import real",
    ].join("\n");
    assert.deepEqual(brief(src), [["real", 0, [], 13]]);
  });

  test("f-strings: nested quotes (Python 3.12), format specs, doubled braces, nesting", () => {
    const src = [
      'a = f"{d["k"]} import no"',
      "b = f'{x:'^10} import no'",
      'c = f"{{ import no }}" + rf"""',
      '{f"{y!r:>{width}}"}',
      'import no"""',
      "e = F'{\"}\"}'",
      "import real",
    ].join("\n");
    assert.deepEqual(brief(src), [["real", 0, [], 7]]);
  });

  test("yield from, raise from, match/case and keywords inside expressions are not imports", () => {
    const src = [
      "def g():",
      "    yield from other",
      "    x = (yield",
      "         from other)",
      "    raise E from None",
      "match cmd:",
      "    case 1: import in_case",
      "    case _: from .fallback import f",
    ].join("\n");
    assert.deepEqual(brief(src), [
      ["in_case", 0, [], 7],
      ["fallback", 1, ["f"], 8],
    ]);
  });

  test("an unclosed bracket does not hide the imports after it", () => {
    assert.deepEqual(brief("x = foo(\nimport a\nfrom b import c\n"), [
      ["a", 0, [], 2],
      ["b", 0, ["c"], 3],
    ]);
  });

  test("non-ASCII identifiers and lone CR line ends", () => {
    assert.deepEqual(brief("import café.ñ\rfrom 日本 import 語 as x\r"), [
      ["café.ñ", 0, [], 1],
      ["日本", 0, ["語"], 2],
    ]);
  });

  test("CRLF line ends and a byte-order mark", () => {
    assert.deepEqual(brief("\ufeffimport a\r\nfrom b import c\r\n"), [
      ["a", 0, [], 1],
      ["b", 0, ["c"], 2],
    ]);
  });

  test("unterminated strings and brackets do not throw", () => {
    assert.deepEqual(brief("x = 'oops\nimport after\n"), [["after", 0, [], 2]]);
    assert.doesNotThrow(() => scanImports('"""never closed\nimport x'));
    assert.doesNotThrow(() => scanImports("f(\nimport x"));
  });

  test("never throws, whatever the input", () => {
    const alphabet = fc.constantFrom(
      "import ",
      "from ",
      ".",
      ",",
      "(",
      ")",
      "\\",
      "\n",
      "\r",
      "'",
      '"',
      "#",
      "a",
      " as ",
      ";",
      ":",
      "*",
      "\ufeff",
      "{",
      "}",
      'f"',
      "'''",
      "rb",
      "yield ",
      "é",
    );
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 60 }).map((xs) => xs.join("")),
        (src) => {
          scanImports(src);
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (src) => void scanImports(src)),
      { numRuns: 500 },
    );
  });

  test("finds exactly the generated statements among decoys, wherever they sit", () => {
    const identifier = fc.constantFrom("os", "a", "pkg_1", "imports", "from_", "as_", "café", "Yield");
    const dotted = fc.array(identifier, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("."));
    const alias = fc.option(identifier, { nil: undefined }).map((name) => (name ? ` as ${name}` : ""));
    const plainImport = fc.array(fc.tuple(dotted, alias), { minLength: 1, maxLength: 3 }).map((items) => ({
      text: "import " + items.map(([name, as]) => name + as).join(", "),
      expected: items.map(([name]) => ({ module: name, level: 0, names: [] as string[] })),
    }));
    const importedNames: fc.Arbitrary<[string, string][]> = fc.oneof(
      fc.constant<[string, string][]>([["*", ""]]),
      fc.array(fc.tuple(identifier, alias), { minLength: 1, maxLength: 3 }),
    );
    const fromImport = fc
      .record({
        level: fc.nat({ max: 3 }),
        module: fc.option(dotted, { nil: "" }),
        names: importedNames,
        layout: fc.constantFrom("flat", "parens", "continuation"),
      })
      .filter(({ level, module }) => level > 0 || module !== "")
      .map(({ level, module, names, layout }) => {
        const list = names.map(([name, as]) => name + as);
        const tail =
          layout === "parens" && list[0] !== "*"
            ? `import (\n    ${list.join(",\n    ")},\n)`
            : layout === "continuation"
              ? `\\\n    import ${list.join(", ")}`
              : `import ${list.join(", ")}`;
        return {
          text: `from ${".".repeat(level)}${module} ${tail}`,
          expected: [{ module, level, names: names.map(([name]) => name) }],
        };
      });
    const decoy = fc.constantFrom(
      'x = "import fake"',
      "'''\nimport fake\n'''",
      "# import fake",
      "s = f\"{d['import']} import x\"",
      "def g():\n    yield from fake",
      "raise E from fake",
      "obj.import_ = 1",
      'b = Rb"from fake import x"',
    );
    type Piece = { statement: { text: string; expected: Omit<PythonImport, "line">[] }; indent: string };
    const piece: fc.Arbitrary<Piece> = fc.oneof(
      fc.record({ statement: fc.oneof(plainImport, fromImport), indent: fc.constantFrom("", "    ", "\t") }),
      decoy.map((text) => ({ statement: { text, expected: [] }, indent: "" })),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), fc.constantFrom("\n", "\r\n"), (pieces, eol) => {
        let source = "";
        const expected: PythonImport[] = [];
        for (const { statement, indent } of pieces) {
          const line = source.split("\n").length;
          expected.push(...statement.expected.map((e) => ({ ...e, line })));
          source += indent + statement.text + "\n";
        }
        assert.deepEqual(scanImports(source.replaceAll("\n", eol)), expected);
      }),
      { numRuns: 500 },
    );
  });

  test("a megabyte of source is scanned in one pass", () => {
    const big = "import a\n'''doc'''\nx = (1,\n 2)\n".repeat(40_000);
    assert.equal(scanImports(big).length, 40_000);
  });

  test("a megabyte of pathological input (deep brackets, nested f-strings, stray quotes) is scanned too", () => {
    const megabyte = 1 << 20;
    for (const unit of ["(", 'f"{', "f'{f\"{", "'", '"""', "\\", "if a: ", "(\nfrom ", "é日🙂"]) {
      assert.doesNotThrow(() => scanImports(unit.repeat(Math.ceil(megabyte / unit.length))), unit);
    }
  });
});

test("topLevelName", () => {
  assert.equal(topLevelName({ module: "a.b", level: 0, names: [], line: 1 }), "a");
  assert.equal(topLevelName({ module: "a.b", level: 1, names: [], line: 1 }), undefined);
});
