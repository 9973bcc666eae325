import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import {
  fingerprintSha256,
  hostKeyName,
  hostMatches,
  knownHostsLine,
  parseKnownHosts,
  verifyHostKey,
} from "../../src/core/ssh/known-hosts.js";

function makeKey(dir: string, name: string): { type: string; b64: string; file: string } {
  const file = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  const [type, b64] = readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/) as [string, string];
  return { type, b64, file };
}

describe("known_hosts", () => {
  const dir = mkdtempSync(join(tmpdir(), "sc-kh-"));
  const a = makeKey(dir, "a");
  const b = makeKey(dir, "b");
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("plain, [host]:port and hashed entries written by ssh-keygen -H: match, mismatch, unknown", () => {
    const file = join(dir, "known_hosts");
    writeFileSync(
      file,
      knownHostsLine("10.0.0.1", 22, a.type, a.b64) +
        "\n" +
        knownHostsLine("127.0.0.1", 2222, a.type, a.b64) +
        "\n" +
        `hashed.example ${b.type} ${b.b64}\n` +
        `${knownHostsLine("hashed.example", 2200, a.type, a.b64)}\n`,
    );
    execFileSync("ssh-keygen", ["-q", "-H", "-f", file], { stdio: "pipe" });
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes("hashed.example") && text.includes("|1|"), "ssh-keygen -H hashed the names");
    const entries = parseKnownHosts(text);
    assert.equal(entries.length, 4);
    assert.deepEqual(verifyHostKey(entries, "10.0.0.1", 22, a.type, a.b64), { kind: "match", line: 1 });
    assert.deepEqual(verifyHostKey(entries, "127.0.0.1", 2222, a.type, a.b64), { kind: "match", line: 2 });
    assert.deepEqual(verifyHostKey(entries, "127.0.0.1", 2223, a.type, a.b64), { kind: "unknown" });
    assert.deepEqual(verifyHostKey(entries, "127.0.0.1", 22, a.type, a.b64), { kind: "unknown" });
    assert.deepEqual(verifyHostKey(entries, "hashed.example", 22, b.type, b.b64), { kind: "match", line: 3 });
    assert.equal(verifyHostKey(entries, "HASHED.Example", 22, b.type, b.b64).kind, "match", "ssh lowercases");
    assert.deepEqual(verifyHostKey(entries, "hashed.example", 2200, a.type, a.b64), {
      kind: "match",
      line: 4,
    });
    assert.deepEqual(verifyHostKey(entries, "other.example", 22, b.type, b.b64), { kind: "unknown" });
    assert.deepEqual(verifyHostKey(entries, "127.0.0.1", 2222, b.type, b.b64), {
      kind: "mismatch",
      lines: [2],
      knownTypes: ["ssh-ed25519"],
    });
    assert.deepEqual(verifyHostKey(entries, "hashed.example", 22, a.type, a.b64), {
      kind: "mismatch",
      lines: [3],
      knownTypes: ["ssh-ed25519"],
    });
  });

  test("@revoked wins for the hosts it covers; @cert-authority is ignored", () => {
    const entries = parseKnownHosts(
      [
        knownHostsLine("n1", 22, a.type, a.b64),
        `@revoked n1,n2 ${a.type} ${a.b64}`,
        `@cert-authority * ${b.type} ${b.b64}`,
        knownHostsLine("n3", 22, a.type, a.b64),
      ].join("\n"),
    );
    assert.deepEqual(verifyHostKey(entries, "n1", 22, a.type, a.b64), { kind: "revoked", line: 2 });
    assert.deepEqual(verifyHostKey(entries, "n2", 22, a.type, a.b64), { kind: "revoked", line: 2 });
    assert.deepEqual(verifyHostKey(entries, "n3", 22, a.type, a.b64), { kind: "match", line: 4 });
    assert.deepEqual(verifyHostKey(entries, "n4", 22, b.type, b.b64), { kind: "unknown" });
  });

  test("a host known only by another key type is unknown for a new type, as in OpenSSH", () => {
    const entries = parseKnownHosts(`n1 ecdsa-sha2-nistp256 AAAAE2VjZHNh\nn1 ${a.type} ${a.b64}\n`);
    assert.deepEqual(verifyHostKey(entries, "n1", 22, "ssh-rsa", "AAAAB3NzaC1yc2E="), { kind: "unknown" });
    assert.deepEqual(verifyHostKey(entries, "n1", 22, b.type, b.b64), {
      kind: "mismatch",
      lines: [2],
      knownTypes: ["ecdsa-sha2-nistp256", "ssh-ed25519"],
    });
  });

  test("wildcards, negation, case, comments and malformed lines", () => {
    const entries = parseKnownHosts(
      [
        "# comment",
        "",
        `*.cluster,!bad.cluster ${a.type} ${a.b64}`,
        `  node?.LAB ${a.type} ${a.b64} a comment\r`,
        "garbage",
        `@unknown-marker * ${a.type} ${a.b64}`,
        "old-ssh1-host 1024 35 12345",
        `@revoked ${a.type}`,
      ].join("\n"),
    );
    assert.deepEqual(
      entries.map((e) => e.line),
      [3, 4],
    );
    assert.equal(verifyHostKey(entries, "w1.cluster", 22, a.type, a.b64).kind, "match");
    assert.equal(verifyHostKey(entries, "bad.cluster", 22, a.type, a.b64).kind, "unknown");
    assert.equal(verifyHostKey(entries, "Node7.lab", 22, a.type, a.b64).kind, "match");
    assert.equal(verifyHostKey(entries, "node17.lab", 22, a.type, a.b64).kind, "unknown");
    assert.equal(hostMatches("[10.0.0.*]:2222", "10.0.0.9", 2222), true);
    assert.equal(hostMatches("10.0.0.9", "10.0.0.9", 2222), false);
    assert.equal(hostMatches("10.0.0.9,[10.0.0.9]:22", "10.0.0.9", 22), true);
    assert.equal(hostMatches("*", "anything", 2222), true);
  });

  test("knownHostsLine and hostKeyName", () => {
    assert.equal(hostKeyName("h", 22), "h");
    assert.equal(hostKeyName("h", 2222), "[h]:2222");
    assert.equal(knownHostsLine("h", 2222, "ssh-ed25519", "AAAA"), "[h]:2222 ssh-ed25519 AAAA");
  });

  test("fingerprints agree with ssh-keygen -l", () => {
    const printed = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${a.file}.pub`], {
      encoding: "utf8",
    }).split(" ")[1];
    assert.equal(fingerprintSha256(a.b64), printed);
  });

  test("parsing never throws", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => void parseKnownHosts(text)),
      { numRuns: 1000 },
    );
    const lineish = fc
      .array(
        fc.constantFrom(
          "@revoked",
          "@cert-authority",
          "|1|",
          "|",
          "*",
          "!",
          "[h]:22",
          " ",
          "\t",
          "\n",
          "#",
          "ssh-ed25519",
          "AAAA",
          "=",
          ",",
        ),
        { maxLength: 30 },
      )
      .map((parts) => parts.join(" "));
    fc.assert(
      fc.property(
        lineish,
        fc.string({ maxLength: 20 }),
        fc.integer({ min: 1, max: 65535 }),
        (text, host, port) => {
          void verifyHostKey(parseKnownHosts(text), host, port, "ssh-ed25519", "AAAA");
        },
      ),
      { numRuns: 1000 },
    );
  });
});
